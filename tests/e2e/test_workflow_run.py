"""Workflows run by the engine, through the real flintd, real functions in
the sandbox and the flint CLI: a sequence and a fan-out passing data by
static inputs, a failing task answered 500 with the task and its message,
sync and async invocations, a route to a workflow, `flint wf run`, the
invocations as `flint inv` shows them, a durable sleep across a kill -9,
and a kill -9 in the middle of an invocation: it finishes with the right
output, and no finished task's function runs again.

A sandboxed function cannot reach the host, so the stand-in function
records each call in its log ("key <idempotency key>"), where the test
reads them.
"""
import json
import re
import time

from conftest import deploy, log_lines, wait_for

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Appends its `add` to the list `seen` of the body, after `sleep` seconds;
# answers `status` when given. Records its idempotency key first.
STEP_PY = """
import json
import time

def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    print("key " + h.get("x-flint-idempotency-key", "-") + " task " +
          h.get("x-flint-task-id", "-"), flush=True)
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        body = {"text": req.body.decode()}
    time.sleep(body.get("sleep", 0))
    if int(h.get("x-flint-attempt", "1")) < body.get("failUntil", 0):
        return "not yet", 503
    if body.get("status"):
        return "step says no: " + body.get("why", "-"), body["status"]
    out = {"seen": body.get("seen", []) + [body.get("add", "?")],
           "method": req.method, "query": req.query if hasattr(req, "query") else None,
           "task": h.get("x-flint-task-id"), "attempt": h.get("x-flint-attempt")}
    return json.dumps(out), 200, {"Content-Type": "application/json"}
"""

FUNCTIONS = """
---
kind: function
name: step
spec: {environment: python, code: step.py, entrypoint: step.main, concurrency: 4}
"""

SEQUENCE = {
    "apiVersion": 1,
    "output": "C",
    "tasks": {
        "A": {"run": "step", "inputs": {"body": {"seen": ["start"], "add": "a"}}},
        "B": {"run": "step", "inputs": {"body": {"seen": ["a"], "add": "b"}}, "requires": ["A"]},
        "C": {"run": "step", "inputs": {"body": {"seen": ["a", "b"], "add": "c"}},
              "requires": ["B"]},
    },
}

FANOUT = {
    "output": "Join",
    "tasks": {
        "Start": {"run": "noop", "inputs": "go"},
        **{f"P{i}": {"run": "step", "inputs": {"body": {"add": f"p{i}"}}, "requires": ["Start"]}
           for i in range(4)},
        "Join": {"run": "compose", "inputs": {"n": 4, "from": "fanout"},
                 "requires": [f"P{i}" for i in range(4)]},
    },
}

FAILING = {
    "output": "B",
    "tasks": {
        "A": {"run": "step", "inputs": {"body": {"status": 500, "why": "no fortune today"}}},
        "B": {"run": "noop", "requires": ["A"]},
    },
}

RETRYING = {
    "output": "A",
    "tasks": {
        "A": {"run": "step", "inputs": {"body": {"add": "a", "failUntil": 3}},
              "retry": {"maxAttempts": 3, "backoff": "10ms", "maxBackoff": "50ms"}},
    },
}

SLEEPY = {
    "output": "After",
    "tasks": {
        "Nap": {"run": "sleep", "inputs": "3s"},
        "After": {"run": "step", "inputs": {"body": {"add": "awake"}}, "requires": ["Nap"]},
    },
}

SLOW = {
    "output": "C",
    "tasks": {
        "A": {"run": "step", "inputs": {"body": {"add": "a"}}},
        "B": {"run": "step", "inputs": {"body": {"add": "b", "sleep": 4}}, "requires": ["A"]},
        "C": {"run": "step", "inputs": {"body": {"add": "c"}}, "requires": ["B"]},
    },
}


def deploy_workflows(flintd, tmp_path, **workflows):
    deploy(flintd, tmp_path, FUNCTIONS, {"step.py": STEP_PY})
    for name, spec in workflows.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(spec))
        flintd.cli("wf", "create", "--name", name, "--spec", str(f), check=True)


def header(r, name):
    return {k.lower(): v for k, v in r.headers.items()}.get(name, "")


def keys(flintd):
    """[(idempotency key, task)] of every call of step, in order."""
    out = []
    for _, line in log_lines(flintd, "step"):
        w = line.split()
        if len(w) == 4 and w[0] == "key" and w[2] == "task":
            out.append((w[1], w[3]))
    return out


def inv(flintd, inv_id):
    r = flintd.api("GET", f"/v1/invocations/{inv_id}")
    assert r.status == 200, r.text
    return r.json()


def wait_status(flintd, inv_id, status, timeout=120):
    def done():
        i = inv(flintd, inv_id)
        assert i["status"] in ("running", status), i
        return i if i["status"] == status else None
    return wait_for(done, timeout=timeout, what=f"invocation {inv_id} {status}")


def test_sequence_and_fanout_sync(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, seq=SEQUENCE, fan=FANOUT)
    r = flintd.api("POST", "/v1/workflows/seq/invoke", b"ignored")
    assert r.status == 200, r.text
    assert header(r, "content-type").startswith("application/json")
    out = r.json()
    assert out["seen"] == ["a", "b", "c"] and out["task"] == "C" and out["attempt"] == "1", out
    inv_id = header(r, "x-flint-invocation-id")
    assert UUID.match(inv_id), r.headers
    i = inv(flintd, inv_id)
    assert i["status"] == "succeeded" and i["workflow"] == "seq", i
    assert [t["status"] for t in i["tasks"]] == ["succeeded"] * 3
    assert all(t["attempts"] == 1 for t in i["tasks"])
    # each task called once, with its key "<invocation>/<task>/<attempt>", in order
    calls = [k for k in keys(flintd) if k[0].startswith(inv_id)]
    assert calls == [(f"{inv_id}/{t}/1", t) for t in "ABC"], calls
    # the invocation's inputs: the body (text), the method, the headers
    assert i["inputs"]["body"] == "ignored" and i["inputs"]["method"] == "POST", i["inputs"]

    r = flintd.api("POST", "/v1/workflows/fan/invoke", {"x": 1})
    assert r.status == 200, r.text
    assert r.json() == {"n": 4, "from": "fanout"}
    fan = inv(flintd, header(r, "x-flint-invocation-id"))
    assert fan["inputs"]["default"] == {"x": 1}, fan["inputs"]
    tasks = {t["id"]: t for t in fan["tasks"]}
    assert tasks["Start"]["output"] == "go"
    assert sorted(tasks[f"P{i}"]["output"]["seen"][0] for i in range(4)) == \
        ["p0", "p1", "p2", "p3"]
    # the fan-out's four calls all were made (they ran as their function's
    # concurrency let them)
    fan_calls = [k for k in keys(flintd) if k[0].startswith(fan["invocation"])]
    assert sorted(t for _, t in fan_calls) == ["P0", "P1", "P2", "P3"], fan_calls

    # listed, filtered by workflow and status
    r = flintd.cli("-o", "json", "inv", "list", "--workflow", "fan", check=True)
    items = json.loads(r.stdout)["items"]
    assert [x["invocation"] for x in items] == [fan["invocation"]], items
    r = flintd.cli("inv", "list", "--workflow", "", "--status", "succeeded", check=True)
    assert inv_id in r.stdout and fan["invocation"] in r.stdout, r.stdout
    r = flintd.cli("inv", "get", inv_id, check=True)
    assert "succeeded" in r.stdout and "step" in r.stdout, r.stdout
    r = flintd.cli("-o", "json", "inv", "events", inv_id, check=True)
    types = [e["type"] for e in json.loads(r.stdout)["events"]]
    assert types[0] == "InvocationCreated" and types[-1] == "InvocationSucceeded", types
    assert types.count("TaskStarted") == 3 and types.count("TaskSucceeded") == 3, types


def test_failing_task_and_cli(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, failing=FAILING, seq=SEQUENCE)
    r = flintd.api("POST", "/v1/workflows/failing/invoke")
    assert r.status == 500, r.text
    err = r.json()["error"]
    assert err["task"] == "A" and err["code"] == "workflow_failed", err
    assert "no fortune today" in err["message"] and "task 'A' failed" in err["message"], err
    i = inv(flintd, err["invocation"])
    assert i["status"] == "failed" and i["failedTask"] == "A", i
    assert {t["id"]: t["status"] for t in i["tasks"]} == {"A": "failed", "B": "pending"}

    # flint wf run: the output, or exit 1 with the error
    r = flintd.cli("wf", "run", "--name", "failing")
    assert r.returncode == 1 and "no fortune today" in r.stderr, (r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "seq", "--body", "hello", "-H", "X-Mine: 1",
                   "--query", "a=b c", "--method", "PUT")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["seen"] == ["a", "b", "c"], r.stdout
    last = json.loads(flintd.cli("-o", "json", "inv", "list", "--workflow", "seq",
                                 check=True).stdout)["items"][-1]
    inputs = inv(flintd, last["invocation"])["inputs"]
    assert inputs["body"] == "hello" and inputs["method"] == "PUT", inputs
    assert inputs["query"] == {"a": "b c"} and inputs["headers"]["X-Mine"] == "1", inputs

    # an unknown workflow
    r = flintd.api("POST", "/v1/workflows/nosuch/invoke")
    assert r.status == 404 and r.json()["error"]["code"] == "workflow_not_found", r.text


def test_async_and_route(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, seq=SEQUENCE)
    r = flintd.api("POST", "/v1/workflows/seq/invoke", b"x", {"Prefer": "respond-async"})
    assert r.status == 202, r.text
    inv_id = r.json()["invocation"]
    assert header(r, "location") == f"/v1/invocations/{inv_id}"
    done = wait_status(flintd, inv_id, "succeeded")
    assert done["output"]["seen"] == ["a", "b", "c"], done

    r = flintd.cli("wf", "run", "--name", "seq", "--async", check=True)
    inv_id = r.stdout.strip()
    assert UUID.match(inv_id), r.stdout
    wait_status(flintd, inv_id, "succeeded")

    flintd.cli("route", "create", "--name", "r1", "--url", "/go", "--workflow", "seq",
               check=True)
    def routed():
        from conftest import http
        resp = http("POST", flintd.router_url + "/go", b"{}")
        return resp if resp.status == 200 else None
    resp = wait_for(routed, timeout=30, what="the route to answer")
    assert json.loads(resp.body)["seen"] == ["a", "b", "c"]


def test_task_retried_with_its_policy(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, retrying=RETRYING)
    r = flintd.api("POST", "/v1/workflows/retrying/invoke")
    assert r.status == 200, r.text
    assert r.json()["attempt"] == "3", r.text
    inv_id = header(r, "x-flint-invocation-id")
    a = inv(flintd, inv_id)["tasks"][0]
    assert a["attempts"] == 3 and a["status"] == "succeeded", a
    calls = [k for k, _ in keys(flintd) if k.startswith(inv_id)]
    assert calls == [f"{inv_id}/A/{n}" for n in (1, 2, 3)], calls
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    failed = [e["data"] for e in events if e["type"] == "TaskFailed"]
    assert [f["retry"] for f in failed] == [True, True], failed
    assert "answered 503" in failed[0]["error"], failed


def test_cancel(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, slow=SLOW)
    r = flintd.cli("wf", "run", "--name", "slow", "--async", check=True)
    inv_id = r.stdout.strip()
    wait_for(lambda: any(k[0] == f"{inv_id}/B/1" for k in keys(flintd)), timeout=120,
             what="task B to run")
    flintd.cli("inv", "cancel", inv_id, check=True)
    i = wait_status(flintd, inv_id, "canceled")
    assert {t["id"]: t["status"] for t in i["tasks"]}["C"] == "pending", i
    r = flintd.cli("inv", "cancel", inv_id)
    assert r.returncode == 1, r.stdout


def test_durable_sleep_across_kill(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, sleepy=SLEEPY)
    r = flintd.cli("wf", "run", "--name", "sleepy", "--async", check=True)
    inv_id = r.stdout.strip()

    def timer_started():
        i = inv(flintd, inv_id)
        return any(t.get("timer") == "sleep" for t in i["tasks"])
    wait_for(timer_started, timeout=60, what="the sleep's timer to start")
    flintd.kill()
    flintd.start()
    i = wait_status(flintd, inv_id, "succeeded")
    assert i["output"]["seen"] == ["awake"], i
    nap = {t["id"]: t for t in i["tasks"]}["Nap"]
    assert nap["status"] == "succeeded" and nap["attempts"] == 1, nap
    assert [k for k in keys(flintd) if k[0].startswith(inv_id)] == \
        [(f"{inv_id}/After/1", "After")]
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    types = [e["type"] for e in events]
    assert types.count("TimerStarted") == 1 and types.count("TimerFired") == 1, types


def test_kill_mid_invocation(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, slow=SLOW)
    r = flintd.cli("wf", "run", "--name", "slow", "--async", check=True)
    inv_id = r.stdout.strip()
    wait_for(lambda: any(k[0] == f"{inv_id}/B/1" for k in keys(flintd)), timeout=120,
             what="task B to be called")
    flintd.kill()
    flintd.start()
    i = wait_status(flintd, inv_id, "succeeded", timeout=180)
    assert i["output"]["seen"] == ["c"], i
    calls = [k for k in keys(flintd) if k[0].startswith(inv_id)]
    # A had finished: never called again; B was called again with the same
    # key (the same attempt); C once
    assert calls.count((f"{inv_id}/A/1", "A")) == 1, calls
    assert set(calls) == {(f"{inv_id}/{t}/1", t) for t in "ABC"}, calls
    assert calls.count((f"{inv_id}/C/1", "C")) == 1, calls
    assert all(t["attempts"] == 1 for t in i["tasks"]), i


def test_whales_example_runs(flintd):
    import os
    from conftest import ROOT
    flintd.cli("apply", "-f", os.path.join(ROOT, "examples", "whales"), check=True)
    r = flintd.cli("wf", "run", "--name", "whales", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "< Workflows run durably. >" in r.stdout and "##" in r.stdout, r.stdout
    # the one with expressions and `if`: a short fortune is said by the
    # whale (the `then` task, run as a dynamic task), a long one alone
    r = flintd.cli("wf", "run", "--name", "fortunewhale", timeout=120)
    assert r.returncode == 0, r.stderr
    said = r.stdout.strip()
    assert ("##" in said and "< " in said) or len(said) >= 40, said
    # one workflow per construct of Fission Workflows' format, run on the
    # same two functions
    r = flintd.cli("wf", "run", "--name", "greetwhale", "--body", "Ada", timeout=120)
    assert r.returncode == 0 and "< Hello, Ada! >" in r.stdout, (r.stdout, r.stderr)
    # `if`: the `then` task runs as a dynamic task, `else` is a value
    r = flintd.cli("wf", "run", "--name", "askwhale", "--body", "Deep or shallow?",
                   timeout=120)
    assert r.returncode == 0 and "< Deep or shallow? >" in r.stdout, (r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "askwhale", "--body", "shallow", timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "not a question: shallow", \
        (r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "squarewhale", timeout=120)
    assert r.returncode == 0 and "< [4,9,16] >" in r.stdout, (r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "weatherwhale", "--body", "Stormy", timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "dive deep", (r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "weatherwhale", "--body", "sunny", timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "breach", (r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "weatherwhale", "--body", "fog", timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "drift along", (r.stdout, r.stderr)
    # `while`: 1 doubled until it reaches 100, in seven rounds
    r = flintd.cli("wf", "run", "--name", "doublewhale", timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "128", (r.stdout, r.stderr)
    # a noop whose output is an inline workflow runs it as a dynamic one: the
    # whale says the first three words of a fortune
    r = flintd.cli("wf", "run", "--name", "nestwhale", timeout=120)
    assert r.returncode == 0 and "##" in r.stdout, (r.stdout, r.stderr)
    firsts = ("A journey of", "Fortune favours the", "Slow and steady")
    assert any(f"< {f} >" in r.stdout for f in firsts), r.stdout
    r = flintd.cli("wf", "run", "--name", "strandedwhale", timeout=120)
    assert r.returncode == 1 and "the tide is out" in r.stderr, (r.stdout, r.stderr)
    assert "swimming" not in r.stdout


def test_misc_examples_run(flintd):
    import os
    from conftest import ROOT
    flintd.cli("apply", "-f", os.path.join(ROOT, "examples", "misc"), check=True)
    # repeat of javascript, each round's _prev the output of the one before
    for n, fact in ((0, 1), (1, 1), (5, 120), (10, 3628800)):
        r = flintd.cli("wf", "run", "--name", "factorial", "--body", str(n), timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == str(fact), (n, r.stdout, r.stderr)
    r = flintd.cli("wf", "run", "--name", "reflect", "--body", '{"a": 1}', "--query", "q=2",
                   "-H", "Content-Type: application/json",
                   timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inputs"]["default"] == {"a": 1} and out["inputs"]["query"] == {"q": "2"}, out
    assert {"default", "headers", "method", "query"} <= set(out["fields"]), out


def test_finished_invocations_are_deleted_after_the_retention(flintd_factory, tmp_path):
    """A finished invocation is kept for --retention, then deleted with its
    event stream by the engine's sweep (a minute apart, the first a few
    seconds after the start); one still running is never swept."""
    flintd = flintd_factory(extra_args=["--retention", "2s"])
    asleep = {"output": "S", "tasks": {"S": {"run": "sleep", "inputs": "1h"}}}
    deploy_workflows(flintd, tmp_path, sequence=SEQUENCE, asleep=asleep)
    done = flintd.cli("wf", "run", "--name", "sequence", "--async", check=True).stdout.strip()
    running = flintd.cli("wf", "run", "--name", "asleep", "--async", check=True).stdout.strip()
    wait_status(flintd, done, "succeeded")
    wait_for(lambda: flintd.api("GET", f"/v1/invocations/{done}").status == 404, timeout=180,
             what="the finished invocation swept")
    assert done not in flintd.cli("inv", "list", "--all", check=True).stdout
    r = flintd.api("GET", f"/v1/invocations/{done}/events")
    assert r.status == 404, r.text
    # the one still running is there, whatever its age
    assert inv(flintd, running)["status"] == "running"
    flintd.cli("inv", "cancel", running, check=True)
