"""Message-queue triggers on the builtin connector, in one run against a real
flintd (bench/mq_builtin.sh):

COUNT messages through trigger -> C hello -> respTopic -> ack, against the
same COUNT calls of the same function made directly and synchronously
(`POST /v1/functions/hello/invoke`, bench_invoke) with as many clients as
the trigger has messages in flight (its `concurrency`). The direct calls are
the baseline a user weighs a trigger against: the same function doing the
same work, without the queue; the difference is what the queue costs per
message (a durable fetch, a durable publish of the response, a durable ack).

A trigger round: topics in-R and out-R made, a trigger created paused
(concurrency CONCURRENCY, respTopic out-R, the hello function), COUNT
messages published to in-R (not timed: 32 clients, each publish answered
once durable), then the trigger is unpaused and timed until its consumer
has nothing pending or waiting (every message acked, which comes only after
its response is durable in out-R) and out-R holds COUNT messages. Every
round has topics, consumer and trigger of its own. Rounds alternate with
direct ones, each first in turn, REPEAT times; medians.

Environment: BUILD (build), COUNT (5000), CONCURRENCY (32), SLOTS (64: the
hello function's requestsPerInstance, one instance), REPEAT (3).
"""
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
bench_async = importlib.import_module("async")  # bench/async.py ("async" is a keyword)
alternate, hello_daemon, run_json = (bench_async.alternate, bench_async.hello_daemon,
                                     bench_async.run_json)
from executor import BUILD, cpu_seconds, exit_on_signals  # noqa: E402

COUNT = int(os.environ.get("COUNT", "5000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
SLOTS = int(os.environ.get("SLOTS", "64"))
REPEAT = int(os.environ.get("REPEAT", "3"))
BODY = '{"order":42}'
TIMEOUT = 300  # seconds any one run may take at most


def invoke_args(d, path, conns, count):
    return [os.path.join(BUILD, "bench", "bench_invoke"), "-m", "POST",
            "-H", f"Authorization: Bearer {d.token}", "-H", "Content-Type: application/json",
            "-d", BODY, "-n", str(count), d.api, path, str(conns), str(TIMEOUT)]


def get(d, path):
    status, body = d.request("GET", path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def put_trigger(d, name, spec, revision=None):
    body = {"spec": spec} if revision is not None else {"name": name, "spec": spec}
    if revision is not None:
        body["revision"] = revision
        status, out = d.request("PUT", f"/v1/messagequeuetriggers/{name}", body)
        assert status == 200, out
    else:
        status, out = d.request("POST", "/v1/messagequeuetriggers", body)
        assert status == 201, out
    return json.loads(out)


def wait(what, predicate):
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def drained(d, topic, consumer, out_topic):
    """True once consumer has nothing pending or waiting and out_topic
    holds COUNT messages."""
    info = get(d, f"/v1/topics/{topic}")
    c = next((c for c in info.get("consumers", []) if c["name"] == consumer), None)
    if c is None or c["pending"] or c["lag"]:
        return False
    return get(d, f"/v1/topics/{out_topic}")["messages"] >= COUNT


def trigger_round(d, i):
    name, topic, out = f"mq-{i}", f"in-{i}", f"out-{i}"
    for t in (topic, out):
        status, body = d.request("POST", "/v1/topics", {"name": t})
        assert status in (200, 201), body
    spec = {"topic": topic, "target": {"function": "hello"}, "respTopic": out,
            "concurrency": CONCURRENCY, "paused": True}
    put_trigger(d, name, spec)
    wait("the trigger's consumer", lambda: get(d, f"/v1/messagequeuetriggers/{name}")
         ["status"].get("state") == "paused")
    r = run_json(invoke_args(d, f"/v1/topics/{topic}/messages", 32, COUNT))
    assert r["requests"] == COUNT and r["errors"] == 0, r
    revision = get(d, f"/v1/messagequeuetriggers/{name}")["revision"]
    cpu = cpu_seconds(d.proc.pid)
    start = time.monotonic()
    put_trigger(d, name, dict(spec, paused=False), revision)
    wait("every message acked", lambda: drained(d, topic, f"mqt/{name}", out))
    took = time.monotonic() - start
    return {"rate": COUNT / took, "seconds": took,
            "us_flintd": (cpu_seconds(d.proc.pid) - cpu) / COUNT * 1e6}


def direct_round(d, i):
    cpu = cpu_seconds(d.proc.pid)
    start = time.monotonic()
    r = run_json(invoke_args(d, "/v1/functions/hello/invoke", CONCURRENCY, COUNT))
    took = time.monotonic() - start
    assert r["requests"] == COUNT and r["errors"] == 0, r
    return {"rate": COUNT / took, "seconds": took,
            "us_flintd": (cpu_seconds(d.proc.pid) - cpu) / COUNT * 1e6}


def main():
    exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="flint-bench-mq.")
    d = None
    try:
        d = hello_daemon(tmp, SLOTS)
        print(f"mq builtin: {COUNT} messages through trigger -> hello-c -> respTopic -> ack "
              f"(concurrency {CONCURRENCY}; one instance, {SLOTS} slots) vs the same calls made "
              f"directly ({CONCURRENCY} clients), {os.cpu_count()} cores, {REPEAT} rounds, "
              "alternating, medians")
        configs = {"direct: POST .../invoke (baseline)": direct_round,
                   "trigger: fetch, call, publish, ack": trigger_round}
        runs = alternate(configs, REPEAT, lambda run, i: run(d, i))
        for name, results in runs.items():
            rate = statistics.median(r["rate"] for r in results)
            took = statistics.median(r["seconds"] for r in results)
            cpu = statistics.median(r["us_flintd"] for r in results)
            print(f"  {name:38s} {rate:7.0f} msgs/s {took:6.2f} s   flintd CPU/msg {cpu:5.0f} us")
        base, mq = (runs[n] for n in configs)
        pairs = sorted(m["rate"] / b["rate"] for m, b in zip(mq, base))
        ratio = statistics.median(r["rate"] for r in mq) / statistics.median(
            r["rate"] for r in base)
        print(f"  ratio trigger/direct: {ratio:.2f} (rounds {pairs[0]:.2f} to {pairs[-1]:.2f})")
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
