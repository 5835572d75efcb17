"""Built-in topics as users see them, through the real flintd: the flint CLI
(topic create|update|list|get|delete|publish|tail) and the API
(/v1/topics...), and routes that publish their calls to a topic.

Nothing here sleeps and then samples: a follow is waited for line by line,
with a deadline far above what a slow machine needs.
"""
import json
import os
import queue
import signal
import subprocess
import threading

import pytest

from conftest import BIN, http, wait_for

MIB = 1 << 20


def make_topic(flintd, name, *limits):
    flintd.cli("topic", "create", "--name", name, *limits, check=True)


def tail_json(flintd, topic, n):
    """The last n messages of topic, as the API's JSON."""
    r = flintd.cli("-o", "json", "topic", "tail", "--topic", topic, "-n", str(n), check=True)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def publish_api(flintd, topic, body, headers=None):
    return flintd.api("POST", f"/v1/topics/{topic}/messages", body, headers)


class Follower:
    """`flint topic tail -f` running, its lines read as they come."""

    def __init__(self, flintd, *args):
        env = dict(os.environ, FLINT_URL=flintd.api_url, FLINT_DATA=flintd.data_dir)
        env.pop("FLINT_TOKEN", None)
        self.proc = subprocess.Popen([os.path.join(BIN, "flint"), *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, predicate, timeout=30):
        """Read lines until predicate(lines seen so far) holds."""
        def more():
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                return predicate(self.seen)
            if line is not None:
                self.seen.append(line)
            return predicate(self.seen)
        return wait_for(more, timeout=timeout, what="lines from flint topic tail -f")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)


@pytest.fixture
def followers():
    made = []
    yield made
    for f in made:
        f.stop()


def test_create_list_get_update_delete(flintd):
    r = flintd.cli("-o", "json", "topic", "create", "--name", "orders", "--max-msgs", "100",
                   "--max-bytes", "1MiB", "--max-age", "1h", "--dup-window", "30s", check=True)
    t = json.loads(r.stdout)
    assert t["name"] == "orders"
    assert t["limits"] == {"maxMsgs": 100, "maxBytes": MIB, "maxAge": "1h",
                           "duplicateWindow": "30s"}
    assert (t["messages"], t["lastSeq"], t["consumerCount"]) == (0, 0, 0)
    # a second create is refused: updating is a command of its own
    r = flintd.cli("topic", "create", "--name", "orders")
    assert r.returncode == 1 and "exists already" in r.stderr
    make_topic(flintd, "audit.log-2")
    r = flintd.cli("topic", "list", check=True)
    rows = r.stdout.splitlines()
    assert rows[0].split()[:3] == ["NAME", "MESSAGES", "BYTES"]
    assert [row.split()[0] for row in rows[1:]] == ["audit.log-2", "orders"]
    # Flint's own topics (the async module's) are not listed
    items = flintd.api("GET", "/v1/topics").json()["items"]
    assert [i["name"] for i in items] == ["audit.log-2", "orders"]

    r = flintd.cli("topic", "get", "--name", "orders", check=True)
    assert "maxMsgs 100, maxBytes 1048576, maxAge 1h, duplicateWindow 30s" in r.stdout
    assert "consumers:  0" in r.stdout
    # update keeps what it is not told
    flintd.cli("topic", "update", "--name", "orders", "--max-msgs", "5", check=True)
    t = json.loads(flintd.cli("-o", "json", "topic", "get", "--name", "orders", check=True).stdout)
    assert t["limits"] == {"maxMsgs": 5, "maxBytes": MIB, "maxAge": "1h",
                           "duplicateWindow": "30s"}
    assert t["consumers"] == [] and t["moreConsumers"] is False
    r = flintd.api("PUT", "/v1/topics/nothing", {"limits": {}})
    assert r.status == 404 and r.json()["error"]["code"] == "topic_not_found"

    r = flintd.cli("topic", "delete", "--name", "orders", check=True)
    assert "deleted" in r.stdout
    r = flintd.cli("topic", "get", "--name", "orders")
    assert r.returncode == 1 and "topic_not_found" in r.stderr
    r = flintd.cli("topic", "delete", "--name", "orders")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_publish_with_and_without_an_id(flintd):
    make_topic(flintd, "t", "--dup-window", "1h")
    r = flintd.cli("topic", "publish", "--topic", "t", "--body", "one", "--id", "m-1", check=True)
    assert r.stdout.strip() == "1"
    r = flintd.cli("topic", "publish", "--topic", "t", "--body", "one again", "--id", "m-1",
                   check=True)
    assert r.stdout.strip() == "1 duplicate"
    for want in ("2", "3"):  # no id: every publish is a message
        r = flintd.cli("topic", "publish", "--topic", "t", "--body", "same", check=True)
        assert r.stdout.strip() == want
    # the API: Nats-Msg-Id is an id too; 202 once durable
    r = publish_api(flintd, "t", "via api", {"Nats-Msg-Id": "n-1", "Content-Type": "text/plain"})
    assert r.status == 202
    assert r.json() == {"topic": "t", "seq": 4, "duplicate": False}
    r = publish_api(flintd, "t", "via api", {"X-Flint-Message-Id": "n-1"})
    assert r.json() == {"topic": "t", "seq": 4, "duplicate": True}
    r = publish_api(flintd, "t", "x", {"X-Flint-Message-Id": "i" * 257})
    assert r.status == 400 and r.json()["error"]["code"] == "bad_message_id"

    # headers: the caller's, without credentials, hop-by-hop ones, ids and X-Flint-*
    flintd.cli("topic", "publish", "--topic", "t", "--body", "{}", "-H",
               "Content-Type: application/json", "-H", "X-Trace: a", "-H", "x-trace: b", "-H",
               "X-Flint-Method: forged", "-H", "Cookie: c=1", "--id", "h-1", check=True)
    messages = tail_json(flintd, "t", 10)
    assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]
    assert messages[0]["body"] == "one" and messages[0]["id"] == "m-1"
    assert messages[1]["id"] is None
    h = messages[4]["headers"]
    assert h["Content-Type"] == "application/json"
    assert h["X-Trace"] == "a, b"
    lower = {k.lower() for k in h}
    assert not lower & {"authorization", "cookie", "x-flint-method", "x-flint-message-id",
                        "host", "content-length"}, h
    assert messages[3]["headers"]["Content-Type"] == "text/plain"
    assert "nats-msg-id" not in {k.lower() for k in messages[3]["headers"]}


def test_tail_prints_inert_text_and_binary_bodies(flintd):
    make_topic(flintd, "t")
    flintd.cli("topic", "publish", "--topic", "t", "--body", "line1\nsay \x1b[31mred", check=True)
    r = publish_api(flintd, "t", b"\xff\xfe\x00\x01")
    assert r.status == 202
    m = tail_json(flintd, "t", 1)[0]
    assert m["bodyEncoding"] == "base64" and m["body"] == "//4AAQ=="
    r = flintd.cli("topic", "tail", "--topic", "t", "-n", "2", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("1  ") and "  -  " in lines[0]
    assert lines[1] == "  line1"
    assert lines[2] == "  say \\x1b[31mred"  # the escape shown, never sent
    assert "\x1b" not in r.stdout
    assert lines[3].startswith("2  ") and lines[4] == "  (4 bytes, binary)"


def test_tail_the_last_n_then_follow(flintd, followers):
    make_topic(flintd, "t")
    for i in range(1, 6):
        flintd.cli("topic", "publish", "--topic", "t", "--body", f"m{i}", check=True)
    assert [m["body"] for m in tail_json(flintd, "t", 3)] == ["m3", "m4", "m5"]
    assert [m["body"] for m in tail_json(flintd, "t", 100)] == ["m1", "m2", "m3", "m4", "m5"]
    assert tail_json(flintd, "t", 0) == []

    f = Follower(flintd, "-o", "json", "topic", "tail", "--topic", "t", "-f", "-n", "2")
    followers.append(f)
    f.until(lambda seen: len(seen) >= 2)
    for i in range(6, 9):
        flintd.cli("topic", "publish", "--topic", "t", "--body", f"m{i}", check=True)
    f.until(lambda seen: len(seen) >= 5)
    got = [json.loads(line) for line in f.seen]
    assert [m["body"] for m in got] == ["m4", "m5", "m6", "m7", "m8"]
    assert [m["seq"] for m in got] == [4, 5, 6, 7, 8]

    # in a table, made inert; many messages at once arrive whole and in order
    g = Follower(flintd, "topic", "tail", "--topic", "t", "-f", "-n", "1")
    followers.append(g)
    g.until(lambda seen: "  m8" in seen)  # following now: what comes next is new
    for i in range(40):
        assert publish_api(flintd, "t", f"burst {i}").status == 202
    g.until(lambda seen: sum(line.startswith("  burst") for line in seen) == 40)
    assert [line for line in g.seen if line.startswith("  ")] == ["  m8"] + [
        f"  burst {i}" for i in range(40)]

    # a stopping flintd ends the follow: the command ends, without an error
    flintd.stop()
    assert f.proc.wait(timeout=30) == 0
    assert g.proc.wait(timeout=30) == 0


def test_read_messages_a_page_at_a_time(flintd):
    make_topic(flintd, "t")
    for i in range(1, 8):
        publish_api(flintd, "t", f"m{i}")
    r = flintd.api("GET", "/v1/topics/t/messages?from=2&limit=3")
    assert r.status == 200
    page = r.json()
    assert [m["seq"] for m in page["messages"]] == [2, 3, 4] and page["next"] == 5
    page = flintd.api("GET", "/v1/topics/t/messages?from=5&limit=100").json()
    assert [m["body"] for m in page["messages"]] == ["m5", "m6", "m7"] and page["next"] == 8
    page = flintd.api("GET", "/v1/topics/t/messages?from=8").json()
    assert page["messages"] == [] and page["next"] == 8
    for bad in ("from=0", "from=x", "limit=0", "limit=1001", "follow=maybe"):
        r = flintd.api("GET", f"/v1/topics/t/messages?{bad}")
        assert r.status == 400, bad
    # what was published survives a restart
    flintd.restart()
    assert [m["body"] for m in tail_json(flintd, "t", 2)] == ["m6", "m7"]


def test_topic_limits_keep_the_newest(flintd):
    make_topic(flintd, "few", "--max-msgs", "3")
    make_topic(flintd, "small", "--max-bytes", "10")
    for i in range(1, 6):
        publish_api(flintd, "few", f"m{i}")
        publish_api(flintd, "small", "1234")
    t = flintd.api("GET", "/v1/topics/few").json()
    assert (t["messages"], t["firstSeq"], t["lastSeq"]) == (3, 3, 5)
    assert [m["body"] for m in tail_json(flintd, "few", 10)] == ["m3", "m4", "m5"]
    t = flintd.api("GET", "/v1/topics/small").json()
    assert (t["messages"], t["bytes"]) == (2, 8)
    # bad limits are refused, naming the field
    r = flintd.cli("topic", "create", "--name", "x", "--max-age", "soon")
    assert r.returncode == 1 and "limits.maxAge" in r.stderr
    r = flintd.api("POST", "/v1/topics", {"name": "x", "limits": {"maxMsgs": -1}})
    assert r.status == 400 and "limits.maxMsgs" in r.json()["error"]["message"]
    r = flintd.api("POST", "/v1/topics", {"name": "x", "limits": {"ttl": 1}})
    assert r.status == 400 and "limits.ttl" in r.json()["error"]["message"]
    r = flintd.api("POST", "/v1/topics",
                   {"name": "x", "limits": {"maxAge": "1m", "duplicateWindow": "5m"}})
    assert r.status == 400 and "duplicateWindow" in r.json()["error"]["message"]
    r = flintd.api("POST", "/v1/topics", {"name": "x", "retention": "1h"})
    assert r.status == 400


def test_bodies_over_the_limit_are_refused(flintd):
    make_topic(flintd, "big")
    r = publish_api(flintd, "big", b"x" * MIB)
    assert r.status == 202
    r = publish_api(flintd, "big", b"x" * (MIB + 1))
    assert r.status == 413 and r.json()["error"]["code"] == "too_large"
    t = flintd.api("GET", "/v1/topics/big").json()
    assert (t["messages"], t["bytes"]) == (1, MIB)
    # the largest message reads back whole
    page = flintd.api("GET", "/v1/topics/big/messages").json()
    assert len(page["messages"][0]["body"]) == MIB


def test_bad_names_and_unknown_topics(flintd):
    for bad in ("a/b", ".x", "x.", "a..b", "with space", "é", "n" * 257, "async-callbacks"):
        r = flintd.api("POST", "/v1/topics", {"name": bad})
        assert r.status == 400, bad
        assert r.json()["error"]["message"].startswith("topic: "), bad
    r = flintd.cli("topic", "create", "--name", "a/b")
    assert r.returncode == 2 and "1 to 256 letters" in r.stderr
    make_topic(flintd, "n" * 256)
    assert flintd.api("GET", "/v1/topics/" + "n" * 256).status == 200
    # Flint's own topics cannot be reached through the API
    for path in ("/v1/topics/async-callbacks", "/v1/topics/async%2Ff",
                 "/v1/topics/async-callbacks/messages"):
        r = flintd.api("GET", path)
        assert r.status == 404, path
    r = flintd.api("DELETE", "/v1/topics/async-callbacks")
    assert r.status == 404
    # unknown topics: never made by a publish
    r = publish_api(flintd, "ghost", "boo")
    assert r.status == 404 and r.json()["error"]["code"] == "topic_not_found"
    assert flintd.api("GET", "/v1/topics/ghost").status == 404
    assert flintd.api("GET", "/v1/topics/ghost/messages").status == 404
    assert flintd.api("GET", "/v1/topics/ghost/messages?follow=1").status == 404
    r = flintd.cli("topic", "tail", "--topic", "ghost", "-f")
    assert r.returncode == 1 and "topic_not_found" in r.stderr
    r = flintd.cli("topic", "publish", "--topic", "ghost", "--body", "x")
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert flintd.api("GET", "/v1/topics/ghost/other").status == 404
    assert flintd.api("PATCH", "/v1/topics/ghost").status == 405
    assert flintd.api("GET", "/v1/topics", token=False).status == 401


def test_a_route_publishes_its_calls_to_a_topic(flintd):
    make_topic(flintd, "hooks")
    flintd.cli("route", "create", "--name", "hook", "--url", "/hooks/{source}", "--method",
               "POST", "--topic", "hooks", check=True)
    route = json.loads(flintd.cli("-o", "json", "route", "get", "--name", "hook",
                                  check=True).stdout)
    assert route["spec"]["target"] == {"topic": "hooks"}
    r = http("POST", flintd.router_url + "/hooks/github?delivery=7", b'{"push": 1}',
             {"Content-Type": "application/json", "X-Flint-Method": "forged",
              "Authorization": "Bearer caller", "X-Flint-Message-Id": "gh-7"})
    assert r.status == 202
    assert r.json() == {"topic": "hooks", "seq": 1, "duplicate": False}
    # a webhook delivered twice with its id is one message
    r = http("POST", flintd.router_url + "/hooks/github?delivery=7", b'{"push": 1}',
             {"X-Flint-Message-Id": "gh-7"})
    assert r.json() == {"topic": "hooks", "seq": 1, "duplicate": True}
    m = tail_json(flintd, "hooks", 1)[0]
    assert m["body"] == '{"push": 1}' and m["id"] == "gh-7"
    h = m["headers"]
    assert h["X-Flint-Method"] == "POST"
    assert h["X-Flint-Path"] == "/hooks/github?delivery=7"
    assert h["X-Flint-Route"] == "hook"
    assert h["X-Flint-Param-source"] == "github"
    assert h["Content-Type"] == "application/json"
    assert "authorization" not in {k.lower() for k in h}
    # other methods are not the route's
    assert http("GET", flintd.router_url + "/hooks/github").status == 405

    # a route to a topic that does not exist answers 404, and publishes nothing
    flintd.cli("route", "create", "--name", "lost", "--url", "/lost", "--topic", "nowhere",
               check=True)
    r = http("POST", flintd.router_url + "/lost", b"x")
    assert r.status == 404 and r.json()["error"]["code"] == "topic_not_found"
    assert flintd.api("GET", "/v1/topics/nowhere").status == 404
    # ...until it is made
    make_topic(flintd, "nowhere")
    assert http("POST", flintd.router_url + "/lost", b"x").status == 202

    # routes to topics take a topic's name and no async fields
    r = flintd.cli("route", "create", "--name", "bad", "--url", "/bad", "--topic", "a/b")
    assert r.returncode == 1 and "spec.target.topic" in r.stderr
    r = flintd.cli("route", "create", "--name", "bad", "--url", "/bad", "--topic", "hooks",
                   "--async")
    assert r.returncode == 1 and "spec.async" in r.stderr
    # a body over the router's --max-body is refused before it is published
    r = http("POST", flintd.router_url + "/hooks/big", b"x" * (MIB + 1))
    assert r.status == 413
    assert flintd.api("GET", "/v1/topics/hooks").json()["lastSeq"] == 1
