"""Message-queue triggers on NATS JetStream, in one run against a real
flintd and a real `nats-server -js` (bench/mq_nats.sh):

1. Raw JetStream: a durable pull consumer fetching batches of 256 and
   acking each message (bench_mq_nats raw): the broker's own ceiling on
   this machine, for context.
2. Flint: COUNT messages waiting in a stream; a trigger (connector nats,
   each concurrency of CONC) on the C hello function (one warm instance taking 256
   requests at once), each answer published to a response subject and
   only then the message acked; timed from unpausing the trigger until the
   response stream holds COUNT messages.
3. Baseline: the same work by a consumer written directly with libnats
   (bench_mq_nats baseline): fetch, POST the body to the same function
   instance's Unix socket, JetStream publish of the answer (waiting for
   the stream's ack), ack; with 1 thread and with THREADS threads.

Flint and the baselines alternate, each on a fresh stream of COUNT
messages, REPEAT times; medians. The ratio is Flint / the best baseline.

Environment: BUILD (build), COUNT (5000), CONC ("16 64"), THREADS (4),
REPEAT (3).
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from executor import (BUILD, Daemon, exit_on_signals, instance_socket,  # noqa: E402
                      upload, warm_instance)

COUNT = int(os.environ.get("COUNT", "5000"))
CONCS = [int(c) for c in os.environ.get("CONC", "16 64").split()]
THREADS = int(os.environ.get("THREADS", "4"))
REPEAT = int(os.environ.get("REPEAT", "3"))
TOOL = os.path.join(BUILD, "bench", "bench_mq_nats")
NATS_TOOL = os.path.join(BUILD, "tests", "helpers", "nats_tool")


class NatsServer:
    def __init__(self, tmp):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"nats://127.0.0.1:{self.port}"
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.log = open(os.path.join(tmp, "nats.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd",
             os.path.join(tmp, "nats")], stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        for _ in range(400):
            if subprocess.run([NATS_TOOL, self.url, "stream-info", "NONE"],
                              capture_output=True).returncode == 3:
                return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def tool(self, *args):
        subprocess.run([NATS_TOOL, self.url, *args], check=True, capture_output=True)

    def bench(self, *args, timeout=600):
        out = subprocess.run([TOOL, self.url, *args], capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"bench_mq_nats {' '.join(args)}: {out.stderr}")
        return json.loads(out.stdout)

    def stream(self, name):
        """A fresh stream NAME on subject NAME.in holding COUNT messages, and
        its response stream NAME_OUT on NAME.out."""
        self.tool("add-stream", name, f"{name}.in")
        self.tool("add-stream", f"{name}_OUT", f"{name}.out")
        self.bench("fill", f"{name}.in", str(COUNT))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def flint_run(d, n, i, conc):
    name = f"F{i}c{conc}"
    n.stream(name)
    spec = {"topic": f"{name}.in", "target": {"function": "warm"}, "connector": "nats",
            "respTopic": f"{name}.out", "concurrency": conc, "paused": True}
    status, body = d.request("POST", "/v1/messagequeuetriggers",
                             {"name": f"f{i}c{conc}", "spec": spec})
    assert status == 201, body
    for _ in range(2000):
        t = json.loads(d.request("GET", f"/v1/messagequeuetriggers/f{i}c{conc}")[1])
        if t.get("status", {}).get("state") == "paused":
            break
        time.sleep(0.01)
    spec["paused"] = False
    start = time.monotonic()
    status, body = d.request("PUT", f"/v1/messagequeuetriggers/f{i}c{conc}",
                             {"spec": spec, "revision": t["revision"]})
    assert status == 200, body
    r = n.bench("wait", f"{name}_OUT", str(COUNT), "300")
    took = time.monotonic() - start
    d.request("DELETE", f"/v1/messagequeuetriggers/f{i}c{conc}")
    return COUNT / took if r["messages"] == COUNT else 0.0


def baseline_run(d, n, i, threads):
    name = f"B{i}t{threads}"
    n.stream(name)
    r = n.bench("baseline", name, f"{name}.in", str(COUNT), instance_socket(d), f"{name}.out",
                str(threads))
    return r["rate"]


def raw_run(n, i):
    name = f"R{i}"
    n.stream(name)
    return n.bench("raw", name, f"{name}.in", str(COUNT))["rate"]


def main():
    exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="flint-bench-mqnats.")
    n = NatsServer(tmp)
    d = None
    try:
        d = Daemon(tmp, ["--nats", n.url])
        codes = {"c": upload(d, "hello.c")}
        warm_instance(d, codes["c"])
        flints = [f"flint{c}" for c in CONCS]
        runs = {k: [] for k in ["raw", "base1", f"base{THREADS}", *flints]}
        for i in range(REPEAT):
            order = [*flints, "base1", f"base{THREADS}"]
            order = order[i % len(order):] + order[:i % len(order)]
            for what in order:
                if what.startswith("flint"):
                    runs[what].append(flint_run(d, n, i, int(what[5:])))
                else:
                    runs[what].append(baseline_run(d, n, i, int(what[4:])))
            runs["raw"].append(raw_run(n, i))
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"NATS JetStream triggers, {COUNT} messages a run, medians of {REPEAT}, "
              f"{os.cpu_count()} cores:")
        print(f"  raw JetStream pull+ack (batches of 256)      {med['raw']:9.0f} msg/s")
        print(f"  baseline: libnats fetch+POST+publish+ack, 1 thread  "
              f"{med['base1']:9.0f} msg/s")
        print(f"  baseline: the same, {THREADS} threads                 "
              f"{med[f'base{THREADS}']:9.0f} msg/s")
        best = max(med["base1"], med[f"base{THREADS}"])
        for c in CONCS:
            f = med[f"flint{c}"]
            print(f"  Flint: trigger (concurrency {c:3d}) -> C hello -> respTopic -> ack  "
                  f"{f:9.0f} msg/s   ratio to the best baseline {f / best:.2f}, "
                  f"to 1 thread {f / med['base1']:.2f}")
    finally:
        if d is not None:
            d.stop()
        n.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
