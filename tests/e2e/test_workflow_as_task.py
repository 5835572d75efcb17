"""A workflow run as a task (`run: OTHER_WORKFLOW`), through the real flintd, a
real function in the sandbox and the flint CLI: the task's inputs are the
other workflow's inputs, its output the task's, the revision it ran pinned in
its TaskAdded, an update of the other workflow only seen by invocations that
start after it; and a cycle (ping runs pong runs ping) ends at the depth bound
with a clear error instead of recursing forever.

The stand-in function `step` is test_workflow_run's.
"""
import json

from test_workflow_run import deploy_workflows, inv, wait_status

# `param()` is the invocation's input `default`: in a workflow run as a task,
# the task's.
INNER = {
    "output": "Twice",
    "tasks": {
        "Echo": {"run": "step", "inputs": {"body": {"add": "{ param() }"}}},
        "Twice": {"run": "noop", "inputs": "{ output('Echo').seen[0] + '!' }",
                  "requires": ["Echo"]},
    },
}

OUTER = {
    "output": "Use",
    "tasks": {
        "Call": {"run": "inner", "inputs": "{ param() + ' there' }"},
        "Use": {"run": "noop", "inputs": "{ 'got ' + output('Call') }", "requires": ["Call"]},
    },
}

PING = {"output": "A", "tasks": {"A": {"run": "noop", "inputs": "end"}}}
PONG = {"output": "A", "tasks": {"A": {"run": "ping"}}}


def write(tmp_path, name, spec):
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(spec))
    return str(f)


def test_workflow_as_a_task(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, inner=INNER, outer=OUTER)
    r = flintd.cli("wf", "run", "--name", "outer", "--body", "hello", check=True)
    assert r.stdout.strip() == "got hello there!", r
    last = json.loads(flintd.cli("-o", "json", "inv", "list", "--workflow", "outer",
                                 check=True).stdout)["items"][-1]["invocation"]
    i = inv(flintd, last)
    tasks = {t["id"]: t for t in i["tasks"]}
    assert tasks["Call"]["runsWorkflow"] is True and tasks["Call"]["status"] == "succeeded", i
    assert tasks["Call:1/Echo"]["parent"] == "Call", i
    assert tasks["Call:1/Twice"]["output"] == "hello there!", i
    events = flintd.api("GET", f"/v1/invocations/{last}/events").json()["events"]
    added = [e["data"] for e in events if e["type"] == "TaskAdded"]
    rev = json.loads(flintd.cli("-o", "json", "wf", "get", "--name", "inner",
                                check=True).stdout)["revision"]
    assert len(added) == 1 and added[0]["name"] == "inner" and added[0]["revision"] == rev, added

    # an update of inner: the next invocation runs the new revision
    new = {"output": "T", "tasks": {"T": {"run": "noop", "inputs": "{ 'v2 ' + param() }"}}}
    flintd.cli("wf", "update", "--name", "inner", "--spec", write(tmp_path, "inner2", new),
               check=True)
    r = flintd.cli("wf", "run", "--name", "outer", "--body", "hi", check=True)
    assert r.stdout.strip() == "got v2 hi there", r


def test_a_cycle_of_workflows_ends_at_the_bound(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, ping=PING, pong=PONG)
    r = flintd.cli("wf", "run", "--name", "pong", check=True)
    assert r.stdout.strip() == "end", r
    # ping runs pong, which runs ping: only possible by an update
    flintd.cli("wf", "update", "--name", "ping", "--spec",
               write(tmp_path, "ping2", {"output": "A", "tasks": {"A": {"run": "pong"}}}),
               check=True)
    r = flintd.api("POST", "/v1/workflows/ping/invoke")
    assert r.status == 500, r.text
    err = r.json()["error"]
    assert "workflows run within each other more than 10 deep" in err["message"], err
    assert "ping -> pong -> ping" in err["message"], err
    i = wait_status(flintd, err["invocation"], "failed")
    assert len(i["tasks"]) <= 12, [t["id"] for t in i["tasks"]]
