"""The executor through a real flintd: builds, warm pools, routes, scaling,
queueing, timeouts, crashes, revisions, idle reaping, logs and restarts,
with real runtimes in the real sandbox."""
import io
import json
import os
import tarfile
import threading
import time
import zipfile

import pytest

from conftest import http, wait_for


def deploy(flintd, tmp_path, documents, files=None):
    """Write files next to a YAML of documents and `flint apply` it."""
    d = tmp_path / "app"
    d.mkdir(exist_ok=True)
    for name, content in (files or {}).items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(d / name, mode) as f:
            f.write(content)
    (d / "app.yaml").write_text(documents)
    flintd.cli("apply", "-f", str(d / "app.yaml"), check=True)


def call(flintd, path, method="GET", body=None, headers=None, timeout=60):
    return http(method, flintd.router_url + path, body, headers, timeout=timeout)


def invoke(flintd, name, body=None, timeout=60):
    return flintd.api("POST", f"/v1/functions/{name}/invoke", body if body is not None else "")


def function_status(flintd, name):
    r = flintd.api("GET", f"/v1/functions/{name}")
    assert r.status == 200, r.text
    return r.json()["status"]


ENVS = """
kind: environment
name: c
spec: {runtime: c, poolsize: 1}
---
kind: environment
name: python
spec: {runtime: python, poolsize: 1}
---
kind: environment
name: node
spec: {runtime: node, poolsize: 1}
---
kind: environment
name: binary
spec: {runtime: binary, poolsize: 1}
"""


def test_the_examples_answer_through_routes_in_every_runtime(flintd):
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "hello")
    flintd.cli("apply", "-f", examples, check=True)
    for runtime, greeting in [("c", "from C!"), ("python", "from Python!"),
                              ("node", "from Node.js!"), ("shell", "from a shell script!")]:
        r = call(flintd, f"/hello/{runtime}/ada")
        assert r.status == 200, (runtime, r.status, r.text)
        assert r.text.strip() == f"Hello, ada, {greeting}"
        # HEAD: no body, and the length a GET has (the route takes GET, so HEAD too)
        h = call(flintd, f"/hello/{runtime}/ada", method="HEAD")
        assert (h.status, h.body) == (200, b""), runtime
        assert int(h.headers["Content-Length"]) == len(r.body), (runtime, h.headers)
    # the API's invoke and the CLI's fn test reach the same function
    r = invoke(flintd, "hello-c")
    assert r.status == 200 and "from C!" in r.text
    r = flintd.cli("fn", "test", "--name", "hello-python", check=True)
    assert "from Python!" in r.stdout
    status = function_status(flintd, "hello-c")
    assert status["build"] == "ok"
    assert any(i["state"] == "ready" for i in status["instances"])
    # the C runtime takes pipelined calls (its handlers run one at a time); the others
    # do not say so
    pipelining = {fn: {i["pipelining"] for i in function_status(flintd, fn)["instances"]}
                  for fn in ("hello-c", "hello-python", "hello-node", "hello-shell")}
    assert pipelining == {"hello-c": {True}, "hello-python": {False}, "hello-node": {False},
                          "hello-shell": {False}}, pipelining
    # no route, and a route for another method
    assert call(flintd, "/nowhere").status == 404
    r = call(flintd, "/hello/c/ada", method="DELETE")
    assert r.status == 405 and r.headers["Allow"] == "GET"


def test_the_function_sees_the_request_and_flint_headers(flintd, tmp_path):
    code = """
import json
def main(req):
    return {"method": req.method, "path": req.path, "query": req.query,
            "body": req.body.decode(), "headers": {k.lower(): v for k, v in req.headers.items()}}
"""
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: echo
spec: {environment: python, code: echo.py, entrypoint: echo.main}
---
kind: route
name: echo
spec: {path: "/echo/{id}/x", methods: [POST], target: {function: echo}}
""", {"echo.py": code})
    r = call(flintd, "/echo/42/x?a=1", method="POST", body="payload",
             headers={"X-Custom": "yes", "X-Flint-Function": "spoofed"})
    assert r.status == 200, r.text
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["body"] == "payload"
    h = seen["headers"]
    assert h["x-custom"] == "yes"
    assert h["x-flint-function"] == "echo"
    assert h["x-flint-param-id"] == "42"
    assert h["x-flint-trigger"] == "http"
    assert h["x-flint-attempt"] == "1"
    assert len(h["x-flint-invocation-id"]) == 36
    # the answer names the invocation, as the function saw it
    assert r.headers["X-Flint-Invocation-Id"] == h["x-flint-invocation-id"]
    # the client's address, after the proxies it came through
    assert h["x-forwarded-for"] == "127.0.0.1"
    r = call(flintd, "/echo/42/x", method="POST", body="",
             headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.json()["headers"]["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    # parameters are percent-decoded, and one that would smuggle a header is refused
    r = call(flintd, "/echo/a%20b%2Fc/x", method="POST", body="")
    assert r.json()["headers"]["x-flint-param-id"] == "a b/c"
    for bad in ("a%0D%0AX-Flint-Function:%20spoofed", "a%00b"):
        r = call(flintd, f"/echo/{bad}/x", method="POST", body="")
        assert r.status == 400, r.text
        assert r.json()["error"]["code"] == "bad_path_parameter"


def test_the_router_body_limit_is_the_operators(flintd_factory, tmp_path):
    flintd = flintd_factory(extra_args=["--max-body", "3MiB"])
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: size
spec: {environment: python, code: size.py, entrypoint: size.main}
---
kind: route
name: size
spec: {path: /size, target: {function: size}}
""", {"size.py": "def main(req):\n    return str(len(req.body))\n"})
    r = call(flintd, "/size", method="POST", body=b"x" * (2 << 20))
    assert (r.status, r.text) == (200, str(2 << 20))
    r = call(flintd, "/size", method="POST", body=b"x" * (4 << 20))
    assert r.status == 413 and "3145728 bytes" in r.json()["error"]["message"]


def test_a_failed_build_is_a_clear_error_and_a_fix_recovers(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: broken
spec: {environment: c, code: broken.c}
""", {"broken.c": '#include <flint/fn.h>\nint handler(oops\n'})
    r = invoke(flintd, "broken")
    assert r.status == 500, r.text
    err = r.json()["error"]
    assert err["code"] == "build_failed"
    assert "broken.c" in err["message"] and "error" in err["message"]
    status = wait_for(lambda: function_status(flintd, "broken"), what="status")
    assert status["build"] == "failed"
    assert "broken.c" in status["buildLog"]
    r = flintd.cli("fn", "logs", "--name", "broken", check=True)
    assert "build failed" in r.stdout
    # fn get says it too, with the compiler's words
    out = flintd.cli("fn", "get", "--name", "broken", check=True).stdout
    assert out.splitlines()[1].split()[:5] == ["broken", "c", "-", "broken.c", "failed"]
    assert "\nbuild:      failed\n" in out and "\nbuild log:\n" in out
    assert "broken.c" in out.split("build log:")[1]
    fixed = ('#include <flint/fn.h>\n'
             'int handler(const struct flint_request *q, struct flint_response *r)\n'
             '{ flint_response_write(r, "fixed", 5); return 0; }\n')
    (tmp_path / "fixed.c").write_text(fixed)
    flintd.cli("fn", "update", "--name", "broken", "--code", str(tmp_path / "fixed.c"), check=True)
    r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(invoke(flintd, "broken")),
                 what="the fixed build")
    assert r.text == "fixed"
    out = flintd.cli("fn", "get", "--name", "broken", check=True).stdout
    assert "\nbuild:      ok\n" in out and "calls:" in out and "instances:  1" in out


def test_archives_are_unpacked_and_built(flintd, tmp_path):
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        for name, text in [("pkg/__init__.py", ""),
                           ("pkg/util.py", "def shout(s):\n    return s.upper()\n"),
                           ("app.py", "from pkg.util import shout\n"
                                      "def main(req):\n    return shout('from a tarball')\n")]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("lib.js", "exports.word = () => 'from a zip';\n")
        z.writestr("main.js", "const lib = require('./lib');\n"
                              "exports.main = async () => lib.word();\n")
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: tarred
spec: {environment: python, code: app.tar.gz, entrypoint: app.main}
---
kind: function
name: zipped
spec: {environment: node, code: app.zip, entrypoint: main.main}
""", {"app.tar.gz": tgz.getvalue(), "app.zip": zipped.getvalue()})
    r = invoke(flintd, "tarred")
    assert (r.status, r.text) == (200, "FROM A TARBALL")
    r = invoke(flintd, "zipped")
    assert (r.status, r.text) == (200, "from a zip")


def test_a_crash_is_a_502_with_the_reason_and_the_next_call_gets_a_new_instance(flintd,
                                                                                 tmp_path):
    code = ('#include <flint/fn.h>\n#include <stdlib.h>\n#include <string.h>\n'
            'int handler(const struct flint_request *q, struct flint_response *r)\n'
            '{ if (q->body_len == 5 && memcmp(q->body, "crash", 5) == 0) abort();\n'
            '  flint_response_write(r, "alive", 5); return 0; }\n')
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: fragile
spec: {environment: c, code: fragile.c}
""", {"fragile.c": code})
    assert invoke(flintd, "fragile").text == "alive"
    r = invoke(flintd, "fragile", "crash")
    assert r.status == 502, r.text
    err = r.json()["error"]
    assert err["code"] == "instance_crashed"
    assert "signal 6" in err["message"]
    r = invoke(flintd, "fragile")
    assert (r.status, r.text) == (200, "alive")
    logs = flintd.cli("fn", "logs", "--name", "fragile", check=True).stdout
    assert "instance exited: killed by signal 6" in logs


def test_a_hanging_function_times_out_with_504_and_is_recycled(flintd, tmp_path):
    code = ("import time\n"
            "def main(req):\n"
            "    if req.body == b'hang':\n        time.sleep(60)\n"
            "    return 'quick'\n")
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: sleepy
spec: {environment: python, code: sleepy.py, entrypoint: sleepy.main, functionTimeout: 1s}
""", {"sleepy.py": code})
    assert invoke(flintd, "sleepy").text == "quick"
    first = function_status(flintd, "sleepy")["instances"][0]["id"]
    r = invoke(flintd, "sleepy", "hang")
    assert r.status == 504, r.text
    assert r.json()["error"]["code"] == "function_timeout"
    assert r.headers["X-Flint-Invocation-Id"] == r.json()["error"]["invocation"]
    assert "1000 ms" in r.json()["error"]["message"]
    r = invoke(flintd, "sleepy")
    assert (r.status, r.text) == (200, "quick")
    # the timed-out instance is stopped: it leaves the list once it is gone
    wait_for(lambda: first not in [i["id"] for i in function_status(flintd, "sleepy")["instances"]],
             what="the timed-out instance to be gone")


def test_a_memory_hog_gets_a_clear_error(flintd, tmp_path):
    code = "def main(req):\n    hog = bytearray(1 << 30)\n    return str(len(hog))\n"
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: hog
spec:
  environment: python
  code: hog.py
  entrypoint: hog.main
  limits: {memory: 64Mi}
""", {"hog.py": code})
    r = invoke(flintd, "hog")
    assert r.status in (500, 502), r.text
    assert "MemoryError" in r.text or "out of memory" in r.text


def test_a_function_that_fails_to_load_says_why(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: noentry
spec: {environment: python, code: m.py, entrypoint: m.missing}
""", {"m.py": "def main(req):\n    return 'x'\n"})
    r = invoke(flintd, "noentry")
    assert r.status == 500, r.text
    err = r.json()["error"]
    assert err["code"] == "function_load_failed"
    assert "missing" in err["message"]


def test_busy_functions_queue_then_get_429(flintd_factory, tmp_path):
    # margins, not thresholds: the queued call must still wait when the third
    # arrives (1.5 s), and give up well before the slow one ends (5 s)
    flintd = flintd_factory(extra_args=["--queue-wait", "1500ms", "--queue-max", "1"])
    code = "import time\ndef main(req):\n    time.sleep(float(req.body or 0))\n    return 'done'\n"
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: single
spec: {environment: python, code: s.py, entrypoint: s.main, concurrency: 1}
""", {"s.py": code})
    assert invoke(flintd, "single").text == "done"  # warm
    results = {}

    def slow():
        results["slow"] = invoke(flintd, "single", "5")

    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: function_status(flintd, "single")["instances"][0]["active"] == 1,
             what="the slow call to be running")
    waiting = {}
    t2 = threading.Thread(target=lambda: waiting.update(r=invoke(flintd, "single")))
    t2.start()
    wait_for(lambda: function_status(flintd, "single")["queued"] == 1, what="a queued call")
    r = invoke(flintd, "single")  # the queue holds one
    assert r.status == 429, r.text
    assert r.json()["error"]["code"] == "queue_full"
    t2.join()
    assert waiting["r"].status == 429
    err = waiting["r"].json()["error"]
    assert err["code"] == "concurrency_limit"
    assert "'single'" in err["message"] and "1 instances" in err["message"]
    t.join()
    assert results["slow"].status == 200


def test_instances_scale_out_to_concurrency(flintd, tmp_path):
    # each call holds its instance for 3 s: longer than instances that start
    # together can be apart in becoming ready, even where CPU is scarce, so
    # that no instance is free again before the last call is taken
    code = "import os, time\ndef main(req):\n    time.sleep(3)\n    return os.environ['FLINT_INSTANCE']\n"
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: wide
spec: {environment: python, code: w.py, entrypoint: w.main, concurrency: 3}
""", {"w.py": code})
    out = []
    threads = [threading.Thread(target=lambda: out.append(invoke(flintd, "wide")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in out] == [200, 200, 200]
    assert len(function_status(flintd, "wide")["instances"]) == 3  # three were started
    assert len({r.text for r in out}) == 3  # and three answered


def test_a_new_revision_replaces_the_instances(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: versioned
spec: {environment: node, code: v1.js, entrypoint: v1.main}
""", {"v1.js": "exports.main = () => 'one';\n"})
    assert invoke(flintd, "versioned").text == "one"
    old = function_status(flintd, "versioned")
    (tmp_path / "v2.js").write_text("exports.main = () => 'two';\n")
    flintd.cli("fn", "update", "--name", "versioned", "--code", str(tmp_path / "v2.js"),
               "--entrypoint", "v2.main", check=True)
    r = wait_for(lambda: (lambda x: x if x.text == "two" else None)(invoke(flintd, "versioned")),
                 what="the new revision")
    assert r.status == 200
    new = wait_for(lambda: (lambda s: s if all(i["revision"] == s["revision"]
                                              for i in s["instances"]) else None)(
        function_status(flintd, "versioned")), what="old instances to stop")
    assert new["revision"] > old["revision"]


def test_idle_instances_are_reaped_and_min_scale_is_kept(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: idle
spec: {environment: python, code: i.py, entrypoint: i.main, idleTimeout: 1s}
---
kind: function
name: kept
spec: {environment: python, code: i.py, entrypoint: i.main, idleTimeout: 1s, minScale: 1}
""", {"i.py": "def main(req):\n    return 'ok'\n"})
    assert invoke(flintd, "idle").text == "ok"
    assert function_status(flintd, "idle")["instances"]
    wait_for(lambda: not function_status(flintd, "idle")["instances"], what="reaping")
    # minScale: an instance without any call, and it stays
    kept = wait_for(lambda: [i["id"] for i in function_status(flintd, "kept")["instances"]
                             if i["state"] == "ready"], what="minScale")
    # a call to idle after that: once its instance is reaped, the reaper has
    # looked at kept's too when that one had been idle for longer (no sleep
    # guesses when the reaper ran)
    assert invoke(flintd, "idle").text == "ok"
    wait_for(lambda: not function_status(flintd, "idle")["instances"], what="reaping again")
    assert [i["id"] for i in function_status(flintd, "kept")["instances"]] == kept


def test_function_output_is_logged_and_followable(flintd, tmp_path):
    code = ("import sys\ndef main(req):\n"
            "    print('to stdout', req.body.decode())\n"
            "    print('to stderr', file=sys.stderr)\n    return 'logged'\n")
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: chatty
spec: {environment: python, code: c.py, entrypoint: c.main}
""", {"c.py": code})
    assert invoke(flintd, "chatty", "one").text == "logged"
    lines = wait_for(lambda: [json.loads(x) for x in flintd.api(
        "GET", "/v1/functions/chatty/logs?tail=0").text.splitlines()
        if "to std" in x] or None, what="log lines")
    streams = {line["stream"]: line for line in lines}
    assert streams["stdout"]["line"] == "to stdout one"
    assert streams["stderr"]["function"] == "chatty"
    assert len(streams["stderr"]["instance"]) == 36
    # the CLI prints one line each: time, instance, stream, text; -o json as they came
    out = flintd.cli("fn", "logs", "--name", "chatty", check=True).stdout.splitlines()
    mine = [line.split(None, 3) for line in out if "to stdout one" in line]
    assert mine and mine[0][1] == streams["stdout"]["instance"][-8:]
    assert mine[0][2:] == ["stdout", "to stdout one"]
    raw = flintd.cli("fn", "logs", "--name", "chatty", "-o", "json", check=True).stdout
    assert [json.loads(x) for x in raw.splitlines() if "to std" in x] == lines
    r = flintd.cli("fn", "logs", "--name", "chatyy")  # a typo is not an empty log
    assert r.returncode == 1 and "function 'chatyy' does not exist and has no logs" in r.stderr
    for bad, field in (("tail=-1", "tail"), ("tail=x", "tail"), ("follow=maybe", "follow")):
        r = flintd.api("GET", f"/v1/functions/chatty/logs?{bad}")
        assert r.status == 400 and r.json()["error"]["message"].startswith(field + ":"), r.text
    # follow: a streaming response gets the next call's lines
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", flintd.api_port, timeout=20)
    conn.request("GET", "/v1/functions/chatty/logs?tail=1&follow=1",
                 headers={"Authorization": f"Bearer {flintd.token}"})
    resp = conn.getresponse()
    assert resp.status == 200
    resp.readline()  # the tail
    assert invoke(flintd, "chatty", "two").text == "logged"
    seen = []
    while not any("to stdout two" in s for s in seen):
        seen.append(resp.readline().decode())
    conn.close()


def test_a_log_follower_does_not_hold_up_a_stop(flintd_factory, tmp_path):
    # with a drain longer than stop()'s wait, a follower that held the drain
    # open would make the stop time out
    flintd = flintd_factory(extra_args=["--drain", "120s"])
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: quiet
spec: {environment: python, code: q.py, entrypoint: q.main}
""", {"q.py": "def main(req):\n    return 'ok'\n"})
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", flintd.api_port, timeout=60)
    conn.request("GET", "/v1/functions/quiet/logs?follow=1",
                 headers={"Authorization": f"Bearer {flintd.token}"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert flintd.stop(timeout=60) == 0
    resp.read()  # the stream was ended, not cut: a cut one raises IncompleteRead
    conn.close()


def test_instances_cannot_read_the_data_directory(flintd, tmp_path):
    code = ("import os\ndef main(req):\n"
            "    out = []\n"
            "    for p in [req.body.decode() + '/token', req.body.decode() + '/flint.db',\n"
            "              '/code/../../' ]:\n"
            "        try:\n            open(p).read(1)\n            out.append('read ' + p)\n"
            "        except Exception as e:\n            out.append(type(e).__name__)\n"
            "    return ','.join(out)\n")
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: snoop
spec: {environment: python, code: snoop.py, entrypoint: snoop.main}
""", {"snoop.py": code})
    r = invoke(flintd, "snoop", os.path.abspath(flintd.data_dir))
    assert r.status == 200, r.text
    assert "read" not in r.text, r.text


def test_a_slow_script_does_not_hold_back_a_quick_one(flintd, tmp_path):
    # the binary runtime runs each call in its own process: a quick call that
    # arrives while a slow one runs on the same instance is answered first
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: nap
spec: {environment: binary, code: nap.sh, concurrency: 1, requestsPerInstance: 4}
""", {"nap.sh": "#!/bin/sh\nsleep \"$(cat)\"\necho rested\n"})
    assert invoke(flintd, "nap", "0").text.strip() == "rested"
    slow = []
    threads = [threading.Thread(target=lambda: slow.append(invoke(flintd, "nap", "5")))
               for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: function_status(flintd, "nap")["instances"][0]["active"] == 2,
             what="the slow calls to run")
    r = invoke(flintd, "nap", "0")
    assert r.text.strip() == "rested"
    assert all(t.is_alive() for t in threads), "the quick call waited for a slow one"
    for t in threads:
        t.join()
    assert [x.status for x in slow] == [200, 200]
    assert len(function_status(flintd, "nap")["instances"]) == 1  # the same instance


def test_run_directories_are_removed_after_a_stop_and_after_a_kill(flintd_factory, tmp_path):
    # a data directory this deep puts instance sockets under /tmp (sun_path is short)
    flintd = flintd_factory(name="d" * 60)
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: where
spec: {environment: python, code: w.py, entrypoint: w.main}
""", {"w.py": "def main(req):\n    return 'here'\n"})

    def run_dir():
        assert invoke(flintd, "where").text == "here"
        socket = function_status(flintd, "where")["instances"][0]["socket"]
        assert socket.startswith("unix:/tmp/flint-run-"), socket
        return socket[len("unix:"):].split("/sock/")[0].rsplit("/", 1)[0]

    first = run_dir()
    flintd.kill()
    flintd.start()
    assert not os.path.exists(first)  # the next flintd removed what the killed one left
    second = run_dir()
    assert second != first
    assert flintd.stop() == 0
    assert not os.path.exists(second)


def test_functions_are_served_again_after_kill_9(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: durable
spec: {environment: c, code: d.c}
---
kind: route
name: durable
spec: {path: /durable, target: {function: durable}}
""", {"d.c": '#include <flint/fn.h>\n'
              'int handler(const struct flint_request *q, struct flint_response *r)\n'
              '{ flint_response_write(r, "still here", 10); return 0; }\n'})
    assert call(flintd, "/durable").text == "still here"
    ids = [i["id"] for i in function_status(flintd, "durable")["instances"]]
    assert ids
    flintd.kill()

    def instance_processes():
        found = []
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            found += [i for i in ids if i.encode() in cmd]
        return found

    # nothing of the killed daemon's instances survives it
    wait_for(lambda: not instance_processes(), what="the instances to die with flintd")
    flintd.start()
    r = call(flintd, "/durable")
    assert (r.status, r.text) == (200, "still here")


def test_deleted_functions_are_404(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: gone
spec: {environment: python, code: g.py, entrypoint: g.main}
""", {"g.py": "def main(req):\n    return 'here'\n"})
    assert invoke(flintd, "gone").text == "here"
    flintd.cli("fn", "delete", "--name", "gone", check=True)
    r = wait_for(lambda: (lambda x: x if x.status == 404 else None)(invoke(flintd, "gone")),
                 what="404")
    assert r.json()["error"]["code"] == "function_not_found"


def test_updating_a_function_under_load_fails_no_request(flintd, tmp_path):
    version = ('#include <flint/fn.h>\n'
               'int handler(const struct flint_request *q, struct flint_response *r)\n'
               '{ flint_response_write(r, "%s", 2); return 0; }\n')
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: live
spec: {environment: c, code: live.c, concurrency: 2}
---
kind: route
name: live
spec: {path: /live, target: {function: live}}
""", {"live.c": version % "v1"})
    assert call(flintd, "/live").text == "v1"
    seen, failures, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            r = call(flintd, "/live", timeout=30)
            (seen if r.status == 200 else failures).append((r.status, r.text))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(seen) > 50, what="load")
        (tmp_path / "live2.c").write_text(version % "v2")
        flintd.cli("fn", "update", "--name", "live", "--code", str(tmp_path / "live2.c"),
                   check=True)
        wait_for(lambda: any(text == "v2" for _, text in seen[-20:]), what="the new code")
        count = len(seen)
        wait_for(lambda: len(seen) > count + 50, what="more load on the new code")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    texts = [text for _, text in seen]
    assert set(texts) == {"v1", "v2"}
    # once the new code answered, the old one never did again
    first_v2 = texts.index("v2")
    assert "v1" not in texts[first_v2 + 8:]  # 4 clients may each finish one old call


CUSTOM_RUNTIME = r'''
import http.server, json, os, socket, socketserver
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, "ok")
        with open(self.server.code) as f:
            words = f.read().strip()
        if words == "garbage":  # an answer no HTTP parser should take
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Bad:\x01\r\nContent-Length: 2\r\n\r\nok")
            return
        self.reply(200, "custom says " + words)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v2/specialize":
            self.server.code = json.loads(body)["filepath"]
            return self.reply(200, "{}")
        self.do_GET()
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    pass
# flintd hands over a listening socket: FLINT_LISTEN=fd:N
server = Server(None, Handler, bind_and_activate=False)
server.socket = socket.socket(fileno=int(os.environ["FLINT_LISTEN"][len("fd:"):]))
server.serve_forever()
'''


def deploy_custom(flintd, tmp_path, function, words):
    """A function of a custom environment running CUSTOM_RUNTIME, which
    answers with its code file's words."""
    deploy(flintd, tmp_path, """
kind: environment
name: custom
spec:
  runtime: custom
  poolsize: 1
  command: ["/usr/bin/python3", "-c", %s]
---
kind: function
name: %s
spec: {environment: custom, code: words.txt}
""" % (json.dumps(CUSTOM_RUNTIME), function), {"words.txt": words + "\n"})


def test_a_custom_environment_is_any_command_that_honours_the_contract(flintd, tmp_path):
    deploy_custom(flintd, tmp_path, "bespoke", "hello")
    r = invoke(flintd, "bespoke")
    assert (r.status, r.text) == (200, "custom says hello"), r.text


def test_a_malformed_answer_is_a_502_and_the_instance_is_recycled(flintd, tmp_path):
    deploy_custom(flintd, tmp_path, "garbled", "garbage")
    for _ in range(2):  # the second call gets a new instance, and the same answer
        r = invoke(flintd, "garbled")
        assert r.status == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "bad_response"
        assert "function 'garbled' answered with malformed HTTP" in error["message"]
    wait_for(lambda: "answered malformed HTTP; instance recycled" in flintd.log(),
             what="the executor to say why it recycled the instance")
    assert function_status(flintd, "garbled")["errors"] == 2


def test_an_environment_builder_runs_in_the_deployment(flintd, tmp_path):
    deploy(flintd, tmp_path, """
kind: environment
name: py-built
spec:
  runtime: python
  poolsize: 1
  builder: "test -f \\"$SRC_PKG/app.py\\" && echo 'VALUE = 6 * 7' > generated.py"
---
kind: function
name: generated
spec: {environment: py-built, code: app.tar.gz, entrypoint: app.main}
""", {"app.tar.gz": _tarball({"app.py": "import generated\n"
                                       "def main(req):\n    return str(generated.VALUE)\n"})})
    r = invoke(flintd, "generated")
    assert (r.status, r.text) == (200, "42"), r.text


def _tarball(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_metrics_show_calls_instances_pools_and_builds(flintd, tmp_path):
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "hello")
    flintd.cli("apply", "-f", examples, check=True)
    assert call(flintd, "/hello/c/ada").status == 200
    assert call(flintd, "/hello/c/bob").status == 200
    text = flintd.api("GET", "/metrics").text
    assert 'flint_invocations_total{function="hello-c",code="200"} 2' in text
    assert 'flint_invocation_seconds_count{function="hello-c"} 2' in text
    assert 'flint_instances{function="hello-c",state="ready"} 1' in text
    assert 'flint_pool_instances{environment="c",state="ready"}' in text
    assert 'flint_builds_total{result="ok"}' in text
    assert 'flint_instance_starts_total{from="pool"}' in text
    # what the router answered itself
    assert call(flintd, "/nowhere").status == 404
    assert call(flintd, "/nowhere/else").status == 404
    assert call(flintd, "/hello/c/ada", method="DELETE").status == 405
    text = flintd.api("GET", "/metrics").text
    assert 'flint_router_unrouted_total{code="404"} 2' in text
    assert 'flint_router_unrouted_total{code="405"} 1' in text
    assert flintd.api("GET", "/metrics", token=False).status == 401


def test_a_client_that_goes_away_keeps_its_slot_until_the_function_ends(flintd_factory,
                                                                        tmp_path):
    # a caller that hangs up must not free room the function has not: the
    # call runs on, and the next one waits for it (then gets the instance)
    flintd = flintd_factory(extra_args=["--queue-wait", "60s"])
    code = ("import time\ndef main(req):\n    start = time.time()\n"
            "    time.sleep(float(req.body or 0))\n    return repr(start)\n")
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: one
spec: {environment: python, code: o.py, entrypoint: o.main, concurrency: 1}
""", {"o.py": code})
    assert invoke(flintd, "one").status == 200
    import socket as socketlib
    s = socketlib.create_connection(("127.0.0.1", flintd.api_port))
    sent = time.time()
    s.sendall(b"POST /v1/functions/one/invoke HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + flintd.token.encode() +
              b"\r\nContent-Length: 1\r\n\r\n3")
    wait_for(lambda: function_status(flintd, "one")["instances"][0]["active"] == 1,
             what="the slow call to run")
    s.close()  # the caller leaves; its call sleeps on for 3 s
    r = invoke(flintd, "one", "0")
    assert r.status == 200, r.text
    # the second call started only once the first had finished
    assert float(r.text) >= sent + 3, (r.text, sent)
    wait_for(lambda: function_status(flintd, "one")["instances"][0]["active"] == 0,
             what="the slot to be free once both calls answered")


SLEEPY_C = r"""
#include <flint/fn.h>
#include <stdlib.h>
#include <unistd.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    const char *who = flint_request_param(req, "who");
    usleep((useconds_t)atoi(req->body) * 1000);
    flint_response_printf(resp, "%s", who ? who : "-");
    return 0;
}
"""


def unix_get(path, target, body=b""):
    """One request over the router's Unix socket listener."""
    import socket as socketlib
    s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall(f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
              f"Connection: close\r\n\r\n".encode() + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode()


def test_pipelined_calls_get_their_own_answers_on_every_router_listener(flintd_factory,
                                                                         tmp_path):
    # the C runtime takes pipelined calls: many concurrent callers share its
    # connections, and each must get the answer to its own request
    from conftest import free_port
    port, sock = free_port(), str(tmp_path / "router.sock")
    flintd = flintd_factory(extra_args=["--router", f"127.0.0.1:{port},unix:{sock}"])
    flintd.router_port = port
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: names
spec: {environment: c, code: s.c, concurrency: 1, requestsPerInstance: 64}
---
kind: route
name: names
spec: {path: "/names/{who}", methods: [POST], target: {function: names}}
""", {"s.c": SLEEPY_C})
    errors = []

    def caller(k):
        for i in range(15):
            who = f"c{k}-{i}"
            if k % 2:
                status, text = unix_get(sock, f"/names/{who}", b"0")
            else:
                r = call(flintd, f"/names/{who}", "POST", b"0")
                status, text = r.status, r.text
            if (status, text) != (200, who):
                errors.append((who, status, text))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # one instance served everything, pipelined
    instances = function_status(flintd, "names")["instances"]
    assert len(instances) == 1 and instances[0]["pipelining"] is True

    # a caller that leaves while its call runs does not take down the calls
    # pipelined behind it, nor the instance
    first = function_status(flintd, "names")["instances"][0]["id"]
    import socket as socketlib
    s = socketlib.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /names/gone HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n1500")
    wait_for(lambda: function_status(flintd, "names")["instances"][0]["active"] == 1,
             what="the slow call to run")
    behind = []
    t = threading.Thread(target=lambda: behind.append(call(flintd, "/names/next", "POST", b"0")))
    t.start()
    wait_for(lambda: function_status(flintd, "names")["instances"][0]["active"] == 2,
             what="the call behind it to be sent")
    s.close()
    t.join()
    assert (behind[0].status, behind[0].text) == (200, "next")
    wait_for(lambda: function_status(flintd, "names")["instances"][0]["active"] == 0,
             what="the slot to be freed")
    assert [i["id"] for i in function_status(flintd, "names")["instances"]] == [first]


def test_a_call_with_very_many_headers_is_a_clear_error_or_a_whole_call(flintd, tmp_path):
    # the header budget toward an instance: X-Flint-* last, the trusted extras
    # (16 parameters and X-Forwarded-For here) before them, the caller's headers
    # in what is left; an overrun here once wrote past the end of the array
    params = "/".join(f"{{p{i}}}" for i in range(16))
    code = """
def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    return "%d %s %s %s" % (sum(k.startswith("x-h-") for k in h), h.get("x-flint-function"),
                            h.get("x-flint-param-p15"), h.get("x-forwarded-for"))
"""
    deploy(flintd, tmp_path, ENVS + f"""
---
kind: function
name: many
spec: {{environment: python, code: many.py, entrypoint: many.main}}
---
kind: route
name: many
spec: {{path: "/many/{params}", target: {{function: many}}}}
""", {"many.py": code})
    path = "/many/" + "/".join(f"v{i}" for i in range(16))
    # (python's http.server takes 100 headers at most: 70, 17 extras, 4 of flint's
    # and the few every request has fit)
    headers = {f"X-H-{i}": f"v{i}" for i in range(70)}
    r = call(flintd, path, headers=headers)
    assert r.status == 200, r.text
    assert r.text == "70 many v15 127.0.0.1", r.text
    # 200 headers: refused whole, with a JSON error, and flintd carries on
    headers = {f"X-H-{i}": f"v{i}" for i in range(200)}
    r = call(flintd, path, headers=headers)
    assert r.status == 431, (r.status, r.text)
    assert r.json()["error"]["code"]
    r = call(flintd, path, headers={"X-H-1": "one"})
    assert (r.status, r.text) == (200, "1 many v15 127.0.0.1")


def test_a_drain_shorter_than_a_call_says_what_it_cut(flintd_factory, tmp_path):
    flintd = flintd_factory(extra_args=["--drain", "1s"])
    code = "import time\ndef main(req):\n    time.sleep(60)\n    return 'late'\n"
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: slowpoke
spec: {environment: python, code: s.py, entrypoint: s.main, functionTimeout: 2m}
---
kind: route
name: slowpoke
spec: {path: /slowpoke, target: {function: slowpoke}}
""", {"s.py": code})
    answers = []

    def slow_call():
        try:
            answers.append(call(flintd, "/slowpoke", timeout=90))
        except OSError as e:  # cut: the connection closes without an answer
            answers.append(e)

    caller = threading.Thread(target=slow_call)
    caller.start()
    wait_for(lambda: function_status(flintd, "slowpoke")["instances"] and
             function_status(flintd, "slowpoke")["instances"][0]["active"] == 1,
             what="the call to run")
    assert flintd.stop() == 0
    caller.join(timeout=90)
    assert answers and isinstance(answers[0], OSError), answers
    log = flintd.log()
    assert "the drain ended before a request was answered: cut" in log, log[-2000:]
    assert 'path="/slowpoke"' in log and 'msg="requests cut by the end of the drain" count=1' in log
