"""The Node.js runtime honours the runtime contract (docs/runtime-contract.md)."""
import json
import os
import shutil
import threading

import pytest

from conftest import ROOT
from runtime_util import INVALID_RESPONSES, Instance, check_invalid_response

RUNTIME = os.path.join(ROOT, "runtimes", "node", "flint_runtime.js")

FUNCTIONS = r'''
let calls = 0;
module.exports.main = async (ctx) => {
  calls += 1;
  const r = ctx.request;
  return {method: r.method, path: r.path, query: r.query, body: r.text(),
          who: r.params.who || null, invocation: r.headers['x-flint-invocation-id'] || null, calls};
};
module.exports.status = () => ({status: 201, headers: {'X-Custom': 'yes'}, body: 'created'});
module.exports.raw = () => Buffer.from([0, 1]);
module.exports.text = () => 'plain';
module.exports.boom = async () => { console.error('about to fail'); throw new TypeError('kaboom'); };
module.exports.split = () => ({status: 200, headers: {'X-Split': 'a\r\nX-Injected: 1'}, body: 'x'});
module.exports.spaced = () => ({status: 200, headers: {'Bad Name': 'v'}, body: 'x'});
module.exports.framed = () => ({status: 200, headers: {'Content-Length': '5'}, body: 'x'});
module.exports.huge_status = () => ({status: 1000, body: 'x'});
module.exports.word_status = () => ({status: 'ok', body: 'x'});
'''

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture
def fn_dir(tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    (d / "handlers.js").write_text(FUNCTIONS)
    return d


@pytest.fixture
def instance(tmp_path):
    inst = Instance(["node", RUNTIME], tmp_path)
    yield inst
    inst.stop()


def test_before_and_after_specialize(instance, fn_dir):
    assert instance.request("GET", "/x")[0] == 503
    status, body = instance.specialize(fn_dir, "handlers.main")
    assert status == 200 and body == {"function": "handlers.main"}
    status, headers, out = instance.request(
        "POST", "/orders/7?x=1", body="payload",
        headers={"X-Flint-Invocation-Id": "abc", "X-Flint-Param-Who": "ada"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(out) == {"method": "POST", "path": "/orders/7", "query": {"x": "1"},
                               "body": "payload", "who": "ada", "invocation": "abc", "calls": 1}
    assert instance.specialize(fn_dir, "handlers.status")[0] == 409


@pytest.mark.parametrize("name, status, body, ctype", [
    ("handlers.status", 201, b"created", "text/plain; charset=utf-8"),
    ("handlers.raw", 200, b"\x00\x01", "application/octet-stream"),
    ("handlers.text", 200, b"plain", "text/plain; charset=utf-8"),
])
def test_return_shapes(instance, fn_dir, name, status, body, ctype):
    assert instance.specialize(fn_dir, name)[0] == 200
    s, headers, out = instance.request("GET", "/")
    assert (s, out, headers["Content-Type"]) == (status, body, ctype)


def test_a_throwing_function_is_a_500_naming_the_error(instance, fn_dir):
    instance.specialize(fn_dir, "handlers.boom")
    status, _, body = instance.request("GET", "/")
    assert status == 500
    assert json.loads(body)["error"]["message"] == "handlers.boom raised TypeError: kaboom"
    assert "about to fail" in instance.output()


@pytest.mark.parametrize("name, message", INVALID_RESPONSES)
def test_a_response_http_cannot_carry_is_a_500_saying_why(instance, fn_dir, name, message):
    check_invalid_response(instance, fn_dir, name, message)


@pytest.mark.parametrize("source, name, message", [
    (None, "handlers.main", "does not exist"),
    ("module.exports.main = (;\n", "handlers.main", "syntax error in handlers.js"),
    ("module.exports.other = () => 1;\n", "handlers.main", "has no function 'main'"),
    ("throw new Error('no config');\n", "handlers.main", "loading 'handlers.js' failed: Error: no config"),
])
def test_bad_functions_fail_specialization_clearly(instance, tmp_path, source, name, message):
    d = tmp_path / "bad"
    d.mkdir()
    path = d / "missing.js"
    if source is not None:
        (d / "handlers.js").write_text(source)
        path = d
    status, body = instance.specialize(path, name)
    assert status == 400 and body["error"]["code"] == "specialize_failed"
    assert message in body["error"]["message"]


def test_keep_alive_and_concurrency(instance, fn_dir):
    instance.specialize(fn_dir / "handlers.js", "main")
    conn = instance.connection()
    for i in range(1, 4):
        assert json.loads(instance.request("GET", "/", conn=conn)[2])["calls"] == i
    conn.close()
    results = []

    def worker():
        for _ in range(20):
            results.append(instance.request("POST", "/", body="x")[0])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 160


def test_the_hello_example_answers(instance):
    assert instance.specialize(os.path.join(ROOT, "examples", "hello", "hello.js"), "hello.main")[0] == 200
    status, _, body = instance.request("GET", "/", headers={"X-Flint-Param-Who": "ada"})
    assert (status, body) == (200, b"Hello, ada, from Node.js!\n")
