"""Workflow expressions through the real flintd: a task's inputs hold
`{...}` JavaScript evaluated by the sandboxed flint-expr processes with the
scope $ = {Workflow, Invocation, Tasks} and Fission Workflows' helpers; the
values reach a real function (echo in the sandbox). The resolved inputs
are what TaskScheduled records. An expression that throws fails its task
with the expression and the engine's message; a runaway one fails its task
at its deadline while another invocation started with it succeeds.
"""
import json

from conftest import deploy, wait_for

# Answers its body as JSON (a body that is no JSON as {"text": ...}).
ECHO_PY = """
import json

def main(req):
    try:
        body = json.loads(req.body or b"null")
    except ValueError:
        body = {"text": req.body.decode()}
    return json.dumps(body), 200, {"Content-Type": "application/json"}
"""

FUNCTIONS = """
---
kind: function
name: echo
spec: {environment: python, code: echo.py, entrypoint: echo.main, concurrency: 4}
"""

PASSING = {
    "output": "Second",
    "tasks": {
        "First": {"run": "echo", "inputs": {"body": {"word": "hello"}}},
        "Second": {
            "run": "echo",
            "requires": ["First"],
            "inputs": {"body": {
                "prev": "{output('First')}",
                "param": "{param()}",
                "inv": "{$.Invocation.Inputs.default}",
                "word": "{ output('First').word + ', ' + $.Workflow.Name }",
                "list": ["{1 + 1}", "as it is", {"deep": "{task('First').Status}"}],
                "missing": "{output('NoSuchTask')}",
                "mine": "{input('First', 'body').word}",
            }},
        },
    },
}

THROWING = {
    "output": "B",
    "tasks": {
        "A": {"run": "noop", "inputs": "go"},
        "B": {"run": "echo", "inputs": "{ null.x }", "requires": ["A"]},
    },
}

RUNAWAY = {
    "output": "B",
    "tasks": {
        "A": {"run": "noop", "inputs": "go"},
        "B": {"run": "echo", "inputs": "{ (function(){while(true){}})() }", "requires": ["A"]},
    },
}


def deploy_workflows(flintd, tmp_path, **workflows):
    deploy(flintd, tmp_path, FUNCTIONS, {"echo.py": ECHO_PY})
    for name, spec in workflows.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(spec))
        flintd.cli("wf", "create", "--name", name, "--spec", str(f), check=True)


def inv(flintd, inv_id):
    r = flintd.api("GET", f"/v1/invocations/{inv_id}")
    assert r.status == 200, r.text
    return r.json()


def wait_ended(flintd, inv_id, timeout=120):
    def done():
        i = inv(flintd, inv_id)
        return i if i["status"] != "running" else None
    return wait_for(done, timeout=timeout, what=f"invocation {inv_id} to end")


def test_expressions_reach_the_function(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, passing=PASSING)
    r = flintd.api("POST", "/v1/workflows/passing/invoke", {"n": 7})
    assert r.status == 200, r.text
    out = r.json()
    assert out == {
        "prev": {"word": "hello"},
        "param": {"n": 7},
        "inv": {"n": 7},
        "word": "hello, passing",
        "list": [2, "as it is", {"deep": "succeeded"}],
        "missing": None,
        "mine": "hello",
    }, out
    inv_id = {k.lower(): v for k, v in r.headers.items()}["x-flint-invocation-id"]
    r = flintd.cli("-o", "json", "inv", "events", inv_id, check=True)
    events = json.loads(r.stdout)["events"]
    # the inputs recorded are the evaluated ones: a replay never evaluates
    # a started task's expressions again
    sched = [e["data"] for e in events
             if e["type"] == "TaskScheduled" and e["data"]["task"] == "Second"]
    assert len(sched) == 1 and sched[0]["inputs"]["body"] == out, sched


def test_expression_error_fails_its_task(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, throwing=THROWING)
    r = flintd.api("POST", "/v1/workflows/throwing/invoke")
    assert r.status == 500, r.text
    err = r.json()["error"]
    assert err["task"] == "B", err
    assert "inputs.default: { null.x }: TypeError" in err["message"], err
    i = inv(flintd, err["invocation"])
    assert i["status"] == "failed" and i["failedTask"] == "B", i


def test_runaway_expression_fails_at_its_deadline(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, runaway=RUNAWAY, passing=PASSING)
    ids = {}
    for name in ("runaway", "passing"):
        r = flintd.cli("wf", "run", "--name", name, "--async", check=True)
        ids[name] = r.stdout.strip()
    bad = wait_ended(flintd, ids["runaway"])
    good = wait_ended(flintd, ids["passing"])
    assert bad["status"] == "failed" and bad["failedTask"] == "B", bad
    assert "took longer than" in bad["error"], bad
    assert "inputs.default: { (function(){while(true){}})() }" in bad["error"], bad
    assert good["status"] == "succeeded", good
    assert good["output"]["prev"] == {"word": "hello"}, good
    # the evaluators were replaced: expressions still run afterwards
    r = flintd.cli("wf", "run", "--name", "passing", "--async", check=True)
    assert wait_ended(flintd, r.stdout.strip())["status"] == "succeeded"
