"""A task's `catch`, through the real flintd, a real function in the sandbox
and the flint CLI: a function that keeps failing, caught by a fallback that
the tasks after it use; the catch seeing the failure's message; a catch that
fails too failing the invocation with both messages; and a kill -9 while the
catch runs: after the restart the catch finishes with the same idempotency
key and the failed task is never called again.

The stand-in function `step` is test_workflow_run's: it records each call in
its log ("key <idempotency key> task <task id>"), where the test reads them.
"""
import json

from conftest import wait_for
from test_workflow_run import deploy_workflows, header, inv, keys, wait_status

BROKEN = {"run": "step", "inputs": {"body": {"status": 500, "why": "no fortune today"}},
          "retry": {"maxAttempts": 2, "backoff": "10ms"}}

# A fails twice; its catch's output is A's, and B goes on with it.
FALLBACK = {
    "output": "B",
    "tasks": {
        "A": {**BROKEN, "catch": {"run": "noop", "inputs": "fallback"}},
        "B": {"run": "noop", "inputs": "{ 'B saw ' + $.Tasks.A.Output }", "requires": ["A"]},
    },
}

# A's dynamic task (the `then` of an if) fails: A's catch catches it.
DYNAMIC = {
    "output": "B",
    "tasks": {
        "A": {"run": "if", "inputs": {"if": True, "then": {**BROKEN}},
              "catch": {"run": "noop", "inputs": "fallback"}},
        "B": {"run": "noop", "inputs": "{ 'B saw ' + $.Tasks.A.Output }", "requires": ["A"]},
    },
}

# The catch is a function that gets the failure's message.
SEES_ERROR = {
    "output": "A",
    "tasks": {
        "A": {**BROKEN, "catch": {"run": "step", "inputs": {"body": {
            "add": "{ $.Tasks.A.Error }"}}}},
    },
}

# The catch fails too.
BOTH_FAIL = {
    "output": "B",
    "tasks": {
        "A": {**BROKEN, "catch": {"run": "step", "inputs": {"body": {
            "status": 502, "why": "the catch broke"}}}},
        "B": {"run": "noop", "requires": ["A"]},
    },
}

# The catch takes a while: flintd is killed while it runs.
SLOW_CATCH = {
    "output": "A",
    "tasks": {
        "A": {**BROKEN, "catch": {"run": "step", "inputs": {"body": {
            "add": "late", "sleep": 4}}}},
    },
}


def mine(flintd, inv_id):
    """[(idempotency key, task)] of the calls of step for inv_id, in order."""
    return [k for k in keys(flintd) if k[0].startswith(inv_id)]


def tasks(i):
    return {t["id"]: t for t in i["tasks"]}


def test_catch_gives_a_fallback(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, fallback=FALLBACK, sees=SEES_ERROR, dynamic=DYNAMIC)
    r = flintd.api("POST", "/v1/workflows/fallback/invoke")
    assert r.status == 200, r.text
    assert r.text == "B saw fallback", r.text
    inv_id = header(r, "x-flint-invocation-id")
    i = inv(flintd, inv_id)
    a = tasks(i)["A"]
    assert a["status"] == "succeeded" and a["attempts"] == 2 and a["output"] == "fallback", a
    assert "no fortune today" in a["caughtError"], a
    c = tasks(i)["A:1/catch"]
    assert c["parent"] == "A" and c["status"] == "succeeded", c
    assert mine(flintd, inv_id) == [(f"{inv_id}/A/1", "A"), (f"{inv_id}/A/2", "A")]
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    added = [e for e in events if e["type"] == "TaskAdded"]
    assert len(added) == 1 and added[0]["data"]["catch"] is True, added

    # a failure of A's dynamic task is A's, and caught
    r = flintd.cli("wf", "run", "--name", "dynamic", check=True)
    assert r.stdout.strip() == "B saw fallback", r

    # the catch's inputs see the error: as $.Tasks.A.Error here
    r = flintd.cli("wf", "run", "--name", "sees", check=True)
    got = json.loads(r.stdout)["seen"][-1]
    assert "function 'step' answered 500" in got and "no fortune today" in got, got


def test_catch_that_fails_fails_with_both_errors(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, both=BOTH_FAIL)
    r = flintd.api("POST", "/v1/workflows/both/invoke")
    assert r.status == 500, r.text
    err = r.json()["error"]
    assert err["task"] == "A" and err["code"] == "workflow_failed", err
    assert "no fortune today" in err["message"], err
    assert "its catch failed too" in err["message"] and "the catch broke" in err["message"], err
    i = inv(flintd, err["invocation"])
    assert i["status"] == "failed" and i["failedTask"] == "A", i
    assert tasks(i)["A"]["status"] == "failed" and tasks(i)["B"]["status"] == "pending", i
    r = flintd.cli("wf", "run", "--name", "both")
    assert r.returncode == 1 and "the catch broke" in r.stderr + r.stdout, r


def test_kill_while_the_catch_runs(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, slow=SLOW_CATCH)
    r = flintd.cli("wf", "run", "--name", "slow", "--async", check=True)
    inv_id = r.stdout.strip()
    catch_key = (f"{inv_id}/A:1/catch/1", "A:1/catch")
    wait_for(lambda: catch_key in mine(flintd, inv_id), timeout=120,
             what="the catch to be called")
    flintd.kill()
    flintd.start()

    i = wait_status(flintd, inv_id, "succeeded", timeout=180)
    assert i["output"]["seen"] == ["late"], i
    calls = mine(flintd, inv_id)
    # A failed for good before the kill: never called again; the catch was
    # called again with the same key (the same attempt)
    assert calls[:2] == [(f"{inv_id}/A/1", "A"), (f"{inv_id}/A/2", "A")], calls
    assert set(calls[2:]) == {catch_key}, calls
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    assert [e["type"] for e in events].count("TaskAdded") == 1, events
