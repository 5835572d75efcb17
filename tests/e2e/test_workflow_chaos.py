"""Chaos for the workflow engine: 200 invocations mixing durable sleeps,
fan-out, chains and task retries, while flintd is killed with SIGKILL ten
times at random moments and started again. Every invocation ends
succeeded with the output its own inputs call for, and no finished task's
function is called again.

The moments are random but seeded: the seed is printed (and CHAOS_SEED
replays one). Each round submits a batch of invocations (each accepted
202, so durable), lets flintd run for a random 0.1 to 1.5 s, then kills
it (the whole process group: instances and evaluators die with it) and
starts it again on the same data directory; the eleventh round is not
cut short. Every kill finds invocations running (asserted: each batch's
`sleepy` ones wait 2 s). flintd runs with a long expression deadline (see
the test). Then the test waits, with a generous deadline, for every
invocation to end.

How calls are recorded. A sandboxed function has no path on the host it
can write (its only writable place is a private /tmp that dies with the
instance), and function logs pass through flintd's pipe, so a line written
just before a kill may never reach the disk. So the stand-in function
`step` records each call by publishing it to the topic `calls` (through
the socket flintd serves inside its sandbox, FLINT_PUBLISH) *before* it
does anything else, and answers only once the record is durable: a
durable append-only log of every call whose answer the engine could have
seen. A record holds the idempotency key the engine sent
(X-Flint-Idempotency-Key, "<invocation>/<task>/<attempt>"), the
invocation id, task id and attempt of their own headers, and the wall time
the call began.

What is asserted, and why. The engine's contract (docs/architecture.md,
src/wf) is at least once per task attempt, with a stable key per attempt:
every decision is appended before it is acted on, so a call under way
when flintd is killed (its TaskStarted durable, its TaskSucceeded not) is
made again after the restart, with the same key, and a task whose
TaskSucceeded is durable is never called again. Each record's time puts
it in one lifetime of flintd (the kills and starts are timed by this
test on the same clock; a record is made while its flintd lives, as the
publish goes through it). So, for every function task of every
invocation:
- every record's key is "<its invocation>/<its task>/<its attempt>", of
  a task and attempt the invocation knows;
- each attempt the invocation counts was called at least once, and the
  task's attempts are exactly what its inputs ask for (2 when the step
  fails its first attempt, 1 otherwise): a kill never costs an attempt;
- within one lifetime of flintd no key is called twice: a repeat comes
  only from a restart;
- no call of the task happens in a lifetime after the one in which its
  TaskSucceeded became durable (the event's `at`, stamped by the flintd
  that made it durable): a finished task is never run again;
- the stream holds one TaskSucceeded per task.
The repeated keys (calls cut by a kill and made again) are counted and
printed; they are allowed, and only as above.
"""
import json
import os
import random
import time
from collections import Counter, defaultdict

from conftest import deploy, list_all, wait_for

TOTAL = 200
KILLS = 10
FAN = 6

# Records the call (durably) before anything else, then answers: 503 on
# the first attempt when the body says failFirst, else
# {"n", "got": "<add>-<n>", "seen": seen + [got]}.
STEP_PY = """
import json
import time

import flint

def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    attempt = int(h.get("x-flint-attempt", "0"))
    record = {"key": h.get("x-flint-idempotency-key"), "inv": h.get("x-flint-invocation-id"),
              "task": h.get("x-flint-task-id"), "attempt": attempt, "t": time.time()}
    try:
        flint.publish("calls", json.dumps(record))
    except Exception as e:
        return "cannot record the call: " + str(e), 503
    body = json.loads(req.body or b"{}")
    if body.get("failFirst") and attempt == 1:
        return "a first attempt fails", 503
    got = "%s-%s" % (body.get("add"), body.get("n"))
    out = {"n": body.get("n"), "got": got, "seen": (body.get("seen") or []) + [got]}
    return json.dumps(out), 200, {"Content-Type": "application/json"}
"""

FUNCTIONS = """
---
kind: function
name: step
spec: {environment: python, code: step.py, entrypoint: step.main, concurrency: 4,
       publishes: [calls]}
"""

RETRY = {"maxAttempts": 3, "backoff": "100ms", "maxBackoff": "300ms"}


def step(add, requires=(), fail=True, seen=None):
    body = {"n": "{param().n}", "add": add}
    if fail:
        body["failFirst"] = "{param().failFirst}"
    if seen is not None:
        body["seen"] = seen
    return {"run": "step", "inputs": {"body": body}, "requires": list(requires), "retry": RETRY}


WORKFLOWS = {
    # a durable sleep, then a call
    "sleepy": {
        "output": "A",
        "tasks": {"Nap": {"run": "sleep", "inputs": "2s"}, "A": step("a", ["Nap"])},
    },
    # a fan-out of FAN calls (the first may fail once), joined by a call
    "fan": {
        "output": "Join",
        "tasks": {
            "Start": {"run": "noop", "inputs": "go"},
            **{f"P{k}": step(f"p{k}", ["Start"], fail=k == 0) for k in range(FAN)},
            "Join": step("join", [f"P{k}" for k in range(FAN)], fail=False,
                         seen=[f"{{output('P{k}').got}}" for k in range(FAN)]),
        },
    },
    # a chain with a sleep in the middle, passing data along
    "chain": {
        "output": "C",
        "tasks": {
            "A": step("a", fail=False),
            "Nap": {"run": "sleep", "inputs": "1s", "requires": ["A"]},
            "B": step("b", ["Nap"], fail=False, seen="{output('A').seen}"),
            "C": step("c", ["B"], seen="{output('B').seen}"),
        },
    },
}


def plan(i):
    """Invocation i's workflow and inputs."""
    return list(WORKFLOWS)[i % 3], {"n": i, "failFirst": i % 4 == 1}


def expected(name, inputs):
    """(output, {task: attempts}) of a function-calling invocation."""
    n, fail = inputs["n"], inputs["failFirst"]
    again = 2 if fail else 1
    if name == "sleepy":
        return {"n": n, "got": f"a-{n}", "seen": [f"a-{n}"]}, {"A": again}
    if name == "fan":
        parts = [f"p{k}-{n}" for k in range(FAN)]
        attempts = {f"P{k}": (again if k == 0 else 1) for k in range(FAN)}
        return ({"n": n, "got": f"join-{n}", "seen": parts + [f"join-{n}"]},
                dict(attempts, Join=1))
    return ({"n": n, "got": f"c-{n}", "seen": [f"a-{n}", f"b-{n}", f"c-{n}"]},
            {"A": 1, "B": 1, "C": again})


def submit(flintd, i):
    name, inputs = plan(i)
    r = flintd.api("POST", f"/v1/workflows/{name}/invoke", inputs, {"Prefer": "respond-async"})
    assert r.status == 202, (name, r.status, r.text)
    return r.json()["invocation"]


def records(flintd):
    """Every message of the topic `calls`, as the records they hold."""
    out, seq = [], 1
    for _ in range(10000):
        r = flintd.api("GET", f"/v1/topics/calls/messages?from={seq}&limit=1000")
        assert r.status == 200, r.text
        page = r.json()
        out += [json.loads(m["body"]) for m in page["messages"]]
        if not page["messages"]:
            return out
        seq = page["next"]
    raise AssertionError("too many pages of records")


def test_chaos_kills_lose_nothing_and_repeat_no_finished_task(flintd_factory, tmp_path):
    # The default expression deadline (100 ms of CPU time) holds: on this
    # loaded machine (ten processes started again at every kill) a one-line
    # expression waits for a CPU, but that is wall time, not CPU time.
    flintd = flintd_factory()
    seed = int(os.environ.get("CHAOS_SEED", str(int(time.time() * 1000) % 1000000)))
    print(f"\nchaos seed {seed} (CHAOS_SEED={seed} replays these moments)")
    rng = random.Random(seed)

    r = flintd.api("POST", "/v1/topics", {"name": "calls"})
    assert r.status == 201, r.text
    deploy(flintd, tmp_path, FUNCTIONS, {"step.py": STEP_PY})
    for name, spec in WORKFLOWS.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(spec))
        flintd.cli("wf", "create", "--name", name, "--spec", str(f), check=True)

    ids = {}  # invocation id -> i
    # lifetimes of flintd: [started at, killed at] on the wall clock
    lifetimes = [[time.time(), None]]
    running_at_kill = []
    batches = [TOTAL * k // (KILLS + 1) for k in range(KILLS + 2)]
    for rnd in range(KILLS + 1):
        for i in range(batches[rnd], batches[rnd + 1]):
            ids[submit(flintd, i)] = i
        if rnd == KILLS:
            break
        time.sleep(rng.uniform(0.1, 1.5))  # the random moment of this kill
        running_at_kill.append(sum(len(list_all(flintd, workflow=name, status="running"))
                                   for name in WORKFLOWS))
        flintd.kill()
        lifetimes[-1][1] = time.time()
        lifetimes.append([time.time(), None])
        flintd.start()
    assert len(ids) == TOTAL
    # every kill cut work under way: each batch's `sleepy` invocations wait
    # 2 s, longer than any moment chosen
    print(f"invocations running just before each kill: {running_at_kill}")
    assert min(running_at_kill) > 0, running_at_kill

    def all_ended():
        items = {x["invocation"]: x["status"] for name in WORKFLOWS
                 for x in list_all(flintd, workflow=name)}
        assert set(items) >= set(ids), set(ids) - set(items)
        return items if all(items[i] != "running" for i in ids) else None
    statuses = wait_for(all_ended, timeout=240, interval=1, what="every invocation to end")
    failed = [flintd.api("GET", f"/v1/invocations/{i}").json() for i in ids
              if statuses[i] != "succeeded"]
    assert failed == [], failed[:3]

    def lifetime(t, slack=0.0):
        for n, (start, end) in enumerate(lifetimes):
            if start <= t + slack and (end is None or t <= end):
                return n
        raise AssertionError(f"a call at {t} began while no flintd ran: {lifetimes}")

    calls = defaultdict(list)  # (invocation, task) -> [(attempt, key, lifetime)]
    for rec in records(flintd):
        assert rec["inv"] in ids, rec
        assert rec["key"] == f"{rec['inv']}/{rec['task']}/{rec['attempt']}", rec
        calls[(rec["inv"], rec["task"])].append((rec["attempt"], rec["key"],
                                                 lifetime(rec["t"])))

    repeated = 0
    for inv_id, i in ids.items():
        name, inputs = plan(i)
        want_output, want_attempts = expected(name, inputs)
        r = flintd.api("GET", f"/v1/invocations/{inv_id}")
        assert r.status == 200, r.text
        inv = r.json()
        assert inv["output"] == want_output, (inv_id, name, inputs, inv["output"])
        tasks = {t["id"]: t for t in inv["tasks"]}
        assert all(t["status"] == "succeeded" for t in tasks.values()), inv
        events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
        done = defaultdict(list)
        for e in events:
            if e["type"] == "TaskSucceeded":
                done[e["data"]["task"]].append(e["at"] / 1000.0)
        assert all(len(v) == 1 for v in done.values()) and set(done) == set(tasks), \
            (inv_id, dict(done))
        assert {k for (v, k) in calls if v == inv_id} <= set(want_attempts), inv_id
        for task, attempts in want_attempts.items():
            assert tasks[task]["attempts"] == attempts, (inv_id, task, tasks[task])
            made = calls[(inv_id, task)]
            # every attempt counted was called, and no other
            assert sorted({a for a, _, _ in made}) == list(range(1, attempts + 1)), \
                (inv_id, task, made)
            # a key twice only across a restart
            per_life = Counter((key, life) for _, key, life in made)
            assert max(per_life.values()) == 1, (inv_id, task, made)
            repeated += len(made) - len({key for _, key, _ in made})
            # nothing after the lifetime in which the task's success was durable
            finished_in = lifetime(done[task][0], slack=0.001)  # `at` is in whole ms
            assert max(life for _, _, life in made) <= finished_in, \
                (inv_id, task, made, finished_in)
    print(f"{TOTAL} invocations, {KILLS} kills, {sum(len(v) for v in calls.values())} calls, "
          f"{repeated} repeated with the same key after a kill")
