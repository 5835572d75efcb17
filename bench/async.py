"""Async invocations, in one run against a real flintd (bench/async.sh):

1. Accepting. `POST /v1/functions/F/invoke` with `Prefer: respond-async`
   (each answered 202 only once the invocation is durable) over kept-alive
   connections, N clients each sending its next request once answered,
   against the store's own durable publishes with N publishers each
   publishing its next message once the last one is durable
   (`bench_store --publishers N`, messages and topic shaped like an async
   invocation's: the one write of an accept), and the same publishes each
   with the invocation's "queued" event (`--event`): what an accept wrote
   before its history began at its first attempt, for reference. All on
   the same disk (one temporary directory), alternately, each first in
   turn, REPEAT times; medians. Every run starts from an empty topic (a
   store of its own for bench_store, a function of its own in flintd): a
   topic remembers message ids for its de-duplication window, and a
   publish costs more the more it remembers (docs/benchmarks.md). Each
   function's first attempt takes its only slot and sleeps, so none runs
   during the measurement: what is measured is the accept path alone.
2. End to end. COUNT calls of the C hello function, synchronous
   (`POST /v1/functions/F/invoke`) against async (submitted as fast as the
   clients can, timed until the last one has succeeded:
   flint_async_attempts_total{outcome="succeeded"} in /metrics), with as
   many clients as the async path may run attempts of the function at
   once (half of its slots) on both sides; alternately, E2E_REPEAT times
   (0: skipped).

Environment: BUILD (build), SECONDS_EACH (2), REPEAT (3), CLIENTS ("16 64"),
COUNT (5000), SLOTS (64: the hello function's requestsPerInstance, one
instance), E2E_REPEAT (2).
"""
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from executor import (BUILD, Daemon, cpu_seconds, exit_on_signals,  # noqa: E402
                      function_spec, upload)

SECONDS = os.environ.get("SECONDS_EACH", "2")
REPEAT = int(os.environ.get("REPEAT", "3"))
CLIENTS = [int(c) for c in os.environ.get("CLIENTS", "16 64").split()]
COUNT = int(os.environ.get("COUNT", "5000"))
SLOTS = int(os.environ.get("SLOTS", "64"))
E2E_REPEAT = int(os.environ.get("E2E_REPEAT", "2"))
BODY = '{"order":42}'
TIMEOUT = 120  # seconds any one run may take at most

# Holds the function's only slot, so that no attempt runs while accepts
# are measured (functionTimeout is longer than the benchmark).
SLEEPER_C = b"""#include <flint/fn.h>
#include <unistd.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    sleep(3600);
    flint_response_printf(resp, "slept\\n");
    return 0;
}
"""


def upload_source(d, filename, source):
    status, body = d.request("POST", "/v1/code", source, headers={"X-Flint-Filename": filename})
    assert status in (200, 201), body
    return json.loads(body)


def deploy(d, name, code, **spec):
    full = function_spec("c", code, None)
    full.update(spec)
    status, body = d.request("POST", "/v1/functions", {"name": name, "spec": full})
    assert status == 201, body


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_json(args):
    """A benchmark program's run: its JSON line, with the CPU it used."""
    before = children_cpu()
    out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {out.stderr.strip()}")
    r = json.loads(out.stdout)
    r["cpu"] = children_cpu() - before
    return r


def invoke_args(d, name, conns, *, prefer_async, count=None, seconds=SECONDS,
                path=None):
    args = [os.path.join(BUILD, "bench", "bench_invoke"), "-m", "POST",
            "-H", f"Authorization: Bearer {d.token}", "-H", "Content-Type: application/json",
            "-d", BODY]
    if prefer_async:
        args += ["-H", "Prefer: respond-async"]
    if count is not None:
        args += ["-n", str(count)]
    return args + [d.api, path or f"/v1/functions/{name}/invoke", str(conns), str(seconds)]


def sleeper(d, code, name):
    """A function whose one slot is taken by an attempt that sleeps."""
    deploy(d, name, code, concurrency=1, requestsPerInstance=1, functionTimeout="2h")
    status, body = d.request("POST", f"/v1/functions/{name}/invoke", b"",
                             headers={"Prefer": "respond-async"})
    assert status == 202, body
    inv = json.loads(body)["invocation"]
    deadline = time.monotonic() + TIMEOUT
    while json.loads(d.request("GET", f"/v1/invocations/{inv}")[1])["status"] != "running":
        assert time.monotonic() < deadline, f"{name}'s first attempt did not start"
        time.sleep(0.05)
    return name


def accept(d, name, conns):
    before = cpu_seconds(d.proc.pid)
    r = run_json(invoke_args(d, name, conns, prefer_async=True))
    n = max(r["requests"], 1)
    r["us_load"] = r["cpu"] / n * 1e6
    r["us_server"] = (cpu_seconds(d.proc.pid) - before) / n * 1e6
    return r


def http_publish(d, topic, conns):
    """The same clients publishing to a topic through flintd's API: one
    durable message per 202, the HTTP path an accept takes too."""
    status, body = d.request("POST", "/v1/topics", {"name": topic})
    assert status == 201, body
    before = cpu_seconds(d.proc.pid)
    r = run_json(invoke_args(d, None, conns, prefer_async=False,
                             path=f"/v1/topics/{topic}/messages"))
    n = max(r["requests"], 1)
    r["us_load"] = r["cpu"] / n * 1e6
    r["us_server"] = (cpu_seconds(d.proc.pid) - before) / n * 1e6
    return r


def publish(store_dir, conns, event):
    os.mkdir(store_dir)
    args = [os.path.join(BUILD, "bench", "bench_store"), "--publishers", str(conns)]
    r = run_json(args + (["--event"] if event else []) + [store_dir, SECONDS])
    n = max(r["requests"], 1)
    r.update(p50_us=0, p99_us=0, errors=0, us_load=0, us_server=r["cpu"] / n * 1e6)
    return r


def in_turn(names, i):
    """Round i's order: each one first in turn (A B C, B C A, C A B...)."""
    return names[i % len(names):] + names[:i % len(names)]


def alternate(configs, rounds, call):
    """{name: [call(run, i) for each round i]} for each of configs' {name:
    run}, each first in turn."""
    runs = {name: [] for name in configs}
    for i in range(rounds):
        for name in in_turn(list(configs), i):
            runs[name].append(call(configs[name], i))
    return runs


def accepting(d, tmp):
    print(f"accepting async invocations vs durable store publishes, same clients, "
          f"{os.cpu_count()} cores, {REPEAT} x {SECONDS}s each, alternating, medians")
    print(f"  {'':34s} {'per s':>7s} {'p50':>9s} {'p99':>9s}   CPU per op, us: "
          "load gen / flintd or bench_store")
    publish_name, event_name, http_name, accept_name = (
        "store: publish", "store: publish + queued event", "flintd: topic publish (202)",
        "flintd: async accept (202)")
    code = upload_source(d, "sleeper.c", SLEEPER_C)
    for conns in CLIENTS:
        # a fresh topic for every run: functions ready before, stores made by the run
        sleepers = [sleeper(d, code, f"sleeper-{conns}-{i}") for i in range(REPEAT)]
        configs = {
            publish_name: lambda c, i: publish(os.path.join(tmp, f"publish-{c}-{i}"), c, False),
            event_name: lambda c, i: publish(os.path.join(tmp, f"event-{c}-{i}"), c, True),
            http_name: lambda c, i: http_publish(d, f"bench-{c}-{i}", c),
            accept_name: lambda c, i: accept(d, sleepers[i], c),
        }
        runs = {name: [] for name in configs}
        for i in range(REPEAT):
            for name in in_turn(list(configs), i):
                runs[name].append(configs[name](conns, i))

        def med(name, key):
            return statistics.median(r[key] for r in runs[name])

        print(f" {conns} clients:")
        for name in configs:
            errors = sum(r["errors"] for r in runs[name])
            latency = (f"{med(name, 'p50_us'):6.0f} us {med(name, 'p99_us'):6.0f} us"
                       if name in (accept_name, http_name) else f"{'':9s} {'':9s}")
            load = (f"{med(name, 'us_load'):5.1f}" if name in (accept_name, http_name)
                    else f"{'-':>5s}")
            print(f"  {name:34s} {med(name, 'rps'):7.0f} {latency}   {load} / "
                  f"{med(name, 'us_server'):5.1f}" + (f"   ERRORS {errors}" if errors else ""))
        pairs = sorted(a["rps"] / p["rps"] for a, p in zip(runs[accept_name], runs[publish_name]))
        print(f"  ratio accept/publish at {conns} clients: "
              f"{med(accept_name, 'rps') / med(publish_name, 'rps'):.2f} "
              f"(rounds {pairs[0]:.2f} to {pairs[-1]:.2f}); publish + event/publish: "
              f"{med(event_name, 'rps') / med(publish_name, 'rps'):.2f}")
        pairs = sorted(a["rps"] / p["rps"] for a, p in zip(runs[accept_name], runs[http_name]))
        print(f"  ratio accept/topic publish through flintd's HTTP at {conns} clients: "
              f"{med(accept_name, 'rps') / med(http_name, 'rps'):.2f} "
              f"(rounds {pairs[0]:.2f} to {pairs[-1]:.2f})")


SUCCEEDED = re.compile(
    r'^flint_async_attempts_total\{function="hello",outcome="(\w+)"\} (\d+)$', re.M)


def attempts(d):
    status, body = d.request("GET", "/metrics")
    assert status == 200, body
    return {outcome: int(n) for outcome, n in SUCCEEDED.findall(body.decode())}


def sync_calls(d, conns):
    cpu = cpu_seconds(d.proc.pid)
    start = time.monotonic()
    r = run_json(invoke_args(d, "hello", conns, prefer_async=False, count=COUNT,
                             seconds=TIMEOUT))
    took = time.monotonic() - start
    assert r["requests"] == COUNT and r["errors"] == 0, r
    return {"rate": COUNT / took, "seconds": took,
            "us_flintd": (cpu_seconds(d.proc.pid) - cpu) / COUNT * 1e6}


def async_calls(d, conns):
    """Submit COUNT async calls; the time until the last one has succeeded."""
    base = attempts(d)
    cpu = cpu_seconds(d.proc.pid)
    start = time.monotonic()
    submitter = subprocess.Popen(invoke_args(d, "hello", conns, prefer_async=True, count=COUNT,
                                             seconds=TIMEOUT), stdout=subprocess.PIPE, text=True)
    try:
        deadline = start + TIMEOUT
        while True:
            now = attempts(d)
            done = now.get("succeeded", 0) - base.get("succeeded", 0)
            if done >= COUNT or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        took = time.monotonic() - start
        us_flintd = (cpu_seconds(d.proc.pid) - cpu) / COUNT * 1e6
        out, _ = submitter.communicate(timeout=TIMEOUT)
    finally:
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()
    r = json.loads(out)
    others = {k: v - base.get(k, 0) for k, v in now.items() if k != "succeeded"}
    assert done == COUNT and r["requests"] == COUNT and r["errors"] == 0, (done, r, others)
    assert not any(others.values()), others
    return {"rate": COUNT / took, "seconds": took, "submitted": r["seconds"],
            "us_flintd": us_flintd}


def end_to_end(d):
    conns = max(SLOTS // 2, 1)
    print(f"end to end: {COUNT} calls of hello-c (one instance, {SLOTS} slots), {conns} at once "
          f"(half the slots: what async attempts may use), {E2E_REPEAT} rounds, alternating, "
          "medians")
    configs = {"sync, POST .../invoke": sync_calls, "async, submitted to last succeeded":
               async_calls}
    runs = alternate(configs, E2E_REPEAT, lambda run, i: run(d, conns))
    for name, results in runs.items():
        rate = statistics.median(r["rate"] for r in results)
        took = statistics.median(r["seconds"] for r in results)
        cpu = statistics.median(r["us_flintd"] for r in results)
        extra = ""
        if "submitted" in results[0]:
            extra = (f"   (all submitted after "
                     f"{statistics.median(r['submitted'] for r in results):.2f} s)")
        print(f"  {name:36s} {rate:7.0f} calls/s {took:6.2f} s   flintd CPU/call "
              f"{cpu:5.0f} us{extra}")
    sync = statistics.median(r["rate"] for r in runs["sync, POST .../invoke"])
    asyn = statistics.median(r["rate"] for r in runs["async, submitted to last succeeded"])
    pairs = sorted(a["rate"] / s["rate"] for a, s in
                   zip(runs["async, submitted to last succeeded"], runs["sync, POST .../invoke"]))
    print(f"  ratio async/sync: {asyn / sync:.2f} (rounds {pairs[0]:.2f} to {pairs[-1]:.2f})")


def hello_daemon(tmp, slots):
    """A flintd (up to 64 clients and a poller from one address) with the C
    hello function, one instance taking slots requests at once, called once."""
    d = Daemon(tmp, ["--max-conns-per-addr", "0"])
    try:
        d.request("POST", "/v1/environments", {"name": "c", "spec": {"runtime": "c",
                                                                    "poolsize": 1}})
        deploy(d, "hello", upload(d, "hello.c"), concurrency=1, requestsPerInstance=slots,
               minScale=1)
        status, body = d.request("POST", "/v1/functions/hello/invoke", b"")
        assert status == 200, body
    except BaseException:
        d.stop()
        raise
    return d


def main():
    exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="flint-bench-async.")
    d = None
    try:
        d = hello_daemon(tmp, SLOTS)
        accepting(d, tmp)
        if E2E_REPEAT > 0:
            end_to_end(d)
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
