"""Functions publish to topics through the socket flintd serves inside their
sandbox (FLINT_PUBLISH), to the topics their spec lists under `publishes`
and to no other: one function in each of the four runtimes, through each
runtime's helper (Python's `import flint`, Node's `context.publish`, C's
`flint_publish()`, curl for the binary runtime), and hostile functions that
try to reach another function's socket or to publish as another function.

Every function here is told by its request body what to publish where, and
answers what flintd's socket answered; what was published is read back
with GET /v1/topics/{name}/messages and `flint topic tail`.
"""
import base64
import glob
import json
import os

import pytest

from conftest import PYTHON_ENV, deploy, wait_for
from test_executor import ENVS

# Each answers {"status": N, ...}: the status of the publish it was asked
# for ({"topic", "body", "id"} in the request).
PUB_PY = """
import json
import flint

def main(req):
    plan = json.loads(req.body)
    try:
        answer = flint.publish(plan["topic"], plan["body"], headers={"X-Kind": "python"},
                               msg_id=plan.get("id"))
        return {"status": 202, "answer": answer}
    except flint.PublishError as e:
        return {"status": e.status, "error": e.error}
"""

PUB_JS = """
exports.main = async (context) => {
  const plan = context.request.json();
  try {
    const answer = await context.publish(plan.topic, plan.body,
      { headers: { 'X-Kind': 'node' }, msgId: plan.id });
    return { status: 200, body: JSON.stringify({ status: 202, answer }) };
  } catch (e) {
    return { status: 200, body: JSON.stringify({ status: e.status, error: e.error }) };
  }
};
"""

# body: "TOPIC\\nMESSAGE"
PUB_C = r"""
#include <flint/fn.h>
#include <string.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    char topic[300] = "";
    const char *nl = memchr(req->body, '\n', req->body_len);
    size_t n = nl ? (size_t)(nl - req->body) : req->body_len;
    if (n >= sizeof(topic))
        n = sizeof(topic) - 1;
    memcpy(topic, req->body, n);
    const char *msg = nl ? nl + 1 : "";
    struct flint_header h[] = {{"X-Kind", "c"}};
    int status = flint_publish(topic, msg, strlen(msg), h, 1);
    flint_response_header(resp, "Content-Type", "application/json");
    flint_response_printf(resp, "{\"status\": %d}", status);
    return 0;
}
"""

# body: "TOPIC\\nMESSAGE"
PUB_SH = """#!/bin/sh
read -r topic
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "${FLINT_PUBLISH#unix:}" \\
  -H 'X-Kind: binary' --data-binary @- "http://flint/topics/$topic/messages")
printf '{"status": %s}' "$code"
"""

FUNCTIONS = """
---
kind: function
name: pub-py
spec: {environment: python, code: pub.py, entrypoint: pub.main, publishes: [out-py]}
---
kind: function
name: pub-js
spec: {environment: node, code: pub.js, entrypoint: pub.main, publishes: [out-js]}
---
kind: function
name: pub-c
spec: {environment: c, code: pub.c, publishes: [out-c, other-c]}
---
kind: function
name: pub-sh
spec: {environment: binary, code: pub.sh, publishes: [out-sh]}
"""

FILES = {"pub.py": PUB_PY, "pub.js": PUB_JS, "pub.c": PUB_C, "pub.sh": PUB_SH}


def body_of(m):
    if m.get("bodyEncoding") == "base64":
        return base64.b64decode(m["body"]).decode("utf-8", "replace")
    return m["body"]


def messages(flintd, topic):
    r = flintd.api("GET", f"/v1/topics/{topic}/messages?from=1&limit=1000")
    assert r.status == 200, r.text
    return r.json()["messages"]


def invoke(flintd, fn, body):
    data = json.dumps(body) if isinstance(body, dict) else body
    r = flintd.api("POST", f"/v1/functions/{fn}/invoke", data)
    assert r.status == 200, f"{fn}: {r.status} {r.text}"
    return r.json()


def ask(fn, topic, body, msg_id=None):
    """The request body that makes fn publish body to topic."""
    if fn in ("pub-py", "pub-js"):
        return {"topic": topic, "body": body, **({"id": msg_id} if msg_id else {})}
    return f"{topic}\n{body}"


def run_dir(flintd):
    """Where flintd keeps its instances (DATA/run, or the short directory
    DATA/run-dir names when the data directory's path is too long)."""
    note = os.path.join(flintd.data_dir, "run-dir")
    if os.path.exists(note):
        with open(note) as f:
            return f.read().strip()
    return os.path.join(flintd.data_dir, "run")


def make_topics(flintd, *names):
    for name in names:
        r = flintd.cli("topic", "create", "--name", name)
        assert r.returncode == 0, r.stderr


@pytest.fixture
def app(flintd, tmp_path):
    make_topics(flintd, "out-py", "out-js", "out-c", "out-sh", "secret")
    deploy(flintd, tmp_path, FUNCTIONS, FILES, envs=ENVS)
    return flintd


@pytest.mark.parametrize("fn,topic,kind", [("pub-py", "out-py", "python"),
                                           ("pub-js", "out-js", "node"),
                                           ("pub-c", "out-c", "c"),
                                           ("pub-sh", "out-sh", "binary")])
def test_a_function_publishes_to_its_declared_topic_and_not_another(app, fn, topic, kind):
    flintd = app
    out = invoke(flintd, fn, ask(fn, topic, f"hello from {kind}"))
    assert out["status"] == 202, out
    got = messages(flintd, topic)
    assert [body_of(m) for m in got] == [f"hello from {kind}"]
    headers = {k.lower(): v for k, v in got[0]["headers"].items()}
    assert headers["x-kind"] == kind
    # who published is flintd's word, from the socket
    assert headers["x-flint-function"] == fn
    # `flint topic tail` shows it too
    r = flintd.cli("topic", "tail", "--topic", topic, "-n", "5")
    assert r.returncode == 0 and f"hello from {kind}" in r.stdout, r.stdout + r.stderr

    # an undeclared topic, existing or not, is refused 403, and nothing lands
    out = invoke(flintd, fn, ask(fn, "secret", "stolen"))
    assert out["status"] == 403, out
    if "error" in out:  # the helpers that give the error say which topics are allowed
        assert out["error"]["code"] == "topic_not_allowed"
        assert topic in out["error"]["allowed"]
    assert messages(flintd, "secret") == []
    out = invoke(flintd, fn, ask(fn, "nowhere", "x"))
    assert out["status"] == 403, out


def test_the_message_id_deduplicates_and_a_missing_declared_topic_is_404(app):
    flintd = app
    first = invoke(flintd, "pub-py", ask("pub-py", "out-py", "once", msg_id="m-1"))
    again = invoke(flintd, "pub-py", ask("pub-py", "out-py", "once", msg_id="m-1"))
    assert first["status"] == again["status"] == 202
    assert first["answer"]["duplicate"] is False and again["answer"]["duplicate"] is True
    assert [body_of(m) for m in messages(flintd, "out-py")] == ["once"]
    # declared but never created: the public publish's 404
    out = invoke(flintd, "pub-c", ask("pub-c", "other-c", "x"))
    assert out["status"] == 404, out


def test_an_update_of_publishes_applies_and_get_shows_it(app, tmp_path):
    flintd = app
    r = flintd.cli("fn", "get", "--name", "pub-c")
    assert r.returncode == 0 and "out-c,other-c" in r.stdout, r.stdout
    out = invoke(flintd, "pub-c", ask("pub-c", "secret", "x"))
    assert out["status"] == 403
    r = flintd.cli("fn", "update", "--name", "pub-c", "--publishes", "out-c", "--publishes",
                   "secret")
    assert r.returncode == 0, r.stderr
    spec = json.loads(flintd.cli("-o", "json", "fn", "get", "--name", "pub-c",
                                 check=True).stdout)["spec"]
    assert spec["publishes"] == ["out-c", "secret"]
    wait_for(lambda: invoke(flintd, "pub-c", ask("pub-c", "secret", "now"))["status"] == 202,
             what="the new publishes to apply")
    assert "now" in [body_of(m) for m in messages(flintd, "secret")]
    # and taken away again: refused
    r = flintd.cli("fn", "update", "--name", "pub-c", "--publishes", "out-c")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: invoke(flintd, "pub-c", ask("pub-c", "secret", "x"))["status"] == 403,
             what="the narrowed publishes to apply")


def test_publishes_is_checked_with_the_topic_name_rule(flintd, tmp_path):
    (tmp_path / "f.py").write_text("def main(req):\n    return 'x'\n")
    flintd.cli("env", "create", "--name", "python", "--runtime", "python", check=True)
    for bad in ("no/slash", "..", "a..b", "async-callbacks"):
        r = flintd.cli("fn", "create", "--name", "f", "--env", "python", "--code",
                       str(tmp_path / "f.py"), "--publishes", bad)
        assert r.returncode != 0, bad
        assert "publishes" in r.stderr, r.stderr
    r = flintd.cli("fn", "create", "--name", "f", "--env", "python", "--code",
                   str(tmp_path / "f.py"), "--publishes", "a,b", "--publishes", "a")
    assert r.returncode != 0 and "twice" in r.stderr, r.stderr
    r = flintd.cli("fn", "create", "--name", "f", "--env", "python", "--code",
                   str(tmp_path / "f.py"), "--publishes", "a,b.c", "--publishes", "d_e")
    assert r.returncode == 0, r.stderr
    spec = json.loads(flintd.cli("-o", "json", "fn", "get", "--name", "f", check=True).stdout)
    assert spec["spec"]["publishes"] == ["a", "b.c", "d_e"]


# A hostile function: it looks for every socket it can reach, and speaks
# to each as a publisher would, with headers claiming another identity.
HOSTILE_PY = """
import json
import os
import socket

def post(path, topic, extra=""):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as e:
        return f"connect: {e.errno}"
    body = b"forged"
    s.sendall((f"POST /topics/{topic}/messages HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n"
               f"{extra}Content-Length: {len(body)}\\r\\n\\r\\n").encode() + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "?"

def main(req):
    plan = json.loads(req.body)
    found = []
    for top in ("/run", "/tmp", "/proc/net/unix"):
        if top == "/proc/net/unix":
            try:
                with open(top) as f:
                    for line in f.read().splitlines()[1:]:
                        parts = line.split()
                        if len(parts) >= 8 and parts[7].startswith("/"):
                            found.append(parts[7])
            except OSError:
                pass
            continue
        for root, dirs, files in os.walk(top):
            for name in files:
                found.append(os.path.join(root, name))
    out = {"found": sorted(set(found)), "env": os.environ.get("FLINT_PUBLISH")}
    out["own"] = post(os.environ["FLINT_PUBLISH"][5:], plan["topic"],
                      "X-Flint-Function: victim\\r\\n")
    out["forged"] = post(os.environ["FLINT_PUBLISH"][5:], "hostile-out",
                         "X-Flint-Function: victim\\r\\n")
    out["others"] = {p: post(p, plan["topic"]) for p in plan.get("paths", [])}
    return out
"""

VICTIM_PY = """
import os
def main(req):
    return {"publish": os.environ.get("FLINT_PUBLISH")}
"""


def test_a_hostile_function_cannot_publish_as_another(flintd, tmp_path, closer):
    make_topics(flintd, "victims-topic", "hostile-out")
    deploy(flintd, tmp_path, """
---
kind: function
name: hostile
spec: {environment: python, code: hostile.py, entrypoint: hostile.main, publishes: [hostile-out]}
---
kind: function
name: victim
spec: {environment: python, code: victim.py, entrypoint: victim.main, publishes: [victims-topic]}
""", {"hostile.py": HOSTILE_PY, "victim.py": VICTIM_PY}, envs=PYTHON_ENV)
    # the victim has an instance (and so a socket) now
    assert invoke(flintd, "victim", "{}")["publish"] == "unix:/run/flint/publish"
    # the host paths of every publish socket this flintd serves
    run_dirs = glob.glob(os.path.join(run_dir(flintd), "*", "p", "publish"))
    out = invoke(flintd, "hostile", {"topic": "victims-topic", "paths": run_dirs})
    # its own socket: refused, whatever it claims to be
    assert out["own"] == "403", out
    # and what it may publish carries its own name, not the one it claims
    assert out["forged"] == "202", out
    got = messages(flintd, "hostile-out")
    assert [m["headers"].get("X-Flint-Function") for m in got] == ["hostile"], got
    # it sees its own socket and no other instance's
    sockets = [p for p in out["found"] if p.endswith("/publish")]
    assert sockets == ["/run/flint/publish"], out["found"]
    # the host paths of the others (the victim's among them) are out of its reach
    assert run_dirs, "no publish socket found on the host"
    for path, result in out["others"].items():
        assert result.startswith("connect:"), (path, result)
    assert messages(flintd, "victims-topic") == []
