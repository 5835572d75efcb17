"""Message-queue triggers on the builtin connector (the embedded store's
topics) through the real flintd, with real runtimes in the real sandbox:
messages are published with POST /v1/topics/{name}/messages and what the
triggers publish is read back with GET /v1/topics/{name}/messages (and
`flint topic tail`).

How runs are observed: as in test_async.py, every function here writes

    run <X-Flint-Invocation-Id> <X-Flint-Attempt>

to its output, which flintd keeps in the function's log; a function decides
its answer from the message's body (a plan: {"fail": [500, ...], "sleep": S})
and X-Flint-Attempt.

Nothing sleeps and then samples: every wait is for a condition, with a
deadline far above what a slow machine needs.
"""
import base64
import http.client
import json
import threading
import time
from collections import defaultdict

import pytest

from conftest import deploy, wait_for
from test_async import C_ENV, runs, runs_of

# Answers what the body asks ({"fail": [S1, S2...]}: S1 to attempt 1...,
# then 200; "sleep": seconds first), with what it was sent.
MQ_PY = """
import json
import time

def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    inv, attempt = h.get("x-flint-invocation-id", "-"), int(h.get("x-flint-attempt", "0"))
    print(f"run {inv} {attempt}", flush=True)
    try:
        plan = json.loads(req.body or b"{}")
    except ValueError:
        plan = {}
    if not isinstance(plan, dict):
        plan = {}
    time.sleep(plan.get("sleep", 0))
    fail = plan.get("fail", [])
    status = fail[attempt - 1] if 0 < attempt <= len(fail) else 200
    seen = {k: v for k, v in h.items() if k.startswith("x-") or k == "content-type"}
    out = {"plan": plan, "seen": seen, "method": req.method}
    return json.dumps(out), status, {"Content-Type": "application/json", "X-Answer": "yes"}
"""

BROKEN_PY = """
def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    print(f"run {h.get('x-flint-invocation-id')} {h.get('x-flint-attempt')}", flush=True)
    return "broken", 500
"""

FIXED_PY = """
def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    print(f"run {h.get('x-flint-invocation-id')} {h.get('x-flint-attempt')}", flush=True)
    return "fixed " + req.body.decode()
"""

ECHO_C = r"""
#include <flint/fn.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    flint_response_printf(resp, "%.*s", (int)req->body_len, req->body);
    return 0;
}
"""


@pytest.fixture
def topics_api(flintd):
    """These tests publish and read through the topics API; a build without
    it cannot show what they prove (under CI a skip fails)."""
    if flintd.api("GET", "/v1/topics").status == 404:
        pytest.skip("this flintd does not serve /v1/topics (the topics API)")


def mq_function(name, concurrency=5):
    return f"""
---
kind: function
name: {name}
spec: {{environment: python, code: mq.py, entrypoint: mq.main, concurrency: {concurrency}}}
"""


def publish(flintd, topic, body, headers=None, msg_id=None):
    """POST one message; its sequence."""
    h = dict(headers or {})
    if msg_id is not None:
        h["X-Flint-Message-Id"] = msg_id
    data = json.dumps(body) if isinstance(body, (dict, list)) else body
    r = flintd.api("POST", f"/v1/topics/{topic}/messages", data, h)
    assert r.status == 202, r.text
    return r.json()["seq"]


def body_of(m):
    if m.get("bodyEncoding") == "base64":
        return base64.b64decode(m["body"]).decode("utf-8", "replace")
    return m["body"]


def messages(flintd, topic):
    """Every message topic holds, oldest first: the API's message objects
    ({seq, id, headers, body...})."""
    out, start = [], 1
    for _ in range(10000):
        r = flintd.api("GET", f"/v1/topics/{topic}/messages?from={start}&limit=1000")
        if r.status == 404:
            return out
        assert r.status == 200, r.text
        page = r.json()
        out += page["messages"]
        nxt = page.get("next")
        if not page["messages"] or not nxt or nxt <= start:
            return out
        start = nxt
    raise AssertionError("too many pages")


def mqt(flintd, name):
    return json.loads(flintd.cli("-o", "json", "mqt", "get", "--name", name, check=True).stdout)


def wait_running(flintd, name):
    """The trigger once its consumer is made (and the topics it names)."""
    def running():
        t = mqt(flintd, name)
        return t if t["status"].get("state") == "running" else None
    return wait_for(running, what=f"trigger {name} running")


def header(m, name):
    for k, v in m["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def test_responses_and_errors_reach_their_topics(flintd, tmp_path, topics_api):
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    flintd.cli("mqt", "create", "--name", "orders", "--topic", "orders", "--function", "work",
               "--resp-topic", "orders-done", "--error-topic", "orders-failed", "--max-retries",
               "2", "--backoff", "10ms", "--max-backoff", "20ms", check=True)
    t = wait_running(flintd, "orders")
    assert t["spec"] == {"topic": "orders", "target": {"function": "work"},
                         "respTopic": "orders-done", "errorTopic": "orders-failed",
                         "maxRetries": 2, "backoff": "10ms", "maxBackoff": "20ms"}
    assert t["status"]["connector"] == "builtin"
    assert t["status"]["consumer"]["name"] == "mqt/orders"

    publish(flintd, "orders", {"order": 1}, {"X-Custom": "v", "Content-Type": "application/x"},
            msg_id="m-1")
    poison = publish(flintd, "orders", {"order": 2, "fail": [500, 500, 500, 500]},
                     {"X-Custom": "p"})
    done = wait_for(lambda: messages(flintd, "orders-done") or None, what="a response")
    failed = wait_for(lambda: messages(flintd, "orders-failed") or None, what="an error")

    # the response: the function's body and headers, and Flint's
    assert len(done) == 1
    resp = done[0]
    out = json.loads(body_of(resp))
    seen = out["seen"]
    assert out["method"] == "POST" and out["plan"] == {"order": 1}
    assert seen["x-custom"] == "v" and seen["content-type"] == "application/x"
    assert seen["x-flint-topic"] == "orders"
    assert seen["x-flint-resp-topic"] == "orders-done"
    assert seen["x-flint-error-topic"] == "orders-failed"
    assert seen["x-flint-message-id"] == "m-1"
    assert seen["x-flint-attempt"] == "1"
    assert seen["x-flint-trigger"] == "messagequeuetrigger/orders"
    assert header(resp, "X-Answer") == "yes"
    assert header(resp, "X-Flint-Invocation-Id") == seen["x-flint-invocation-id"]
    assert header(resp, "X-Flint-Status") == "200"
    assert header(resp, "X-Flint-Message-Id") == "m-1"

    # the poison message: exactly maxRetries + 1 attempts, then the error
    # topic with its headers and why; then acked
    assert len(failed) == 1
    err = failed[0]
    assert json.loads(body_of(err)) == {"order": 2, "fail": [500, 500, 500, 500]}
    assert header(err, "X-Custom") == "p"
    assert header(err, "X-Flint-Attempts") == "3"
    assert header(err, "X-Flint-Status") == "500"
    assert "the function answered 500" in header(err, "X-Flint-Error")
    assert header(err, "X-Flint-Message-Id") == str(poison)
    inv = header(err, "X-Flint-Invocation-Id")
    assert runs_of(flintd, "work", inv) == [1, 2, 3]
    # never delivered again: a message behind it is answered, and the
    # consumer holds nothing
    publish(flintd, "orders", {"order": 3})
    wait_for(lambda: len(messages(flintd, "orders-done")) == 2, what="the next response")
    wait_for(lambda: mqt(flintd, "orders")["status"]["consumer"].get("pending") == 0,
             what="nothing pending")
    assert runs_of(flintd, "work", inv) == [1, 2, 3]
    # its failed attempts are in its history; the fast path wrote none
    r = flintd.api("GET", f"/v1/invocations/{inv}")
    assert r.status == 200, r.text
    assert r.json()["status"] == "failed"
    assert [a["status"] for a in r.json()["attempts"]] == [500, 500, 500]
    ok_inv = seen["x-flint-invocation-id"]
    assert flintd.api("GET", f"/v1/invocations/{ok_inv}").status == 404

    # flint topic tail shows what arrived
    r = flintd.cli("topic", "tail", "--topic", "orders-failed", "-n", "5", check=True)
    assert "X-Flint-Error" in r.stdout
    # the list's columns
    r = flintd.cli("mqt", "list", check=True)
    head, row = r.stdout.splitlines()[:2]
    assert head.split() == ["NAME", "TOPIC", "TARGET", "RESP", "ERROR", "LAG", "PENDING"]
    assert row.split()[:5] == ["orders", "orders", "function:work", "orders-done",
                               "orders-failed"]


def test_without_an_error_topic_a_poison_message_is_a_dead_letter_until_redriven(
        flintd, tmp_path, topics_api):
    d = deploy(flintd, tmp_path, """
---
kind: function
name: broken
spec: {environment: python, code: broken.py, entrypoint: broken.main}
""", {"broken.py": BROKEN_PY, "fixed.py": FIXED_PY})
    flintd.cli("mqt", "create", "--name", "jobs", "--topic", "jobs", "--function", "broken",
               "--resp-topic", "jobs-done", "--max-retries", "1", "--backoff", "10ms",
               "--max-backoff", "20ms", check=True)
    wait_running(flintd, "jobs")
    publish(flintd, "jobs", "job-7", msg_id="job-7")

    def dead_row():
        r = flintd.cli("dlq", "list", check=True)
        rows = [line.split() for line in r.stdout.splitlines()[1:] if "broken" in line]
        return rows[0] if rows else None
    row = wait_for(dead_row, what="a dead letter")
    inv = row[0]
    assert row[1:5] == ["broken", "messagequeuetrigger/jobs", "dead", "2"], row
    assert runs_of(flintd, "broken", inv) == [1, 2]
    dead = json.loads(flintd.cli("-o", "json", "dlq", "get", inv, check=True).stdout)
    assert dead["status"] == "dead"
    assert dead["request"]["body"] == "job-7"
    wait_for(lambda: mqt(flintd, "jobs")["status"]["consumer"].get("dead") == 1,
             what="the consumer counts it")
    # fixed, then redriven: the same invocation, numbering going on
    flintd.cli("fn", "update", "--name", "broken", "--code", str(d / "fixed.py"), "--entrypoint",
               "fixed.main", check=True)
    r = flintd.cli("dlq", "redrive", inv, check=True)
    assert r.stdout == f"redriven {inv}\n"
    done = wait_for(lambda: messages(flintd, "jobs-done") or None, what="the response")
    assert body_of(done[0]) == "fixed job-7"
    assert header(done[0], "X-Flint-Invocation-Id") == inv

    def succeeded():
        r = flintd.api("GET", f"/v1/invocations/{inv}")
        return r.json() if r.json()["status"] == "succeeded" else None
    got = wait_for(succeeded, what="the invocation succeeded")
    assert [(a["attempt"], a["status"]) for a in got["attempts"]] == [(1, 500), (2, 500),
                                                                       (3, 200)]
    assert runs_of(flintd, "broken", inv) == [1, 2, 3]
    assert inv not in flintd.cli("dlq", "list", check=True).stdout


def test_dlq_of_a_function_shows_its_triggers_dead_letters_with_its_async_ones(
        flintd, tmp_path, topics_api):
    d = deploy(flintd, tmp_path, """
---
kind: function
name: broken
spec: {environment: python, code: broken.py, entrypoint: broken.main, retry: {maxAttempts: 1}}
---
kind: function
name: other
spec: {environment: python, code: broken.py, entrypoint: broken.main, retry: {maxAttempts: 1}}
""", {"broken.py": BROKEN_PY, "fixed.py": FIXED_PY})
    for name, fn in (("jobs", "broken"), ("gone", "broken"), ("others", "other")):
        flintd.cli("mqt", "create", "--name", name, "--topic", name, "--function", fn,
                   "--resp-topic", f"{name}-done", "--max-retries", "0", check=True)
        wait_running(flintd, name)
        publish(flintd, name, f"{name}-1")
    r = flintd.cli("fn", "invoke", "--name", "broken", "--async", "--body", "async-1", check=True)
    async_id = r.stdout.strip()

    def dead_of(fn):
        out = json.loads(flintd.cli("-o", "json", "dlq", "list", "--function", fn, "--all",
                                    check=True).stdout)
        return {i["id"]: i["trigger"] for i in (out["items"] if isinstance(out, dict) else out)}
    want = {"api", "messagequeuetrigger/jobs", "messagequeuetrigger/gone"}
    mine = wait_for(lambda: (lambda m: m if set(m.values()) == want else None)(dead_of("broken")),
                    what="the function's three dead letters")
    assert mine[async_id] == "api"
    theirs = wait_for(lambda: dead_of("other") or None, what="the other's dead letter")
    assert list(theirs.values()) == ["messagequeuetrigger/others"]
    assert not set(theirs) & set(mine)
    by_trigger = {t: i for i, t in mine.items()}

    # a deleted trigger takes its consumer and its letters: no redrive, a purge
    flintd.cli("mqt", "delete", "--name", "gone", check=True)
    gone = by_trigger["messagequeuetrigger/gone"]
    r = flintd.cli("dlq", "redrive", gone)
    assert r.returncode != 0 and "trigger is gone" in r.stderr, r.stdout + r.stderr
    r = flintd.cli("dlq", "purge", gone, check=True)
    assert gone not in dead_of("broken")

    # fixed, then every dead letter of the function redriven: the trigger's
    # is delivered again by its trigger (same invocation), the async one runs again
    flintd.cli("fn", "update", "--name", "broken", "--code", str(d / "fixed.py"), "--entrypoint",
               "fixed.main", check=True)
    r = flintd.cli("-o", "json", "dlq", "redrive", "--function", "broken", check=True)
    jobs = by_trigger["messagequeuetrigger/jobs"]
    done = wait_for(lambda: messages(flintd, "jobs-done") or None, what="the response")
    assert body_of(done[0]) == "fixed jobs-1"
    assert header(done[0], "X-Flint-Invocation-Id") == jobs
    for inv in (jobs, async_id):
        wait_for(lambda: flintd.api("GET", f"/v1/invocations/{inv}").json()["status"] ==
                 "succeeded", what=f"{inv} succeeded")
    assert dead_of("broken") == {}
    # the other function's letter was left alone
    assert dead_of("other") == theirs


def test_a_call_longer_than_ack_wait_is_not_redelivered(flintd, tmp_path, topics_api):
    deploy(flintd, tmp_path, mq_function("slow"), {"mq.py": MQ_PY})
    flintd.cli("mqt", "create", "--name", "slow", "--topic", "slow", "--function", "slow",
               "--resp-topic", "slow-done", "--ack-wait", "1s", "--concurrency", "2", check=True)
    wait_running(flintd, "slow")
    publish(flintd, "slow", {"sleep": 4})
    done = wait_for(lambda: messages(flintd, "slow-done") or None, timeout=60,
                    what="the response")
    inv = header(done[0], "X-Flint-Invocation-Id")
    assert runs_of(flintd, "slow", inv) == [1]
    assert len(messages(flintd, "slow-done")) == 1


def test_concurrency_one_keeps_order_and_n_runs_n_at_once(flintd, tmp_path, topics_api):
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    flintd.cli("mqt", "create", "--name", "seq", "--topic", "seq", "--function", "work",
               "--resp-topic", "seq-done", check=True)
    wait_running(flintd, "seq")
    for i in range(6):
        publish(flintd, "seq", {"i": i, "sleep": 0.05 * (i % 2)})
    done = wait_for(lambda: len(messages(flintd, "seq-done")) == 6 and
                    messages(flintd, "seq-done"), what="six responses")
    assert [json.loads(body_of(m))["plan"]["i"] for m in done] == list(range(6))

    flintd.cli("mqt", "create", "--name", "par", "--topic", "par", "--function", "work",
               "--resp-topic", "par-done", "--concurrency", "3", check=True)
    wait_running(flintd, "par")
    for i in range(5):
        publish(flintd, "par", {"i": i, "sleep": 3})
    inflight = []

    def three_at_once():
        n = mqt(flintd, "par")["status"]["inflight"]
        inflight.append(n)
        return n == 3
    wait_for(three_at_once, timeout=60, what="three in flight")
    wait_for(lambda: len(messages(flintd, "par-done")) == 5, timeout=60, what="five responses")
    assert max(inflight) == 3


def test_updates_take_effect_live_and_delete_removes_the_consumer(flintd, tmp_path, topics_api):
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    flintd.cli("mqt", "create", "--name", "t", "--topic", "in", "--function", "work",
               "--resp-topic", "out", "--paused", check=True)
    wait_for(lambda: mqt(flintd, "t")["status"].get("state") == "paused", what="paused")
    publish(flintd, "in", {"i": 1})
    publish(flintd, "in", {"i": 2})
    wait_for(lambda: mqt(flintd, "t")["status"]["consumer"].get("lag") == 2,
             what="two messages waiting")
    assert runs(flintd, "work") == []
    flintd.cli("mqt", "update", "--name", "t", "--paused=false", check=True)
    wait_for(lambda: len(messages(flintd, "out")) == 2, what="both answered once unpaused")
    # a new response topic, a new concurrency: the next message follows them
    flintd.cli("mqt", "update", "--name", "t", "--resp-topic", "out2", "--concurrency", "2",
               check=True)
    wait_for(lambda: mqt(flintd, "t")["spec"].get("respTopic") == "out2" and
             mqt(flintd, "t")["status"].get("state") == "running", what="updated")
    publish(flintd, "in", {"i": 3})
    wait_for(lambda: len(messages(flintd, "out2")) == 1, what="the response in out2")
    assert len(messages(flintd, "out")) == 2
    # deleted: its consumer goes; messages published after wait for nobody
    flintd.cli("mqt", "delete", "--name", "t", check=True)

    def consumers():
        r = flintd.api("GET", "/v1/topics/in")
        assert r.status == 200, r.text
        return [c["name"] for c in r.json().get("consumers", [])]
    wait_for(lambda: "mqt/t" not in consumers(), what="the consumer deleted")
    n = len(runs(flintd, "work"))
    publish(flintd, "in", {"i": 4})
    # a trigger made again on the topic after it takes the message: the
    # deleted one never ran it
    flintd.cli("mqt", "create", "--name", "t2", "--topic", "in", "--function", "work",
               "--resp-topic", "out3", check=True)
    wait_for(lambda: len(messages(flintd, "out3")) == 4, what="the new trigger answers all")
    assert len(runs(flintd, "work")) == n + 4


def test_specs_are_checked(flintd, tmp_path):
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    for args, message in [
        (["--connector", "kafka"], "spec.connector: must be 'builtin' or 'nats'"),
        (["--resp-topic", "in"], "spec.respTopic: must not be the topic"),
        (["--max-retries", "100"], "spec.maxRetries: must be a whole number from 0 to 99"),
        (["--ack-wait", "10ms"], "spec.ackWait"),
        (["--backoff", "10s", "--max-backoff", "1s"], "spec.maxBackoff"),
    ]:
        r = flintd.cli("mqt", "create", "--name", "bad", "--topic", "in", "--function", "work",
                       *args)
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
    r = flintd.cli("mqt", "create", "--name", "bad", "--topic", "in", "--workflow", "w")
    assert r.returncode != 0


def test_kill_twice_under_10000_messages_loses_none(flintd, tmp_path, topics_api):
    deploy(flintd, tmp_path, """
---
kind: function
name: echo
spec: {environment: c, code: echo.c, entrypoint: handler, concurrency: 4}
""", {"echo.c": ECHO_C}, envs=C_ENV)
    flintd.cli("mqt", "create", "--name", "load", "--topic", "load", "--function", "echo",
               "--resp-topic", "load-done", "--concurrency", "16", "--ack-wait", "2s",
               "--max-retries", "5", "--backoff", "10ms", "--max-backoff", "100ms", check=True)
    wait_running(flintd, "load")
    total = 10000
    published, lock = set(), threading.Lock()
    deadline = time.monotonic() + 300
    token = flintd.token
    next_i = iter(range(total))

    def publisher():
        conn, i = None, None
        while time.monotonic() < deadline:
            if i is None:
                with lock:
                    i = next(next_i, None)
                if i is None:
                    return
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", flintd.api_port, timeout=30)
                # the same id on a publish tried again: de-duplicated
                conn.request("POST", "/v1/topics/load/messages", body=f"m{i}".encode(),
                             headers={"Authorization": f"Bearer {token}",
                                      "X-Flint-Message-Id": f"m{i}"})
                r = conn.getresponse()
                r.read()
                if r.status == 202:
                    with lock:
                        published.add(i)
                    i = None
                else:
                    time.sleep(0.05)  # starting, or full: again
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)

    threads = [threading.Thread(target=publisher) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for kill_at in (total // 4, total * 2 // 3):
            wait_for(lambda: len(published) >= kill_at or
                     not any(t.is_alive() for t in threads), timeout=120,
                     what=f"{kill_at} published")
            flintd.kill()
            flintd.start()
    finally:
        for t in threads:
            t.join(timeout=320)
    assert published == set(range(total)), f"{total - len(published)} not published"

    # every message's response, at least once; a duplicate carries the
    # invocation id of the first
    def answered():
        by_msg = defaultdict(set)
        for m in messages(flintd, "load-done"):
            by_msg[header(m, "X-Flint-Message-Id")].add(header(m, "X-Flint-Invocation-Id"))
        return by_msg if len(by_msg) >= total else None
    by_msg = wait_for(answered, timeout=240, interval=1, what="every message answered")
    assert set(by_msg) == {f"m{i}" for i in range(total)}
    assert all(len(ids) == 1 for ids in by_msg.values()), \
        [m for m, ids in by_msg.items() if len(ids) > 1][:5]
    for m in messages(flintd, "load-done")[:100]:
        assert body_of(m) == header(m, "X-Flint-Message-Id")


def test_a_trigger_runs_a_workflow_as_it_runs_a_function(flintd, tmp_path, topics_api):
    """A trigger may target a workflow: each message is the request of an
    invocation (its body the inputs' body and default, its headers the
    inputs' headers), the workflow's output is the response published to
    respTopic; a workflow that fails is retried and then reaches the error
    topic with why. Its workflow must exist, and cannot be both."""
    from test_workflow_run import deploy_workflows
    shout = {"output": "Shout", "tasks": {"Shout": {
        "run": "step", "inputs": {"body": {
            "add": "{$.Invocation.Inputs.default.word + '/' + "
                   "$.Invocation.Inputs.headers['X-Custom']}"}}}}}
    failing = {"output": "B", "tasks": {
        "A": {"run": "fail", "inputs": "{'no luck for ' + $.Invocation.Inputs.default.word}"},
        "B": {"run": "noop", "requires": ["A"]}}}
    deploy_workflows(flintd, tmp_path, shout=shout, failing=failing)
    r = flintd.cli("mqt", "create", "--name", "bad", "--topic", "w", "--workflow", "nosuch")
    assert r.returncode != 0 and "workflow 'nosuch' does not exist" in r.stderr, r.stderr
    r = flintd.api("POST", "/v1/messagequeuetriggers", json.dumps(
        {"name": "both", "spec": {"topic": "w", "target": {"function": "step",
                                                           "workflow": "shout"}}}),
        {"Content-Type": "application/json"})
    assert r.status == 400 and "target" in r.text, r.text

    flintd.cli("mqt", "create", "--name", "shouts", "--topic", "words", "--workflow", "shout",
               "--resp-topic", "shouted", check=True)
    flintd.cli("mqt", "create", "--name", "fails", "--topic", "doomed", "--workflow", "failing",
               "--resp-topic", "never", "--error-topic", "doomed-failed", "--max-retries", "1",
               "--backoff", "10ms", "--max-backoff", "20ms", check=True)
    assert mqt(flintd, "shouts")["spec"]["target"] == {"workflow": "shout"}
    rows = {line.split()[0]: line.split() for line in
            flintd.cli("mqt", "list", check=True).stdout.splitlines()[1:]}
    assert rows["shouts"][2] == "workflow:shout" and rows["fails"][2] == "workflow:failing"
    wait_running(flintd, "shouts")
    wait_running(flintd, "fails")
    as_json = {"Content-Type": "application/json"}
    publish(flintd, "words", {"word": "hello"}, dict(as_json, **{"X-Custom": "there"}),
            msg_id="w-1")
    publish(flintd, "doomed", {"word": "me"}, as_json, msg_id="d-1")

    done = wait_for(lambda: messages(flintd, "shouted") or None, timeout=60,
                    what="the workflow's output")
    assert json.loads(body_of(done[0]))["seen"] == ["hello/there"]
    inv = header(done[0], "X-Flint-Invocation-Id")
    assert header(done[0], "X-Flint-Message-Id") == "w-1"
    assert header(done[0], "X-Flint-Status") == "200"
    # the workflow invocation that ran it says where it came from
    runs = json.loads(flintd.cli("-o", "json", "inv", "list", "--workflow", "shout",
                                 check=True).stdout)["items"]
    assert len(runs) == 1, runs

    failed = wait_for(lambda: messages(flintd, "doomed-failed") or None, timeout=60,
                      what="the failure on the error topic")
    assert len(failed) == 1
    assert json.loads(body_of(failed[0])) == {"word": "me"}
    assert header(failed[0], "X-Flint-Attempts") == "2"
    assert header(failed[0], "X-Flint-Error") == \
        "workflow_failed: task 'A' failed: no luck for me"
    assert messages(flintd, "never") == []
    # each attempt was an invocation of its own, both failed
    tried = json.loads(flintd.cli("-o", "json", "inv", "list", "--workflow", "failing",
                                  check=True).stdout)["items"]
    assert sorted(i["status"] for i in tried) == ["failed", "failed"], tried
    bad = header(failed[0], "X-Flint-Invocation-Id")
    r = flintd.api("GET", f"/v1/invocations/{bad}")
    assert r.status == 200 and r.json()["status"] == "failed", r.text
    assert [a["status"] for a in r.json()["attempts"]] == [500, 500]
