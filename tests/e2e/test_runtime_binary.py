"""The binary runtime runs any executable per request, CGI-style."""
import json
import os
import threading

import pytest

from conftest import BIN, ROOT
from runtime_util import Instance

RUNTIME = os.path.join(BIN, "flint-runtime-binary")


def script(tmp_path, name, text):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + text)
    p.chmod(0o755)
    return p


@pytest.fixture
def instance(tmp_path):
    inst = Instance([RUNTIME], tmp_path, env={"FLINT_BINARY_TIMEOUT_MS": "1000",
                                              "FLINT_BINARY_MAX_OUTPUT": "100000"})
    yield inst
    inst.stop()


def test_request_in_the_environment_and_body_on_stdin(instance, tmp_path):
    s = script(tmp_path, "echo.sh",
               'echo "$REQUEST_METHOD $REQUEST_URI $PATH_INFO $QUERY_STRING $CONTENT_LENGTH"\n'
               'echo "who=$HTTP_X_FLINT_PARAM_WHO type=$CONTENT_TYPE"\n'
               'cat\n')
    assert instance.request("GET", "/")[0] == 503
    assert instance.specialize(s, "")[0] == 200
    status, headers, body = instance.request(
        "POST", "/orders/7?x=1", body="payload",
        headers={"X-Flint-Param-Who": "ada", "Content-Type": "text/plain"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert body == (b"POST /orders/7?x=1 /orders/7 x=1 7\n"
                    b"who=ada type=text/plain\npayload")
    assert instance.specialize(s, "")[0] == 409


def test_failures_carry_the_tail_of_stderr(instance, tmp_path):
    s = script(tmp_path, "fail.sh", 'echo "partial output"\necho "line one" >&2\n'
               'echo "database unreachable" >&2\nexit 3\n')
    instance.specialize(s, "")
    status, _, body = instance.request("GET", "/")
    assert status == 500
    msg = json.loads(body)["error"]["message"]
    assert msg.endswith("exited with status 3: line one\ndatabase unreachable")
    assert "database unreachable" in instance.output()  # stderr is the function's log


def test_timeouts_and_huge_output_stop_the_process(tmp_path):
    for name, text, status, code in (
            ("slow.sh", "sleep 30\n", 504, "function_timeout"),
            ("loud.sh", "yes flint | head -c 1000000\n", 502, "output_too_large"),
            ("killed.sh", "kill -9 $$\n", 500, "function_error")):
        d = tmp_path / name
        d.mkdir()
        inst = Instance([RUNTIME], d, env={"FLINT_BINARY_TIMEOUT_MS": "500",
                                           "FLINT_BINARY_MAX_OUTPUT": "100000"})
        try:
            assert inst.specialize(script(d, name, text), "")[0] == 200
            s, _, body = inst.request("GET", "/")
            assert s == status and json.loads(body)["error"]["code"] == code
            assert inst.request("GET", "/healthz")[0] == 200
        finally:
            inst.stop()


def test_directories_and_bad_executables(instance, tmp_path):
    d = tmp_path / "pkg"
    d.mkdir()
    script(d, "main", "echo from the directory\n")
    (d / "data.txt").write_text("not executable")
    status, body = instance.specialize(d / "data.txt", "")
    assert status == 400 and "is not an executable file" in body["error"]["message"]
    status, body = instance.specialize(tmp_path / "missing", "")
    assert status == 400 and "does not exist" in body["error"]["message"]
    assert instance.specialize(d, "")[0] == 200
    assert instance.request("GET", "/")[2] == b"from the directory\n"


def test_concurrent_requests_each_run_once(instance, tmp_path):
    s = script(tmp_path, "id.sh", 'echo "$QUERY_STRING"\n')
    instance.specialize(s, "")
    got = []

    def worker(k):
        for i in range(10):
            got.append(instance.request("GET", f"/?{k}-{i}")[2])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"{k}-{i}\n".encode() for k in range(6) for i in range(10))


def test_the_hello_example_answers(instance):
    assert instance.specialize(os.path.join(ROOT, "examples", "hello", "hello.sh"), "")[0] == 200
    status, _, body = instance.request("GET", "/", headers={"X-Flint-Param-Who": "ada"})
    assert (status, body) == (200, b"Hello, ada, from a shell script!\n")
