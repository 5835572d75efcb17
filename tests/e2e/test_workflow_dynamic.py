"""Dynamic tasks and the control-flow built-ins, through the real flintd,
real functions in the sandbox, the API and the flint CLI: a function that
outputs a task (application/vnd.flint.task+json) nested three deep, with
output() following the chain; if, switch, foreach (collect,
maxConcurrency), repeat, while (a durable delay across a kill -9) and
javascript (a runaway script fails its task at its deadline while another
invocation goes on) and http (against a test server on 127.0.0.1), each
with its happy path and its error messages.

A sandboxed function cannot reach the host, so the stand-in functions
record each call in their log ("key <idempotency key> task <id>").
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import deploy, free_port, log_lines, wait_for
from test_workflow_run import header, inv, wait_status

# Echoes its body as JSON ({"got": body}); with {"spawn": n} (n > 0) it
# outputs a task running itself with n-1, as a task spec.
ECHO_PY = """
import json
import time

def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    print("key " + h.get("x-flint-idempotency-key", "-") + " task " +
          h.get("x-flint-task-id", "-"), flush=True)
    try:
        body = json.loads(req.body or b"null")
    except ValueError:
        body = req.body.decode()
    if isinstance(body, dict) and "spawn" in body:
        n = body["spawn"]
        if n > 0:
            task = {"run": "echo", "inputs": {"body": {"spawn": n - 1,
                                                       "nap": body.get("nap", 0)}}}
            return json.dumps(task), 200, {"Content-Type": "application/vnd.flint.task+json"}
        time.sleep(body.get("nap", 0))
        return json.dumps("leaf"), 200, {"Content-Type": "application/json"}
    return json.dumps({"got": body}), 200, {"Content-Type": "application/json"}
"""

FUNCTIONS = """
---
kind: function
name: echo
spec: {environment: python, code: echo.py, entrypoint: echo.main, concurrency: 8}
"""


def deploy_workflows(flintd, tmp_path, **workflows):
    deploy(flintd, tmp_path, FUNCTIONS, {"echo.py": ECHO_PY})
    for name, spec in workflows.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(spec))
        flintd.cli("wf", "create", "--name", name, "--spec", str(f), check=True)


def keys(flintd):
    out = []
    for _, line in log_lines(flintd, "echo"):
        w = line.split()
        if len(w) == 4 and w[0] == "key" and w[2] == "task":
            out.append((w[1], w[3]))
    return out


def run(flintd, name, body=None):
    """POST the workflow: (status, output: JSON decoded, text as a string,
    None when empty, invocation id)."""
    r = flintd.api("POST", f"/v1/workflows/{name}/invoke", body)
    if not r.body:
        out = None
    elif header(r, "content-type").startswith("application/json"):
        out = r.json()
    else:
        out = r.text
    return r.status, out, header(r, "x-flint-invocation-id")


def fails_with(flintd, name, text, body=None):
    """The workflow's invocation answers 500 with text in its error."""
    status, out, _ = run(flintd, name, body)
    assert status == 500 and text in out["error"]["message"], (status, out)


NESTED = {
    "output": "After",
    "tasks": {
        "Spawn": {"run": "echo", "inputs": {"body": {"spawn": 3}}},
        "After": {"run": "compose", "inputs": {"spawned": "{ output('Spawn') }"},
                  "requires": ["Spawn"]},
    },
}


def test_dynamic_tasks_nested_three_deep(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, nested=NESTED)
    status, out, inv_id = run(flintd, "nested")
    assert status == 200, out
    # output() of the task follows the chain to the last child's output
    assert out == {"spawned": "leaf"}, out
    i = inv(flintd, inv_id)
    tasks = {t["id"]: t for t in i["tasks"]}
    assert tasks["Spawn"]["output"] == "leaf" and tasks["Spawn"]["status"] == "succeeded"
    # three levels, each the child of the one before
    assert tasks["Spawn:1/main"]["parent"] == "Spawn", tasks
    assert tasks["Spawn:2/main"]["parent"] == "Spawn:1/main", tasks
    assert tasks["Spawn:3/main"]["parent"] == "Spawn:2/main", tasks
    assert all(t["status"] == "succeeded" for t in i["tasks"]), i["tasks"]
    r = flintd.cli("inv", "get", inv_id, check=True)
    assert "Spawn:3/main" in r.stdout and "succeeded" in r.stdout, r.stdout
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    types = [e["type"] for e in events]
    assert types.count("TaskAdded") == 3, types
    # each TaskAdded is durable before its child is scheduled
    for n in (1, 2, 3):
        added = next(k for k, e in enumerate(events) if e["type"] == "TaskAdded" and
                     e["data"]["task"] == ("Spawn" if n == 1 else f"Spawn:{n - 1}/main"))
        sched = next(k for k, e in enumerate(events) if e["type"] == "TaskScheduled" and
                     e["data"]["task"] == f"Spawn:{n}/main")
        assert added < sched, types
    calls = sorted(k for k, _ in keys(flintd) if k.startswith(inv_id))
    assert calls == sorted([f"{inv_id}/Spawn/1"] +
                           [f"{inv_id}/Spawn:{n}/main/1" for n in (1, 2, 3)]), calls


def test_kill_while_a_child_runs(flintd, tmp_path):
    slow = json.loads(json.dumps(NESTED))
    slow["tasks"]["Spawn"]["inputs"]["body"] = {"spawn": 2, "nap": 4}
    deploy_workflows(flintd, tmp_path, slow=slow)
    r = flintd.cli("wf", "run", "--name", "slow", "--async", check=True)
    inv_id = r.stdout.strip()
    leaf = f"{inv_id}/Spawn:2/main/1"
    wait_for(lambda: any(k == leaf for k, _ in keys(flintd)), timeout=120,
             what="the innermost child to be called")
    flintd.kill()
    flintd.start()
    i = wait_status(flintd, inv_id, "succeeded", timeout=180)
    assert i["output"] == {"spawned": "leaf"}, i
    calls = [k for k, _ in keys(flintd) if k.startswith(inv_id)]
    # the finished parents never ran again; the started child was called
    # again with the same key
    assert calls.count(f"{inv_id}/Spawn/1") == 1, calls
    assert calls.count(f"{inv_id}/Spawn:1/main/1") == 1, calls
    assert set(calls) == {f"{inv_id}/Spawn/1", f"{inv_id}/Spawn:1/main/1", leaf}, calls
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    assert [e["type"] for e in events].count("TaskAdded") == 2, events


IF = {
    "output": "If",
    "tasks": {
        "If": {"run": "if", "inputs": {
            "if": "{ param().n > 42 }",
            "then": {"run": "echo", "inputs": {"body": "{ 'big ' + param().n }"}},
            "else": "small"}},
    },
}

SWITCH = {
    "output": "Switch",
    "tasks": {
        "Switch": {"run": "switch", "inputs": {
            "switch": "{ param().k }",
            "cases": [{"case": "a", "action": "was a"},
                      {"case": "b", "action": {"run": "echo", "inputs": {"body": "b!"}}}],
            "default": 42}},
    },
}


def test_if_and_switch(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, iff=IF, switch=SWITCH,
                     badif={"output": "If", "tasks": {"If": {"run": "if", "inputs": {
                         "if": "yes", "then": 1}}}},
                     noif={"output": "If", "tasks": {"If": {"run": "if", "inputs": {
                         "then": 1}}}},
                     badswitch={"output": "S", "tasks": {"S": {"run": "switch", "inputs": {
                         "switch": "x", "cases": [{"action": 1}]}}}})
    # the chosen branch is a task: it runs as a child
    status, out, inv_id = run(flintd, "iff", {"n": 50})
    assert status == 200 and out == {"got": "big 50"}, out
    assert "If:1/main" in {t["id"] for t in inv(flintd, inv_id)["tasks"]}
    # a value is the output
    r = flintd.cli("wf", "run", "--name", "iff", "--body", '{"n": 1}', check=True)
    assert r.stdout.strip() == "small", r.stdout
    # errors, with Fission Workflows' messages
    status, out, _ = run(flintd, "badif")
    assert status == 500, out
    assert "condition '\"yes\"' needs to be a 'bool', but was 'string'" in \
        out["error"]["message"], out
    r = flintd.cli("wf", "run", "--name", "noif")
    assert r.returncode == 1 and "input 'if' is not set" in r.stderr, r.stderr

    assert run(flintd, "switch", {"k": "a"})[1] == "was a"
    assert run(flintd, "switch", {"k": "b"})[1] == {"got": "b!"}
    assert run(flintd, "switch", {"k": "zzz"})[1] == 42
    fails_with(flintd, "switch", "input 'switch' needs to be a 'string'", {"k": 7})
    fails_with(flintd, "badswitch", "case in switch does not have a key")


FOREACH = {
    "output": "Each",
    "tasks": {
        "Each": {"run": "foreach", "inputs": {
            "foreach": "{ param() }",
            "maxConcurrency": 2,
            "do": {"run": "echo", "inputs": {"body": "{ task().Inputs._item * 10 }"}}}},
    },
}


def test_foreach_collect_and_max_concurrency(flintd, tmp_path):
    nocollect = json.loads(json.dumps(FOREACH))
    nocollect["tasks"]["Each"]["inputs"]["collect"] = False
    seq = json.loads(json.dumps(FOREACH))
    del seq["tasks"]["Each"]["inputs"]["maxConcurrency"]
    seq["tasks"]["Each"]["inputs"]["sequential"] = True
    deploy_workflows(flintd, tmp_path, each=FOREACH, nocollect=nocollect, seq=seq,
                     badeach={"output": "E", "tasks": {"E": {"run": "foreach", "inputs": {
                         "foreach": 3, "do": {"run": "noop"}}}}},
                     big={"output": "E", "tasks": {"E": {"run": "foreach", "inputs": {
                         "foreach": "{ param() }", "do": {"run": "noop", "inputs": "x"}}}}})
    status, out, inv_id = run(flintd, "each", [1, 2, 3, 4, 5, 6])
    assert status == 200, out
    assert out == [{"got": n * 10} for n in range(1, 7)], out
    # at most 2 at once: item k starts only once item k-2 has ended
    tasks = {t["id"]: t for t in inv(flintd, inv_id)["tasks"]}
    for k in range(2, 6):
        assert tasks[f"Each:1/do_{k}"]["startedAt"] >= tasks[f"Each:1/do_{k - 2}"]["endedAt"]
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    order = [e["data"]["task"] for e in events if e["type"] in ("TaskStarted", "TaskSucceeded")
             and e["data"]["task"].startswith("Each:1/do_")]
    for k in range(2, 6):
        started = next(n for n, e in enumerate(events) if e["type"] == "TaskStarted" and
                       e["data"]["task"] == f"Each:1/do_{k}")
        ended = next(n for n, e in enumerate(events) if e["type"] == "TaskSucceeded" and
                     e["data"]["task"] == f"Each:1/do_{k - 2}")
        assert ended < started, order

    status, out, _ = run(flintd, "nocollect", [1, 2])
    assert status == 200 and out is None, out
    status, out, inv_id = run(flintd, "seq", [1, 2, 3])
    assert status == 200 and out == [{"got": 10}, {"got": 20}, {"got": 30}], out
    tasks = {t["id"]: t for t in inv(flintd, inv_id)["tasks"]}
    assert tasks["Each:1/do_2"]["startedAt"] >= tasks["Each:1/do_1"]["endedAt"], tasks
    fails_with(flintd, "badeach", "condition '3' needs to be a 'array', but was 'number'")
    # the largest foreach collects every output (looked up by the engine,
    # not in one expression that would pass the evaluator's deadline)
    status, out, _ = run(flintd, "big", list(range(999)))
    assert status == 200 and out == ["x"] * 999, (status, str(out)[:200])
    fails_with(flintd, "big", "foreach has 1000 items, more than the 999 it takes",
               list(range(1000)))


REPEAT = {
    "output": "Rep",
    "tasks": {
        "Rep": {"run": "repeat", "inputs": {
            "times": 4,
            "do": {"run": "noop", "inputs": "{ (task().Inputs._prev || 0) + 1 }"}}},
    },
}


def test_repeat(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path, rep=REPEAT,
                     norep={"output": "R", "tasks": {"R": {"run": "repeat", "inputs": {
                         "do": {"run": "noop"}}}}})
    status, out, inv_id = run(flintd, "rep")
    assert status == 200 and out == 4, out
    tasks = {t["id"]: t for t in inv(flintd, inv_id)["tasks"]}
    assert [tasks[f"Rep:1/do_{k}"]["output"] for k in range(4)] == [1, 2, 3, 4], tasks
    fails_with(flintd, "norep", "repeat needs 'times'")


WHILE = {
    "output": "Loop",
    "tasks": {
        "Loop": {"run": "while", "inputs": {
            "expr": "{ (task().Inputs._count || 0) < 3 }",
            "limit": 10,
            "delay": "2s",
            "do": {"run": "echo", "inputs": {"body": "{ 'round ' + task().Inputs._count }"}}}},
    },
}


def test_while_with_a_delay_across_kill(flintd, tmp_path):
    limited = json.loads(json.dumps(WHILE))
    limited["tasks"]["Loop"]["inputs"].update({"limit": 2, "delay": None})
    deploy_workflows(flintd, tmp_path, loop=WHILE, limited=limited)
    r = flintd.cli("wf", "run", "--name", "loop", "--async", check=True)
    inv_id = r.stdout.strip()

    def sleeping():
        i = inv(flintd, inv_id)
        return any(t.get("timer") == "sleep" for t in i["tasks"])
    wait_for(sleeping, timeout=60, what="a round's delay to start")
    flintd.kill()
    flintd.start()
    i = wait_status(flintd, inv_id, "succeeded", timeout=180)
    # the output of the last round's action
    assert i["output"] == {"got": "round 3"}, i["output"]
    calls = [k for k, _ in keys(flintd) if k.startswith(inv_id)]
    # each round's function called once (a finished task never again)
    assert len(calls) == 3 and len(set(calls)) == 3, calls
    events = flintd.api("GET", f"/v1/invocations/{inv_id}/events").json()["events"]
    fired = [e for e in events if e["type"] == "TimerFired"]
    assert len(fired) == 3, [e["type"] for e in events]

    fails_with(flintd, "limited", "while limit exceeded")


def test_javascript(flintd, tmp_path):
    deploy_workflows(flintd, tmp_path,
                     double={"output": "J", "tasks": {"J": {"run": "javascript", "inputs": {
                         "expr": "arg * 2", "args": "{ param() }"}}}},
                     add={"output": "J", "tasks": {"J": {"run": "javascript", "inputs": {
                         "expr": "var s = a + b; s * 10", "args": {"a": 1, "b": 2}}}}},
                     noexpr={"output": "J", "tasks": {"J": {"run": "javascript"}}},
                     thrower={"output": "J", "tasks": {"J": {"run": "javascript", "inputs": {
                         "expr": "throw new Error('nope')"}}}},
                     runaway={"output": "J", "tasks": {"J": {"run": "javascript", "inputs": {
                         "expr": "while(true){}"}}}},
                     nested=NESTED)
    assert run(flintd, "double", b"21")[:2] == (200, 42)
    assert run(flintd, "add")[:2] == (200, 30)
    fails_with(flintd, "noexpr", "input 'expr' is not set")
    fails_with(flintd, "thrower", "nope")

    # a runaway script fails its task at its deadline; another invocation
    # started meanwhile goes on and finishes
    result = {}

    def runaway():
        result["runaway"] = run(flintd, "runaway")
    t = threading.Thread(target=runaway)
    t.start()
    status, out, _ = run(flintd, "nested")
    assert status == 200 and out == {"spawned": "leaf"}, out
    t.join(timeout=120)
    status, out, _ = result["runaway"]
    assert status == 500 and "took longer than" in out["error"]["message"], out


class _Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/fail"):
            self._answer(503, b"down for now", "text/plain")
        else:
            self._answer(200, json.dumps({"path": self.path}).encode(), "application/json")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(200, json.dumps({
            "method": self.command, "body": body.decode(),
            "ctype": self.headers.get("Content-Type"),
            "mine": self.headers.get("X-Mine"),
            "key": self.headers.get("X-Flint-Idempotency-Key")}).encode(), "application/json")

    do_PUT = do_POST

    def log_message(self, *args):
        pass


def test_http(flintd, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"127.0.0.1:{server.server_address[1]}"
    try:
        deploy_workflows(
            flintd, tmp_path,
            get={"output": "H", "tasks": {"H": {"run": "http", "inputs": {
                "url": f"http://{base}/hello?x=1"}}}},
            noscheme={"output": "H", "tasks": {"H": {"run": "http", "inputs": f"{base}/plain"}}},
            post={"output": "H", "tasks": {"H": {"run": "http", "inputs": {
                "url": f"http://{base}/echo", "method": "put", "body": "{ param() }",
                "headers": {"X-Mine": "yes"}}}}},
            text={"output": "H", "tasks": {"H": {"run": "http", "inputs": {
                "url": f"http://{base}/echo", "method": "POST", "body": "plain words",
                "content-type": "text/x-words"}}}},
            down={"output": "H", "tasks": {"H": {"run": "http", "inputs": {
                "url": f"http://{base}/fail"}}}},
            nourl={"output": "H", "tasks": {"H": {"run": "http"}}},
            tls={"output": "H", "tasks": {"H": {"run": "http", "inputs": {
                "url": f"https://{base}/"}}}})
        assert run(flintd, "get")[:2] == (200, {"path": "/hello?x=1"})
        assert run(flintd, "noscheme")[:2] == (200, {"path": "/plain"})
        status, out, inv_id = run(flintd, "post", {"a": [1, 2]})
        assert status == 200, out
        # the attempt's idempotency key, as a function's call has it
        assert out == {"method": "PUT", "body": '{"a":[1,2]}', "ctype": "application/json",
                       "mine": "yes", "key": f"{inv_id}/H/1"}, out
        status, out, _ = run(flintd, "text")
        assert out["body"] == "plain words" and out["ctype"] == "text/x-words", out
        fails_with(flintd, "down", "answered 503: down for now")
        fails_with(flintd, "nourl", "target URL is required for HTTP function")
        fails_with(flintd, "tls", "only http:// URLs are supported")
    finally:
        server.shutdown()
        server.server_close()
