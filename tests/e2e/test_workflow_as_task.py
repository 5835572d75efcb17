"""A workflow run as a task (`run: OTHER_WORKFLOW`), through the real flintd, a
real function in the sandbox and the flint CLI: the task's inputs are the
other workflow's inputs, its output the task's, the revision it ran pinned in
its TaskAdded, an update of the other workflow only seen by invocations that
start after it, also across a kill -9 while it runs; and a cycle (ping runs
pong runs ping) ends at the depth bound with a clear error instead of
recursing forever.

The stand-in function `step` is test_workflow_run's.
"""
import json

from conftest import wait_for
from test_workflow_run import deploy_workflows, inv, keys, wait_status

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


# The workflow run takes a while: an update and a kill -9 come while it runs.
SLOW_INNER = {"output": "Nap", "tasks": {"Nap": {"run": "step", "inputs": {"body": {
    "add": "v1", "sleep": 4}}}}}
SLOW_OUTER = {"output": "Call", "tasks": {"Call": {"run": "slowinner"}}}


def test_pinned_revision_across_an_update_and_a_kill(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, slowinner=SLOW_INNER, slowouter=SLOW_OUTER)
    r = flintd.cli("wf", "run", "--name", "slowouter", "--async", check=True)
    inv_id = r.stdout.strip()
    nap = (f"{inv_id}/Call:1/Nap/1", "Call:1/Nap")
    wait_for(lambda: nap in keys(flintd), timeout=120, what="the inner task to be called")
    v2 = {"output": "T", "tasks": {"T": {"run": "noop", "inputs": "v2"}}}
    flintd.cli("wf", "update", "--name", "slowinner", "--spec", write(tmp_path, "v2", v2),
               check=True)
    flintd.kill()
    flintd.start()
    i = wait_status(flintd, inv_id, "succeeded", timeout=180)
    # the revision pinned when Call started, called again with the same key
    assert i["output"]["seen"] == ["v1"], i
    assert {k for k in keys(flintd) if k[0].startswith(inv_id)} == {nap}
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    assert [e["type"] for e in events].count("TaskAdded") == 1, events
    # a new invocation runs the new revision
    r = flintd.cli("wf", "run", "--name", "slowouter", check=True)
    assert r.stdout.strip() == "v2", r


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
