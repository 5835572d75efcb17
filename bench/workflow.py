"""Workflows, in one run against a real flintd (bench/workflow.sh):

1. Engine overhead per task. A workflow of 100 parallel calls of the C
   hello function (joined by a `noop`) and a chain of 100 calls of it
   (each requiring the one before), each invoked synchronously one at a
   time over a kept-alive connection, against the same calls made directly
   through flintd's invoke API (`POST /v1/functions/hello/invoke`,
   `bench_invoke`: as many clients as the fan-out may have calls in
   flight, SLOTS, for the fan-out; one client for the chain), alternately,
   REPEAT rounds, medians. The direct baselines are steady closed-loop
   rates (connections opened and warmed first), the stricter baseline.
   Overhead per task = (workflow time - 100 direct calls' time) / 100. The
   chain's target is relative to one write + fdatasync on the same disk
   (`bench_store --fdatasync`), measured in each round too: each step's
   TaskSucceeded must be durable before the next step starts.
2. Invocation latency of a one-task `noop` workflow, sync, with 1 and 16
   clients (`bench_invoke`), p50 / p99: what a workflow adds before and
   after its tasks (InvocationCreated durable, the last event durable).
3. The spread of the start times of 100 parallel tasks: a fan-out of a C
   function that answers the CLOCK_REALTIME it was called at (ns); the
   spread is the last start minus the first, per round (and the same of
   the engine's TaskStarted events, whole ms).
4. WAITERS (10,000) invocations submitted async, each waiting on a
   durable `sleep` of SLEEP: all accepted, all seen waiting, flintd's RSS
   then against before (per waiting invocation), and all finished after
   the sleep, with how long the last one took past its timer.

Environment: BUILD (build), REPEAT (11), SECONDS_EACH (1), SLOTS (64),
WAITERS (10000), SLEEP (20s).
"""
import http.client
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from executor import BUILD, Daemon, exit_on_signals, upload  # noqa: E402

# bench/async.py's helpers ("async" is a keyword: no import statement)
_async = importlib.import_module("async")
run_json, deploy, upload_source = _async.run_json, _async.deploy, _async.upload_source

REPEAT = int(os.environ.get("REPEAT", "11"))
SECONDS = os.environ.get("SECONDS_EACH", "1")
SLOTS = int(os.environ.get("SLOTS", "64"))
WAITERS = int(os.environ.get("WAITERS", "10000"))
SLEEP = os.environ.get("SLEEP", "20s")
TASKS = 100
TIMEOUT = 300  # seconds any one step may take at most

# Answers the wall-clock time it was called at, in ns.
STAMP_C = b"""#include <flint/fn.h>
#include <time.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    flint_response_printf(resp, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return 0;
}
"""


def fan_out(fn):
    tasks = {f"T{i}": {"run": fn} for i in range(TASKS)}
    tasks["Join"] = {"run": "noop", "requires": list(tasks)}
    return {"output": "Join", "tasks": tasks}


def chain(fn):
    tasks = {f"T{i}": {"run": fn, **({"requires": [f"T{i - 1}"]} if i else {})}
             for i in range(TASKS)}
    return {"output": f"T{TASKS - 1}", "tasks": tasks}


WORKFLOWS = {
    "fan": fan_out("hello"),
    "chain": chain("hello"),
    "noop": {"output": "N", "tasks": {"N": {"run": "noop"}}},
    "stamps": fan_out("stamp"),
    "nap": {"output": "Nap", "tasks": {"Nap": {"run": "sleep", "inputs": SLEEP}}},
}


def bench_invoke(d, path, conns, *, count=None, seconds=SECONDS, prefer_async=False):
    args = [os.path.join(BUILD, "bench", "bench_invoke"), "-m", "POST",
            "-H", f"Authorization: Bearer {d.token}"]
    if prefer_async:
        args += ["-H", "Prefer: respond-async"]
    if count is not None:
        args += ["-n", str(count)]
    r = run_json(args + [d.api, path, str(conns), str(seconds)])
    assert r["errors"] == 0, (path, r)
    return r


def fdatasync_us(tmp):
    d = os.path.join(tmp, "fdatasync")
    os.makedirs(d, exist_ok=True)
    return run_json([os.path.join(BUILD, "bench", "bench_store"), "--fdatasync", d,
                     SECONDS])["us"]


class Client:
    """One kept-alive API connection, timing sync workflow invocations."""

    def __init__(self, d):
        host, port = d.api.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        self.auth = {"Authorization": f"Bearer {d.token}"}

    def invoke(self, name):
        """(seconds, the answer's invocation id, its body)"""
        start = time.perf_counter()
        self.conn.request("POST", f"/v1/workflows/{name}/invoke", b"", self.auth)
        r = self.conn.getresponse()
        body = r.read()
        took = time.perf_counter() - start
        assert r.status == 200, (name, r.status, body[:500])
        return took, r.getheader("X-Flint-Invocation-Id"), body

    def get(self, path):
        self.conn.request("GET", path, headers=self.auth)
        r = self.conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:500])
        return json.loads(body)


def cpu_seconds(pid):
    """CPU time of every thread of process pid so far, to the ns
    (/proc/PID/task/*/schedstat; /proc/PID/stat counts whole clock ticks,
    too coarse for one workflow)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def in_turn(names, i):
    return names[i % len(names):] + names[:i % len(names)]


def overhead(d, client, tmp):
    print(f"engine overhead per task: {TASKS}-task workflows of hello-c against the same "
          f"{TASKS} calls made directly through POST /v1/functions/hello/invoke, "
          f"{os.cpu_count()} cores, {REPEAT} rounds alternating, medians")
    runs = {k: [] for k in ("fan", "chain", "direct-fan", "direct-chain", "fdatasync")}

    def wf(name):
        cpu = cpu_seconds(d.proc.pid)
        took, _, _ = client.invoke(name)
        return {"s": took, "cpu_us": (cpu_seconds(d.proc.pid) - cpu) * 1e6 / TASKS}

    def direct(conns):
        cpu = cpu_seconds(d.proc.pid)
        r = bench_invoke(d, "/v1/functions/hello/invoke", conns)
        return {"s": TASKS / r["rps"],
                "cpu_us": (cpu_seconds(d.proc.pid) - cpu) * 1e6 / max(r["requests"], 1)}

    steps = {"fan": lambda: wf("fan"), "chain": lambda: wf("chain"),
             "direct-fan": lambda: direct(SLOTS), "direct-chain": lambda: direct(1),
             "fdatasync": lambda: {"us": fdatasync_us(tmp)}}
    client.invoke("fan")  # the first of each pays for loading its definition
    client.invoke("chain")
    for i in range(REPEAT):
        for name in in_turn(list(steps), i):
            runs[name].append(steps[name]())

    def med(name, key="s"):
        return statistics.median(r[key] for r in runs[name])

    sync_us = med("fdatasync", "us")
    for shape, conns in (("fan", SLOTS), ("chain", 1)):
        per_task = [(w["s"] - b["s"]) / TASKS * 1e6
                    for w, b in zip(runs[shape], runs[f"direct-{shape}"])]
        print(f"  {shape:5s} workflow {med(shape) * 1e3:8.2f} ms   direct {TASKS} calls "
              f"({conns} client{'s' if conns > 1 else ''}) {med(f'direct-{shape}') * 1e3:8.2f} ms"
              f"   flintd CPU per task {med(shape, 'cpu_us'):6.0f} us vs per direct call "
              f"{med(f'direct-{shape}', 'cpu_us'):5.0f} us")
        over = statistics.median(per_task)
        line = (f"  {shape:5s} overhead per task {over / 1e3:6.3f} ms "
                f"(rounds {min(per_task) / 1e3:.3f} to {max(per_task) / 1e3:.3f})")
        if shape == "fan":
            line += f"   target < 0.2 ms: {'met' if over < 200 else 'NOT met'}"
        else:
            ratios = sorted(o / f["us"] for o, f in zip(per_task, runs["fdatasync"]))
            line += (f" = {over / sync_us:.2f} x one write + fdatasync ({sync_us:.0f} us, "
                     f"median of the rounds)   target <= 2x: "
                     f"{'met' if over <= 2 * sync_us else 'NOT met'}\n"
                     f"        each round's overhead / its own fdatasync: median "
                     f"{statistics.median(ratios):.2f} (rounds {ratios[0]:.2f} to "
                     f"{ratios[-1]:.2f})")
        print(line)


def start_latency(d):
    print(f"invocation latency of a one-task noop workflow, sync, {SECONDS} s each:")
    for conns in (1, 16):
        r = bench_invoke(d, "/v1/workflows/noop/invoke", conns)
        print(f"  {conns:2d} client{'s' if conns > 1 else ' '}  {r['rps']:7.0f} invocations/s"
              f"   p50 {r['p50_us'] / 1e3:6.2f} ms   p99 {r['p99_us'] / 1e3:6.2f} ms")


def start_spread(client):
    print(f"start spread of {TASKS} parallel tasks (a C function answering the time it was "
          f"called at), {REPEAT} rounds:")
    client.invoke("stamps")
    calls, engine = [], []
    for _ in range(REPEAT):
        _, inv_id, _ = client.invoke("stamps")
        inv = client.get(f"/v1/invocations/{inv_id}")
        stamps = [int(t["output"]) for t in inv["tasks"] if t["id"] != "Join"]
        assert len(stamps) == TASKS, inv
        calls.append((max(stamps) - min(stamps)) / 1e6)
        events = client.get(f"/v1/invocations/{inv_id}/events")["events"]
        started = [e["at"] for e in events if e["type"] == "TaskStarted"
                   and e["data"]["task"] != "Join"]
        assert len(started) == TASKS, len(started)
        engine.append(max(started) - min(started))
    print(f"  first call to last call: median {statistics.median(calls):6.2f} ms   "
          f"max {max(calls):6.2f} ms")
    print(f"  first TaskStarted to last (ms granularity): median "
          f"{statistics.median(engine):4.0f} ms   max {max(engine):4.0f} ms")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def count(client, status):
    """How many nap invocations have status (listed 1000 a page)."""
    n, after = 0, None
    for _ in range(WAITERS // 1000 + 10):
        q = {"workflow": "nap", "status": status, "limit": 1000}
        if after:
            q["after"] = after
        page = client.get("/v1/invocations?" + urllib.parse.urlencode(q))
        n += len(page["items"])
        after = page.get("next")
        if not after:
            return n
    raise AssertionError("too many pages")


def wait_until(what, predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def waiters(d, client):
    print(f"{WAITERS} invocations waiting on a durable sleep of {SLEEP} on one node:")
    client.invoke("noop")
    before = rss_kib(d.proc.pid)
    start = time.monotonic()
    r = bench_invoke(d, "/v1/workflows/nap/invoke", 16, count=WAITERS, seconds=TIMEOUT,
                     prefer_async=True)
    assert r["requests"] == WAITERS, r
    print(f"  submitted (202, durable) in {time.monotonic() - start:5.1f} s, "
          f"{WAITERS / r['seconds']:6.0f} /s")
    wait_until("every invocation waiting", lambda: count(client, "running") == WAITERS)
    waiting = rss_kib(d.proc.pid)
    print(f"  all waiting: flintd RSS {before / 1024:6.1f} MiB before, {waiting / 1024:6.1f} MiB "
          f"waiting: {(waiting - before) * 1024 / WAITERS:6.0f} bytes per waiting invocation")
    wait_until("every invocation finished", lambda: count(client, "succeeded") == WAITERS)
    print(f"  all {WAITERS} succeeded {time.monotonic() - start:5.1f} s after the first was "
          f"submitted; flintd RSS then {rss_kib(d.proc.pid) / 1024:6.1f} MiB")


def main():
    exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="flint-bench-wf.")
    d = None
    try:
        d = Daemon(tmp, ["--max-conns-per-addr", "0"])
        d.request("POST", "/v1/environments", {"name": "c", "spec": {"runtime": "c",
                                                                    "poolsize": 1}})
        deploy(d, "hello", upload(d, "hello.c"), concurrency=1, requestsPerInstance=SLOTS,
               minScale=1)
        deploy(d, "stamp", upload_source(d, "stamp.c", STAMP_C), concurrency=1,
               requestsPerInstance=TASKS, minScale=1)
        for name, spec in WORKFLOWS.items():
            status, body = d.request("POST", "/v1/workflows", {"name": name, "spec": spec})
            assert status == 201, (name, body)
        client = Client(d)
        for fn in ("hello", "stamp"):
            status, body = d.request("POST", f"/v1/functions/{fn}/invoke", b"")
            assert status == 200, body
        overhead(d, client, tmp)
        start_latency(d)
        start_spread(client)
        if WAITERS > 0:
            waiters(d, client)
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
