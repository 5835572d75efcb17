"""The C runtime and builder honour the runtime contract: functions built
against include/flint/fn.h are loaded once and called directly."""
import json
import os
import subprocess
import threading

import pytest

from conftest import BIN, ROOT
from runtime_util import Instance

BUILDER = os.path.join(ROOT, "runtimes", "c", "build")
RUNTIME = os.path.join(BIN, "flint-runtime-c")

SOURCE = r'''
#include <flint/fn.h>
#include <string.h>

static int calls;

int flint_init(void) { calls = 0; return 0; }

int handler(const struct flint_request *req, struct flint_response *resp)
{
    const char *who = flint_request_param(req, "who");
    const char *id = flint_request_header(req, "x-flint-invocation-id");
    calls++;
    flint_response_header(resp, "Content-Type", "application/json");
    flint_response_printf(resp, "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\","
                          "\"body\":\"%.*s\",\"who\":\"%s\",\"id\":\"%s\",\"calls\":%d}",
                          req->method, req->path, req->query, (int)req->body_len, req->body,
                          who ? who : "", id ? id : "", calls);
    return 0;
}

int created(const struct flint_request *req, struct flint_response *resp)
{
    flint_response_status(resp, 201);
    flint_response_header(resp, "X-Custom", "yes");
    /* each of these must be refused */
    const char *bad[][2] = {{"Bad", "a\r\nInjected: 1"}, {"Bad", "\x01"}, {"Bad Name", "v"},
                            {"", "v"}, {"content-length", "5"}, {"Transfer-Encoding", "chunked"}};
    for (int i = 0; i < 6; i++)
        if (flint_response_header(resp, bad[i][0], bad[i][1]) == 0)
            return 10 + i;
    flint_response_status(resp, 100); /* ignored: not a final status */
    flint_response_status(resp, 1000);
    return flint_response_write(resp, "made", 4);
}

int failing(const struct flint_request *req, struct flint_response *resp)
{
    return 3;
}
'''


def build(tmp_path, source, name="fn"):
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}.so"
    r = subprocess.run([BUILDER], env=dict(os.environ, SRC_PKG=str(src), DEPLOY_PKG=str(out)),
                       capture_output=True, text=True, timeout=120)
    return r, out


@pytest.fixture
def instance(tmp_path):
    inst = Instance([RUNTIME], tmp_path)
    yield inst
    inst.stop()


def test_build_load_and_call(instance, tmp_path):
    r, so = build(tmp_path, SOURCE)
    assert r.returncode == 0, r.stderr
    assert instance.request("GET", "/x")[0] == 503
    status, body = instance.specialize(so, "")
    assert status == 200 and body == {"function": "handler"}
    status, headers, out = instance.request(
        "POST", "/orders/7?x=1", body="payload",
        headers={"X-Flint-Invocation-Id": "abc", "X-Flint-Param-Who": "ada"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(out) == {"method": "POST", "path": "/orders/7", "query": "x=1",
                               "body": "payload", "who": "ada", "id": "abc", "calls": 1}
    assert instance.specialize(so, "created")[0] == 409


def test_status_headers_and_errors(tmp_path):
    r, so = build(tmp_path, SOURCE)
    assert r.returncode == 0
    for name, status, body in (("created", 201, b"made"), ("failing", 500, None)):
        d = tmp_path / name
        d.mkdir()
        inst = Instance([RUNTIME], d)
        try:
            assert inst.specialize(so, name)[0] == 200
            s, headers, out = inst.request("GET", "/")
            assert s == status
            if body is not None:
                assert out == body and headers["X-Custom"] == "yes"
            else:
                assert json.loads(out)["error"]["message"] == "failing returned 3"
        finally:
            inst.stop()


def test_compile_errors_are_reported(tmp_path):
    r, so = build(tmp_path, "int handler(void) { return nope; }\n")
    assert r.returncode != 0
    assert "nope" in r.stderr and "error" in r.stderr
    assert not so.exists()


def test_bad_shared_objects_fail_specialization_clearly(instance, tmp_path):
    status, body = instance.specialize(tmp_path / "missing.so", "handler")
    assert status == 400 and "does not exist" in body["error"]["message"]
    (tmp_path / "junk.so").write_text("not an ELF file")
    status, body = instance.specialize(tmp_path / "junk.so", "handler")
    assert status == 400 and "cannot load" in body["error"]["message"]
    r, so = build(tmp_path, SOURCE)
    status, body = instance.specialize(so, "no_such_symbol")
    assert status == 400 and "has no function 'no_such_symbol'" in body["error"]["message"]
    r, so = build(tmp_path, "#include <flint/fn.h>\nint flint_init(void) { return 1; }\n"
                  "int handler(const struct flint_request *q, struct flint_response *r) "
                  "{ return 0; }\n", "badinit")
    status, body = instance.specialize(so, "handler")
    assert status == 400 and "flint_init() of" in body["error"]["message"]


def test_keep_alive_and_concurrency(instance, tmp_path):
    r, so = build(tmp_path, SOURCE)
    instance.specialize(so, "handler")
    results = []

    def worker():
        conn = instance.connection()
        for _ in range(50):
            results.append(instance.request("GET", "/", conn=conn)[0])
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 400
    calls = json.loads(instance.request("GET", "/")[2])["calls"]
    assert calls == 401  # one instance, one handler, every call counted


def test_the_hello_example_builds_and_answers(instance, tmp_path):
    src = os.path.join(ROOT, "examples", "hello", "hello.c")
    out = tmp_path / "hello.so"
    r = subprocess.run([BUILDER], env=dict(os.environ, SRC_PKG=src, DEPLOY_PKG=str(out)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert instance.specialize(out, "handler")[0] == 200
    status, _, body = instance.request("GET", "/hello/c/ada", headers={"X-Flint-Param-Who": "ada"})
    assert (status, body) == (200, b"Hello, ada, from C!\n")
