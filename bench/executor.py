"""Executor and router benchmark, all in one run against a real flintd
(bench/executor.sh):

1. cold start from the warm pool: the first call of a new function, whose
   build is cached, served by a generic instance taken from the pool
   (specialize + call), per runtime; p50 and p99 over N functions;
2. cold start with the pool empty (poolsize 0): spawn, /healthz, specialize
   and call;
3. warm calls, hello-c: through the router (TCP -> route -> executor ->
   instance socket) vs straight to the same instance's Unix socket, by the
   same load generator (bench_invoke) in the same run; the ratio is
   router/direct. The router is measured on its TCP listener and on a Unix
   socket listener too (the direct baseline's transport), and the CPU time
   per request of each process (load generator, flintd, instance) shows
   where a request's cost goes.
"""
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.path.abspath(os.environ.get("BUILD", "build"))
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
N = int(os.environ.get("COLD_STARTS", "20"))
SECONDS = os.environ.get("SECONDS_EACH", "3")
CONNS = os.environ.get("CONNS", "16")

CODE = {
    "c": ("hello.c", None),
    "python": ("hello.py", "hello.main"),
    "node": ("hello.js", "hello.main"),
    "binary": ("hello.sh", None),
}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Daemon:
    def __init__(self, tmp, args=()):
        self.data = os.path.join(tmp, "data")
        ports = free_ports(2)
        self.api = f"127.0.0.1:{ports[0]}"
        self.router = f"127.0.0.1:{ports[1]}"
        self.router_unix = "unix:" + os.path.join(tmp, "router.sock")
        self.log = open(os.path.join(tmp, "flintd.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "bin", "flintd"), "--data", self.data, "--api", self.api,
             "--router", f"{self.router},{self.router_unix}", "--log-level", os.environ.get("LOGLEVEL", "warn"),
             *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            for _ in range(400):
                try:
                    if self.request("GET", "/healthz", auth=False)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.025)
            self.token = open(os.path.join(self.data, "token")).read().strip()
        except BaseException:
            self.stop()
            raise

    def request(self, method, path, body=None, auth=True, headers=None):
        headers = dict(headers or {"Content-Type": "application/json"})
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(f"http://{self.api}{path}", data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def upload(d, filename):
    with open(os.path.join(ROOT, "examples", "hello", filename), "rb") as f:
        status, body = d.request("POST", "/v1/code", f.read(),
                                 headers={"X-Flint-Filename": filename})
    assert status in (200, 201), body
    return json.loads(body)


def function_spec(env, code, entrypoint):
    spec = {"environment": env, "code": {"sha256": code["sha256"], "filename": code["filename"]}}
    if entrypoint:
        spec["entrypoint"] = entrypoint
    return spec


def pool_ready(d, env):
    status = json.loads(d.request("GET", "/v1/status")[1])
    for e in status["executor"]["environments"]:
        if e["name"] == env:
            return e["pool"]["ready"] >= e["pool"]["size"]
    return False


def timed_call_ms(d, name):
    start = time.perf_counter()
    status, body = d.request("POST", f"/v1/functions/{name}/invoke", b"")
    took = (time.perf_counter() - start) * 1000
    assert status == 200, (name, status, body)
    return took


def first_call_ms(d, name, env, code, entrypoint):
    """The first call of a new function, and the second (warm) one."""
    status, body = d.request("POST", "/v1/functions",
                             {"name": name, "spec": function_spec(env, code, entrypoint)})
    assert status == 201, body
    return timed_call_ms(d, name), timed_call_ms(d, name)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * (len(values) - 1) + 0.5))]


def cold_starts(d, codes, pooled):
    print(f"cold start, {'from the warm pool' if pooled else 'pool empty (poolsize 0)'}, "
          f"{N} functions each (first call of a new function through the API; the warm "
          f"second call in the same run as the baseline):")
    for runtime, (filename, entrypoint) in CODE.items():
        env = f"{runtime}-{'pool' if pooled else 'nopool'}"
        d.request("POST", "/v1/environments",
                  {"name": env, "spec": {"runtime": runtime, "poolsize": 1 if pooled else 0}})
        # the first function pays for the build; it is not counted
        first_call_ms(d, f"{env}-warmup", env, codes[runtime], entrypoint)
        times, warm = [], []
        for i in range(N):
            if pooled:
                deadline = time.monotonic() + 30
                while not pool_ready(d, env) and time.monotonic() < deadline:
                    time.sleep(0.01)
            first, second = first_call_ms(d, f"{env}-{i}", env, codes[runtime], entrypoint)
            times.append(first)
            warm.append(second)
        print(f"  {runtime:7s} first call p50 {statistics.median(times):7.2f} ms  "
              f"p99 {pct(times, 0.99):7.2f} ms   warm call p50 {statistics.median(warm):6.2f} ms"
              f"   cold start adds {statistics.median(times) - statistics.median(warm):7.2f} ms")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runtime_pids(root):
    """Every C runtime process below process root (flintd): the warm
    instance, and the idle pool's; not those of other flintds on the machine."""
    parents, runtimes = {}, []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[0] == b"/runtime/flint-runtime-c":
                    runtimes.append(int(pid))
        except (OSError, ValueError, IndexError):
            pass

    def below_root(pid):
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid == root:
                return True
            if pid <= 1:
                return False
        return False

    return [pid for pid in runtimes if below_root(pid)]


def load(d, target, path):
    """One closed-loop run; with the CPU time each process spent per request."""
    pids = runtime_pids(d.proc.pid)
    before = (resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(d.proc.pid),
              sum(cpu_seconds(p) for p in pids))
    out = subprocess.run([os.path.join(BUILD, "bench", "bench_invoke"), target, path, CONNS,
                          SECONDS], capture_output=True, text=True, check=True)
    after = (resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(d.proc.pid),
             sum(cpu_seconds(p) for p in pids))
    r = json.loads(out.stdout)
    n = max(r["requests"], 1)
    r["us_load"] = ((after[0].ru_utime + after[0].ru_stime) -
                    (before[0].ru_utime + before[0].ru_stime)) / n * 1e6
    r["us_flintd"] = (after[1] - before[1]) / n * 1e6
    r["us_instance"] = (after[2] - before[2]) / n * 1e6
    r["flintd_cores"] = (after[1] - before[1]) / float(SECONDS)
    return r


def warm_instance(d, code):
    """Deploys the C hello function `warm` with one instance, kept warm, and
    the route /hello/c/{who} to it; returns the instance's socket
    ("unix:DATA/run/<n>/s"). The instance takes up to 256 requests at once:
    the C runtime is event-driven, so calls through the router and calls
    straight to its socket reach the very same process."""
    d.request("POST", "/v1/environments", {"name": "c-warm", "spec": {"runtime": "c",
                                                                       "poolsize": 1}})
    spec = function_spec("c-warm", code, None)
    spec.update({"concurrency": 1, "requestsPerInstance": 256, "minScale": 1})
    d.request("POST", "/v1/functions", {"name": "warm", "spec": spec})
    d.request("POST", "/v1/routes", {"name": "warm", "spec": {
        "path": "/hello/c/{who}", "target": {"function": "warm"}}})
    assert d.request("POST", "/v1/functions/warm/invoke", b"")[0] == 200
    return instance_socket(d)


def instance_socket(d):
    """The socket of function `warm`'s only instance."""
    fn = json.loads(d.request("GET", "/v1/functions/warm")[1])
    instances = fn["status"]["instances"]
    assert len(instances) == 1, instances
    return instances[0]["socket"]


def warm_calls(d, codes):
    print(f"warm calls of hello-c, {CONNS} connections, {SECONDS}s each, medians of 3, "
          f"{os.cpu_count()} cores:")
    socket_target = warm_instance(d, codes["c"])
    runs = {"direct to the instance": [], "router, TCP listener": [],
            "router, Unix listener": []}
    targets = [socket_target, d.router, d.router_unix]
    for _ in range(3):
        for (name, results), target in zip(runs.items(), targets):
            results.append(load(d, target, "/hello/c/ada"))

    def med(results, key):
        return statistics.median(r[key] for r in results)

    print("  (CPU per request: load generator / flintd / instance, in microseconds)")
    for name, results in runs.items():
        errors = sum(r["errors"] for r in results)
        print(f"  {name:24s} {med(results, 'rps'):9.0f} req/s   "
              f"p50 {med(results, 'p50_us'):6.0f} us   p99 {med(results, 'p99_us'):6.0f} us   "
              f"errors {errors}   CPU/req {med(results, 'us_load'):5.1f} / "
              f"{med(results, 'us_flintd'):5.1f} / {med(results, 'us_instance'):5.1f}")
    direct = med(runs["direct to the instance"], "rps")
    for name in ("router, TCP listener", "router, Unix listener"):
        results = runs[name]
        print(f"  ratio {name} / direct: {med(results, 'rps') / direct:.2f}   "
              f"requests/s per core of flintd: "
              f"{med(results, 'rps') / max(med(results, 'flintd_cores'), 0.01):.0f}")


def exit_on_signals():
    """SIGTERM and SIGHUP end the benchmark through its finally blocks, so that
    the daemons it started are stopped (not left behind, as by the default
    action)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))


def main():
    exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="flint-bench-exec.")
    d = Daemon(tmp)
    try:
        codes = {rt: upload(d, filename) for rt, (filename, _) in CODE.items()}
        cold_starts(d, codes, pooled=True)
        cold_starts(d, codes, pooled=False)
        warm_calls(d, codes)
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
