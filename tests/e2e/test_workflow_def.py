"""Workflows as a kind, through the real flintd and the flint CLI: create,
get, list, update (a new revision), delete; every error of a definition
listed at create with its task; the functions a workflow runs held against
deletion; `flint wf validate` offline; `flint apply` of `*.wf.yaml` files
(examples/whales); routes to workflows checked (test_workflow_run.py
runs them).
"""
import json
import os

from conftest import ROOT, deploy

FN_PY = """
def main(req):
    return "ok"
"""

FUNCTIONS = """
---
kind: function
name: fortune
spec: {environment: python, code: fn.py, entrypoint: fn.main}
---
kind: function
name: whalesay
spec: {environment: python, code: fn.py, entrypoint: fn.main}
"""

ECHO = """apiVersion: 1
output: Greet
tasks:
  Greet:
    run: whalesay
    inputs:
      body: "{ 'Hello, ' + $.Invocation.Inputs.default + '!' }"
"""

NESTED = """{"apiVersion": "v1", "output": "Greeting", "tasks": {
  "Saying": {"run": "fortune"},
  "Greeting": {"run": "greetwhale", "inputs": "{ output('Saying').split(' ')[0] }",
               "requires": ["Saying"]}}}
"""

BROKEN = """output: Nowhere
tasks:
  A:
    run: whalesy
    requires: [C]
  B:
    run: foreach
    inputs:
      foreach: [1, 2]
      do: {run: nosuch}
    requires: [B]
"""


def wf_get(flintd, name):
    return json.loads(flintd.cli("-o", "json", "wf", "get", "--name", name, check=True).stdout)


def test_workflow_kind_create_get_update_delete(flintd, tmp_path):
    deploy(flintd, tmp_path, FUNCTIONS, {"fn.py": FN_PY})
    (tmp_path / "echo.yaml").write_text(ECHO)
    (tmp_path / "nested.json").write_text(NESTED)

    flintd.cli("wf", "create", "--name", "greetwhale", "--spec", str(tmp_path / "echo.yaml"),
               check=True)
    # a workflow may run another workflow (functions are looked up first)
    flintd.cli("wf", "create", "--name", "nested", "--spec", str(tmp_path / "nested.json"),
               check=True)
    echo = wf_get(flintd, "greetwhale")
    assert echo["kind"] == "workflow" and echo["spec"]["output"] == "Greet"
    assert echo["spec"]["tasks"]["Greet"]["inputs"]["body"] == \
        "{ 'Hello, ' + $.Invocation.Inputs.default + '!' }"
    listed = flintd.cli("wf", "list", check=True).stdout.splitlines()
    assert listed[0].split()[:2] == ["NAME", "OUTPUT"]
    assert [line.split()[0] for line in listed[1:]] == ["greetwhale", "nested"]

    # an update is a new revision; the same spec again writes nothing
    rev = echo["revision"]
    (tmp_path / "echo2.yaml").write_text(ECHO.replace("body:", "text:"))
    flintd.cli("wf", "update", "--name", "greetwhale", "--spec", str(tmp_path / "echo2.yaml"),
               check=True)
    updated = wf_get(flintd, "greetwhale")
    assert updated["revision"] > rev and "text" in updated["spec"]["tasks"]["Greet"]["inputs"]
    flintd.cli("wf", "update", "--name", "greetwhale", "--spec", str(tmp_path / "echo2.yaml"),
               check=True)
    assert wf_get(flintd, "greetwhale")["revision"] == updated["revision"]

    # every error at once, each with its task; nothing stored
    (tmp_path / "broken.yaml").write_text(BROKEN)
    r = flintd.cli("wf", "create", "--name", "broken", "--spec", str(tmp_path / "broken.yaml"))
    assert r.returncode == 1 and "HTTP 400" in r.stderr, r.stderr
    for message in ["spec: 6 errors", "tasks: no start task",
                    "tasks.A.run: 'whalesy' is not a built-in, a function or a workflow",
                    "tasks.B.inputs.do.run: 'nosuch' is not a built-in, a function or a workflow",
                    "output: 'Nowhere' is not a task of this workflow",
                    "tasks.A.requires: 'C' is not a task of this workflow",
                    "tasks: circular dependency: B -> B"]:
        assert message in r.stderr, (message, r.stderr)
    assert flintd.cli("wf", "get", "--name", "broken").returncode == 1
    # the API says the same, as JSON
    r = flintd.api("POST", "/v1/workflows",
                   {"name": "broken", "spec": {"output": "A", "tasks": {"A": {"run": "x"}}}})
    assert r.status == 400 and r.json()["error"]["code"] == "bad_spec", r.text
    assert "tasks.A.run: 'x' is not a built-in" in r.json()["error"]["message"]

    # a function a workflow runs may not be deleted under it
    r = flintd.cli("fn", "delete", "--name", "whalesay")
    assert r.returncode == 1 and "HTTP 409" in r.stderr and "greetwhale" in r.stderr, r.stderr
    flintd.cli("wf", "delete", "--name", "greetwhale", check=True)
    r = flintd.cli("fn", "delete", "--name", "whalesay")
    assert r.returncode == 0, r.stderr
    assert flintd.cli("wf", "get", "--name", "greetwhale").returncode == 1

    # routes to workflows: the workflow must exist
    r = flintd.cli("route", "create", "--name", "r1", "--url", "/w", "--workflow", "missing")
    assert r.returncode == 1 and "workflow 'missing' does not exist" in r.stderr, r.stderr
    flintd.cli("route", "create", "--name", "r1", "--url", "/w", "--workflow", "nested",
               check=True)


def test_validate_offline_lists_every_error(flintd, tmp_path):
    bad = tmp_path / "bad.wf.yaml"
    bad.write_text("output: A\ntasks:\n  A: {requires: [A], inputs: \"{ 1 + }\"}\n")
    r = flintd.cli("wf", "validate", "--spec", str(bad))
    assert r.returncode == 1
    assert "tasks.A.inputs.default: expression { 1 + }: SyntaxError" in r.stderr, r.stderr
    assert "no start task" in r.stderr and "circular dependency: A -> A" in r.stderr
    assert "3 errors" in r.stderr
    example = os.path.join(ROOT, "examples", "whales", "fortunewhale.wf.yaml")
    r = flintd.cli("wf", "validate", "--spec", example)
    assert r.returncode == 0 and "a valid workflow" in r.stdout, r.stderr


def test_apply_takes_workflow_files(flintd):
    example = os.path.join(ROOT, "examples", "whales")
    out = flintd.cli("apply", "-f", example, check=True).stdout
    assert "workflow/fortunewhale created" in out, out
    wf = wf_get(flintd, "fortunewhale")
    assert wf["spec"]["tasks"]["MaybeWhale"]["run"] == "if"
    out = flintd.cli("apply", "-f", example, check=True).stdout
    assert "workflow/fortunewhale unchanged" in out, out
