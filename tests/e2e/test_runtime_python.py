"""The Python runtime honours the runtime contract (docs/runtime-contract.md)."""
import json
import os
import sys
import threading

import pytest

from conftest import ROOT
from runtime_util import INVALID_RESPONSES, Instance, check_invalid_response

RUNTIME = os.path.join(ROOT, "runtimes", "python", "flint_runtime.py")

FUNCTIONS = '''
import json, sys

calls = 0

def init():
    print("init ran", flush=True)

def main(request):
    global calls
    calls += 1
    return {"method": request.method, "path": request.path, "query": request.query,
            "body": request.text(), "who": request.params.get("who"),
            "invocation": request.headers.get("x-flint-invocation-id"), "calls": calls}

def status(request):
    return "created", 201, {"X-Custom": "yes"}

def raw(request):
    return b"\\x00\\x01"

def noarg():
    return "no arguments"

def boom(request):
    print("about to fail", file=sys.stderr, flush=True)
    raise RuntimeError("kaboom")

def split(request):
    return "x", 200, {"X-Split": "a\\r\\nX-Injected: 1"}

def spaced(request):
    return "x", 200, {"Bad Name": "v"}

def framed(request):
    return "x", 200, {"Content-Length": "5"}

def huge_status(request):
    return "x", 1000

def word_status(request):
    return "x", "ok"

def obj(request):
    return object()
'''


@pytest.fixture
def fn_dir(tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    (d / "handlers.py").write_text(FUNCTIONS)
    return d


@pytest.fixture
def instance(tmp_path):
    inst = Instance([sys.executable if False else "/usr/bin/python3", RUNTIME], tmp_path)
    yield inst
    inst.stop()


def test_healthz_and_invocation_before_specialize(instance):
    assert instance.request("GET", "/healthz")[0] == 200
    status, _, body = instance.request("GET", "/anything")
    assert status == 503
    assert json.loads(body)["error"]["code"] == "not_specialized"


def test_specialize_once_then_invoke(instance, fn_dir):
    status, body = instance.specialize(fn_dir, "handlers.main")
    assert status == 200 and body == {"function": "handlers.main"}
    assert "init ran" in instance.output()
    status, headers, out = instance.request(
        "POST", "/orders/7?x=1&y=two", body="payload",
        headers={"X-Flint-Invocation-Id": "abc", "X-Flint-Param-Who": "ada"})
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(out) == {"method": "POST", "path": "/orders/7", "query": {"x": "1", "y": "two"},
                               "body": "payload", "who": "ada", "invocation": "abc", "calls": 1}
    status, body = instance.specialize(fn_dir, "handlers.status")
    assert status == 409 and body["error"]["code"] == "already_specialized"


@pytest.mark.parametrize("name, status, body, ctype", [
    ("handlers.status", 201, b"created", "text/plain; charset=utf-8"),
    ("handlers.raw", 200, b"\x00\x01", "application/octet-stream"),
    ("handlers.noarg", 200, b"no arguments", "text/plain; charset=utf-8"),
])
def test_return_shapes(instance, fn_dir, name, status, body, ctype):
    assert instance.specialize(fn_dir, name)[0] == 200
    s, headers, out = instance.request("GET", "/")
    assert (s, out, headers["Content-Type"]) == (status, body, ctype)


def test_a_raising_function_is_a_500_naming_the_error(instance, fn_dir):
    instance.specialize(fn_dir, "handlers.boom")
    status, _, body = instance.request("GET", "/")
    assert status == 500
    err = json.loads(body)["error"]
    assert err["code"] == "function_error"
    assert err["message"] == "handlers.boom raised RuntimeError: kaboom"
    assert "about to fail" in instance.output() and "Traceback" in instance.output()
    assert instance.request("GET", "/healthz")[0] == 200  # still serving


@pytest.mark.parametrize("name, message", INVALID_RESPONSES + [
    ("obj", "cannot send a object as a body"),
])
def test_a_response_http_cannot_carry_is_a_500_saying_why(instance, fn_dir, name, message):
    check_invalid_response(instance, fn_dir, name, message)


@pytest.mark.parametrize("setup, name, message", [
    (None, "handlers.main", "does not exist"),
    ("def main(:\n", "handlers.main", "syntax error in handlers.py line 1"),
    ("x = 1\n", "handlers.main", "module 'handlers' has no function 'main'"),
    ("raise ImportError('no numpy here')\n", "handlers.main", "importing 'handlers' failed: ImportError"),
    ("def init():\n    raise ValueError('bad config')\ndef main(r):\n    return ''\n", "handlers.main",
     "init() of 'handlers' failed: ValueError: bad config"),
])
def test_bad_functions_fail_specialization_clearly(instance, tmp_path, setup, name, message):
    d = tmp_path / "bad"
    d.mkdir()
    if setup is not None:
        (d / "handlers.py").write_text(setup)
        path = d
    else:
        path = d / "missing.py"
    status, body = instance.specialize(path, name)
    assert status == 400
    assert body["error"]["code"] == "specialize_failed"
    assert message in body["error"]["message"]
    if setup is not None:  # the instance can still take a good function? no: it is discarded
        assert instance.request("GET", "/")[0] == 503


def test_single_file_and_keep_alive(instance, fn_dir):
    assert instance.specialize(fn_dir / "handlers.py", "main")[0] == 200
    conn = instance.connection()
    for i in range(1, 6):
        status, _, body = instance.request("GET", f"/n{i}", conn=conn)
        assert status == 200 and json.loads(body)["calls"] == i
    conn.close()


def test_concurrent_requests(instance, fn_dir):
    instance.specialize(fn_dir, "handlers.main")
    results = []

    def worker():
        for _ in range(20):
            results.append(instance.request("POST", "/c", body="x")[0])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 160


def test_the_hello_example_answers(instance):
    assert instance.specialize(os.path.join(ROOT, "examples", "hello", "hello.py"), "hello.main")[0] == 200
    status, _, body = instance.request("GET", "/", headers={"X-Flint-Param-Who": "ada"})
    assert (status, body) == (200, b"Hello, ada, from Python!\n")
