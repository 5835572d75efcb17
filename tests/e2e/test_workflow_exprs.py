"""Workflow expressions in the real flintd: their syntax is checked at
create and update by flintd's own evaluators (flint-expr, warm, in the
functions' sandbox), every error listed with its task as `flint wf
validate` lists them; the evaluators run as unprivileged sandbox uids, and
one killed from outside is replaced.
"""
import os
import signal

from conftest import wait_for

GOOD = """output: B
tasks:
  A:
    run: noop
    inputs: "{ param() }"
  B:
    run: noop
    inputs:
      text: "{ output('A') + '!' }"
      list: ["{ 1 + 1 }", plain]
    requires: [A]
"""

BAD = """output: B
tasks:
  A:
    run: noop
    inputs: "{ 1 + }"
  B:
    run: if
    inputs:
      if: "{ output('A') === }"
      then:
        run: noop
        inputs: {x: "{ var }"}
    requires: [A]
"""

SANDBOX_UID_BASE = 2000000000


def evaluators(flintd):
    """The flint-expr processes of this flintd (its descendants), by pid."""
    parents = {}
    names = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        pid = int(entry)
        names[pid] = stat[stat.index("(") + 1:stat.rindex(")")]
        parents[pid] = int(stat[stat.rindex(")") + 2:].split()[1])
    found = []
    for pid, name in names.items():
        if name != "flint-expr":
            continue
        p = pid
        for _ in range(20):
            p = parents.get(p, 0)
            if p == flintd.proc.pid:
                found.append(pid)
                break
            if p <= 1:
                break
    return sorted(found)


def uids(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def test_create_refuses_an_expression_syntax_error_naming_its_task(flintd, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    flintd.cli("wf", "create", "--name", "w", "--spec", str(tmp_path / "good.yaml"), check=True)

    r = flintd.cli("wf", "create", "--name", "broken", "--spec", str(tmp_path / "bad.yaml"))
    assert r.returncode == 1 and "HTTP 400" in r.stderr, r.stderr
    for message in ["spec: 3 errors",
                    "tasks.A.inputs.default: expression { 1 + }: SyntaxError",
                    "tasks.B.inputs.if: expression { output('A') === }: SyntaxError",
                    "tasks.B.inputs.then.inputs.x: expression { var }: SyntaxError"]:
        assert message in r.stderr, (message, r.stderr)
    assert flintd.cli("wf", "get", "--name", "broken").returncode == 1
    # the offline validator says the same of the same file
    offline = flintd.cli("wf", "validate", "--spec", str(tmp_path / "bad.yaml"))
    assert offline.returncode == 1
    offline_errors = [line.split("bad.yaml: ", 1)[-1].strip()
                      for line in offline.stderr.splitlines() if "expression {" in line]
    assert len(offline_errors) == 3, offline.stderr
    for error in offline_errors:
        assert error in r.stderr, (error, r.stderr)

    # an update too: refused, the stored revision stays
    before = flintd.api("GET", "/v1/workflows/w").json()["revision"]
    r = flintd.cli("wf", "update", "--name", "w", "--spec", str(tmp_path / "bad.yaml"))
    assert r.returncode == 1 and "tasks.A.inputs.default: expression { 1 + }" in r.stderr, r.stderr
    assert flintd.api("GET", "/v1/workflows/w").json()["revision"] == before

    # the API answers the list as JSON, structure and syntax together
    r = flintd.api("POST", "/v1/workflows", {"name": "x", "spec": {
        "output": "A", "tasks": {"A": {"run": "nosuch", "inputs": {"v": "{ ) }"}}}}})
    assert r.status == 400 and r.json()["error"]["code"] == "bad_spec", r.text
    message = r.json()["error"]["message"]
    assert "tasks.A.run: 'nosuch' is not a built-in" in message, message
    assert "tasks.A.inputs.v: expression { ) }: SyntaxError" in message, message


def test_evaluators_run_sandboxed_and_are_replaced(flintd, tmp_path):
    # two kept warm by default, each as a sandbox's own host uid
    wait_for(lambda: len(evaluators(flintd)) == 2, what="two evaluators")
    pids = evaluators(flintd)
    seen = set()
    for pid in pids:
        u = uids(pid)
        assert u and all(x >= SANDBOX_UID_BASE for x in u), (pid, u)
        seen.add(u[0])
    assert len(seen) == 2, seen

    # one killed from outside is replaced, and checks go on
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: len(evaluators(flintd)) == 2 and pids[0] not in evaluators(flintd),
             what="a replacement evaluator")
    (tmp_path / "bad.yaml").write_text(BAD)
    r = flintd.cli("wf", "create", "--name", "broken", "--spec", str(tmp_path / "bad.yaml"))
    assert r.returncode == 1 and "expression { 1 + }: SyntaxError" in r.stderr, r.stderr
    (tmp_path / "good.yaml").write_text(GOOD)
    flintd.cli("wf", "create", "--name", "w", "--spec", str(tmp_path / "good.yaml"), check=True)

    # they end with flintd
    assert flintd.stop() == 0
    assert evaluators(flintd) == []
