"""The router against nginx as a reverse proxy in front of the same
instance, in one run (bench/proxy.sh):

A real flintd deploys the C hello function with one warm instance and the
route /hello/c/{who}. nginx (one worker, access log off) is started on its
own free loopback port, from a configuration of its own in a temporary
directory, and proxies to that instance's Unix socket over kept-alive
HTTP/1.1 connections (an `upstream` with `keepalive`), adding the headers
the router adds (X-Flint-Function, -Invocation-Id, -Attempt, -Trigger,
-Param-who, X-Forwarded-For), so that the instance does the same work and
answers the same body either way.

The same load generator then drives the router's TCP listener and nginx's,
alternately (each one first in turn), REPEAT times per configuration, and
the medians are printed:
requests/s, p50 and p99, the ratio flint/nginx, and the CPU time each
process spent per request (load generator, proxy, instance). wrk (one
thread) at 1 and 64 connections, and bench_invoke at 16 connections, which
also calls the instance's socket directly (wrk has no Unix sockets): the
router/direct figure of bench/executor.sh, as context.

Environment: BUILD (build), SECONDS_EACH (2), REPEAT (9), WRK_CONNS ("1 64"),
CONNS (16, bench_invoke's).
"""
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from executor import (BUILD, Daemon, cpu_seconds, exit_on_signals,  # noqa: E402
                      free_ports, instance_socket, runtime_pids, upload, warm_instance)

SECONDS = os.environ.get("SECONDS_EACH", "2")
REPEAT = int(os.environ.get("REPEAT", "9"))
WRK_CONNS = [int(c) for c in os.environ.get("WRK_CONNS", "1 64").split()]
CONNS = os.environ.get("CONNS", "16")
PATH = "/hello/c/ada"

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
# the instance's run directory is flintd's (root's) alone
user root;
pid {tmp}/nginx.pid;
lock_file {tmp}/nginx.lock;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream instance {{
    server unix:{socket};
    keepalive 256;
    keepalive_requests 1000000;
  }}
  server {{
    listen {listen};
    location ~ ^/hello/c/(?<who>[^/]+)$ {{
      proxy_pass http://instance;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Flint-Function warm;
      proxy_set_header X-Flint-Invocation-Id $request_id;
      proxy_set_header X-Flint-Attempt 1;
      proxy_set_header X-Flint-Trigger http;
      proxy_set_header X-Flint-Param-who $who;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""


class Nginx:
    """nginx from a configuration of its own in tmp/nginx, in the
    foreground (so it is our child, and stopped by stop())."""

    def __init__(self, tmp, socket_path):
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(self.dir)
        self.listen = f"127.0.0.1:{free_ports(1)[0]}"
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=self.dir, socket=socket_path, listen=self.listen))
        self.log = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(
            ["nginx", "-c", conf, "-p", self.dir, "-e", os.path.join(self.dir, "error.log")],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx did not start: " + self.errors())
            time.sleep(0.05)

    def answers(self):
        try:
            with urllib.request.urlopen(f"http://{self.listen}/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # a 404 from nginx: it is up
        except OSError:
            return False

    def errors(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def pids(self):
        """The master and its worker."""
        pids = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def get(address, path):
    with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as r:
        return r.status, r.read()


def to_us(text):
    """wrk's durations ("35.00us", "1.20ms", "2.00s") in microseconds."""
    for unit, scale in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    raise ValueError(text)


def wrk(target, conns):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{SECONDS}s", "--latency",
                          f"http://{target}{PATH}"], capture_output=True, text=True, check=True)
    r = {"errors": 0, "error_lines": []}
    for line in out.stdout.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(words[1])
        elif words[:1] == ["50%"]:
            r["p50_us"] = to_us(words[1])
        elif words[:1] == ["99%"]:
            r["p99_us"] = to_us(words[1])
        elif "requests in" in line:
            r["requests"] = int(words[0])
        elif line.lstrip().startswith(("Non-2xx", "Socket errors")):
            r["errors"] += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
            r["error_lines"].append(line.strip())
    return r


def bench_invoke(target, conns):
    out = subprocess.run([os.path.join(BUILD, "bench", "bench_invoke"), target, PATH, str(conns),
                          SECONDS], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def measured(generator, target, conns, proxy_pids, instance_pids):
    """One run, with the CPU time per request of the load generator, the
    proxy (flintd, or nginx's master and worker) and the instance."""
    def sample():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (usage.ru_utime + usage.ru_stime, sum(cpu_seconds(p) for p in proxy_pids),
                sum(cpu_seconds(p) for p in instance_pids))

    before = sample()
    r = generator(target, conns)
    after = sample()
    n = max(r["requests"], 1)
    for key, b, a in zip(("us_load", "us_proxy", "us_instance"), before, after):
        r[key] = (a - b) / n * 1e6
    return r


def in_turn(names, i):
    """The order of round i: each one first in turn, so that none always
    runs right after another (A B, B A, A B...)."""
    return names[i % len(names):] + names[:i % len(names)]


def report(title, runs):
    """The medians of each configuration's runs, and flint/nginx."""
    def med(name, key):
        return statistics.median(r[key] for r in runs[name])

    print(title)
    print(f"  {'':28s} {'req/s':>8s} {'p50':>9s} {'p99':>9s}   CPU/request, us: "
          "load gen / proxy / instance")
    for name in runs:
        errors = sum(r["errors"] for r in runs[name])
        for line in sorted({e for r in runs[name] for e in r.get("error_lines", [])}):
            print(f"  ({name}: {line})")
        print(f"  {name:28s} {med(name, 'rps'):8.0f} {med(name, 'p50_us'):6.0f} us "
              f"{med(name, 'p99_us'):6.0f} us   {med(name, 'us_load'):5.1f} / "
              f"{med(name, 'us_proxy'):5.1f} / {med(name, 'us_instance'):5.1f}"
              + (f"   ERRORS {errors}" if errors else ""))
    flint, nginx = "flint router", "nginx"
    # each router run and the nginx run of the same round: how much the
    # machine's other work moved the ratio
    # ratio, and the ratio of the best runs: the machine's other work only
    # ever slows a run down, so the best one of each is what it does alone
    pairs = sorted(f["rps"] / n["rps"] for f, n in zip(runs[flint], runs[nginx]))
    best = max(r["rps"] for r in runs[flint]) / max(r["rps"] for r in runs[nginx])
    print(f"  ratio flint/nginx: throughput {med(flint, 'rps') / med(nginx, 'rps'):.2f} "
          f"(runs {pairs[0]:.2f} to {pairs[-1]:.2f}, best runs {best:.2f}), "
          f"p50 {med(flint, 'p50_us') / med(nginx, 'p50_us'):.2f}, "
          f"p99 {med(flint, 'p99_us') / med(nginx, 'p99_us'):.2f}")
    if "direct to the instance" in runs:
        print(f"  ratio flint/direct: throughput "
              f"{med(flint, 'rps') / med('direct to the instance', 'rps'):.2f}")


def main():
    exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="flint-bench-proxy.")
    d = nginx = None
    try:
        # wrk's 64 connections of one run and those of the next, whose
        # closing the router may not have read yet, come from one address:
        # lift the router's cap per address (64), as nginx has none
        d = Daemon(tmp, ["--max-conns-per-addr", "0"])
        socket_target = warm_instance(d, upload(d, "hello.c"))
        nginx = Nginx(tmp, socket_target[len("unix:"):])
        # the same function answers the same body through both
        via_router, via_nginx = get(d.router, PATH), get(nginx.listen, PATH)
        assert via_router == via_nginx == (200, b"Hello, ada, from C!\n"), (via_router, via_nginx)

        instance_pids = runtime_pids(d.proc.pid)
        assert instance_pids, "no instance below flintd"
        proxies = {"flint router": (d.router, [d.proc.pid]),
                   "nginx": (nginx.listen, nginx.pids())}
        print(f"router vs nginx in front of the same hello-c instance, {os.cpu_count()} cores, "
              f"{REPEAT} x {SECONDS}s per configuration, alternating, medians")
        for conns in WRK_CONNS:
            runs = {name: [] for name in proxies}
            for i in range(REPEAT):
                for name in in_turn(list(proxies), i):
                    target, pids = proxies[name]
                    runs[name].append(measured(wrk, target, conns, pids, instance_pids))
            report(f"wrk -t1 -c{conns}:", runs)
        proxies["direct to the instance"] = (socket_target, [])
        runs = {name: [] for name in proxies}
        for i in range(REPEAT):
            for name in in_turn(list(proxies), i):
                target, pids = proxies[name]
                runs[name].append(measured(bench_invoke, target, CONNS, pids, instance_pids))
        report(f"bench_invoke, {CONNS} connections:", runs)
        # the instance measured is the one both proxies called all along
        assert instance_socket(d) == socket_target
    finally:
        if nginx is not None:
            nginx.stop()
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
