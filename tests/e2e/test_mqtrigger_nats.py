"""Message-queue triggers on the NATS JetStream connector, through the real
flintd (`--nats`) and a real `nats-server -js` (the nats_server fixture),
with real runtimes in the real sandbox. Messages are published and streams
read with tests/helpers/nats_tool (libnats).

Runs are observed as in test_mqtrigger.py: every function writes
`run <X-Flint-Invocation-Id> <X-Flint-Attempt>` to its log and decides its
answer from the message's body ({"fail": [500, ...], "sleep": S}).

Nothing sleeps and then samples: every wait is for a condition, with a
deadline far above what a slow machine needs.
"""
import json
import os
import subprocess
import threading

import pytest

from conftest import ROOT, deploy, wait_for
from test_async import C_ENV, runs, runs_of
from test_mqtrigger import BROKEN_PY, ECHO_C, FIXED_PY, MQ_PY, mq_function


@pytest.fixture
def nats_flintd(flintd_factory, nats_server):
    return flintd_factory(extra_args=["--nats", nats_server.url])


def mqt(flintd, name):
    return json.loads(flintd.cli("-o", "json", "mqt", "get", "--name", name, check=True).stdout)


def state_of(flintd, name):
    return mqt(flintd, name)["status"].get("state")


def wait_running(flintd, name, timeout=30):
    def running():
        t = mqt(flintd, name)
        return t if t["status"].get("state") == "running" else None
    return wait_for(running, timeout=timeout, what=f"trigger {name} running")


def header(m, name):
    for k, v in m["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def create(flintd, name, topic, function, *args):
    flintd.cli("mqt", "create", "--name", name, "--topic", topic, "--function", function,
               "--connector", "nats", *args, check=True)


def test_responses_and_errors_reach_their_subjects(nats_flintd, nats_server, tmp_path):
    flintd = nats_flintd
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    # the input's stream is the operator's; the others Flint makes
    nats_server.add_stream("ORDERS", "orders.>")
    create(flintd, "orders", "orders.new", "work", "--resp-topic", "orders-done",
           "--error-topic", "orders-failed", "--max-retries", "2", "--backoff", "10ms",
           "--max-backoff", "20ms", "--create-stream")
    t = wait_running(flintd, "orders")
    assert t["spec"]["connector"] == "nats" and t["spec"]["createStream"] is True
    assert t["status"]["connector"] == "nats"
    assert t["status"]["consumer"]["name"] == "mqt/orders"
    assert nats_server.consumers("ORDERS") == ["mqt_orders"]

    nats_server.publish("orders.new", {"order": 1}, "m-1",
                        [("X-Custom", "v"), ("Content-Type", "application/x")])
    nats_server.publish("orders.new", {"order": 2, "fail": [500, 500, 500, 500]}, "m-2",
                        [("X-Custom", "p")])
    done = wait_for(lambda: nats_server.messages("FLINT_orders-done") or None,
                    what="a response")
    failed = wait_for(lambda: nats_server.messages("FLINT_orders-failed") or None,
                      timeout=60, what="an error")

    assert len(done) == 1
    resp = done[0]
    assert resp["subject"] == "orders-done"
    out = json.loads(resp["data"])
    seen = out["seen"]
    assert out["method"] == "POST" and out["plan"] == {"order": 1}
    assert seen["x-custom"] == "v" and seen["content-type"] == "application/x"
    assert seen["x-flint-topic"] == "orders.new"
    assert seen["x-flint-resp-topic"] == "orders-done"
    assert seen["x-flint-error-topic"] == "orders-failed"
    assert seen["x-flint-message-id"] == "m-1"
    assert seen["x-flint-attempt"] == "1"
    assert header(resp, "X-Answer") == "yes"
    inv_ok = header(resp, "X-Flint-Invocation-Id")
    assert inv_ok == seen["x-flint-invocation-id"]
    assert header(resp, "X-Flint-Status") == "200"
    # de-duplicated by the stream within its window
    assert header(resp, "Nats-Msg-Id") == f"{inv_ok}:resp"

    # the poison message: exactly maxRetries + 1 attempts, then the error
    # subject with its headers and why; then acked
    assert len(failed) == 1
    err = failed[0]
    assert json.loads(err["data"]) == {"order": 2, "fail": [500, 500, 500, 500]}
    assert header(err, "X-Custom") == "p"
    assert header(err, "X-Flint-Attempts") == "3"
    assert header(err, "X-Flint-Status") == "500"
    assert "the function answered 500" in header(err, "X-Flint-Error")
    assert header(err, "X-Flint-Message-Id") == "m-2"
    inv = header(err, "X-Flint-Invocation-Id")
    assert runs_of(flintd, "work", inv) == [1, 2, 3]
    # never delivered again: the next message is answered, nothing is pending
    nats_server.publish("orders.new", {"order": 3}, "m-3")
    wait_for(lambda: len(nats_server.messages("FLINT_orders-done")) == 2,
             what="the next response")
    wait_for(lambda: (nats_server.consumer_info("ORDERS", "mqt_orders") or {}).get(
        "ackPending") == 0, what="nothing pending")
    assert runs_of(flintd, "work", inv) == [1, 2, 3]
    # its failed attempts are in its history, as the builtin connector's
    r = flintd.api("GET", f"/v1/invocations/{inv}")
    assert r.status == 200, r.text
    assert r.json()["status"] == "failed"
    assert [a["status"] for a in r.json()["attempts"]] == [500, 500, 500]


def test_a_nats_trigger_without_nats_is_refused_and_says_why(flintd, tmp_path):
    """A flintd started without --nats can never run a nats trigger: its
    creation (and an update to connector nats) is refused with 400 and
    why, and nothing is stored; a builtin trigger is unaffected."""
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    r = flintd.cli("mqt", "create", "--name", "t", "--topic", "in", "--function", "work",
                   "--connector", "nats")
    assert r.returncode != 0
    assert "connector 'nats' is not available in this flintd" in r.stderr, r.stderr
    assert "--nats" in r.stderr
    r = flintd.api("POST", "/v1/messagequeuetriggers", json.dumps(
        {"name": "t", "spec": {"topic": "in", "target": {"function": "work"},
                               "connector": "nats"}}), {"Content-Type": "application/json"})
    assert r.status == 400, r.text
    assert r.json()["error"]["code"] == "bad_spec"
    assert "spec.connector" in r.json()["error"]["message"]
    assert flintd.api("GET", "/v1/messagequeuetriggers/t").status == 404
    # a builtin one is taken, and cannot be turned into a nats one
    flintd.cli("mqt", "create", "--name", "b", "--topic", "in", "--function", "work",
               check=True)
    r = flintd.cli("mqt", "update", "--name", "b", "--connector", "nats")
    assert r.returncode != 0 and "not available" in r.stderr, r.stderr
    assert mqt(flintd, "b")["spec"].get("connector", "builtin") == "builtin"


def test_a_stored_nats_trigger_in_a_flintd_restarted_without_nats_says_why(
        nats_flintd, nats_server, tmp_path):
    """A nats trigger made while flintd had --nats is kept when flintd
    starts again without it (nothing the user declared is lost), shown
    failed with why, and runs again once --nats is back."""
    flintd = nats_flintd
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    create(flintd, "t", "kept.in", "work", "--create-stream")
    wait_running(flintd, "t")
    flintd.stop()
    with_nats = flintd.extra_args
    flintd.extra_args = []
    flintd.start()
    st = wait_for(lambda: mqt(flintd, "t")["status"].get("error") and mqt(flintd, "t")["status"],
                  what="the reason")
    assert st["state"] == "failed"
    assert "connector 'nats' is not available in this flintd" in st["error"]
    flintd.stop()
    flintd.extra_args = with_nats
    flintd.start()
    wait_running(flintd, "t")


def test_dead_letters_are_listed_purged_and_redriven(nats_flintd, nats_server, tmp_path):
    """Without an error subject, a poison message is parked in FLINT_DEAD
    (one subject per letter) and is a dead letter as the builtin
    connector's: `flint dlq list` (and --function) shows it, the trigger's
    consumer counts it; a purge removes it from FLINT_DEAD; a redrive
    publishes it again to the trigger's subject, delivered with the same
    invocation id and message id, its attempts going on in its history."""
    flintd = nats_flintd
    d = deploy(flintd, tmp_path, """
---
kind: function
name: broken
spec: {environment: python, code: broken.py, entrypoint: broken.main, retry: {maxAttempts: 1}}
""", {"broken.py": BROKEN_PY, "fixed.py": FIXED_PY})
    create(flintd, "jobs", "jobs.in", "broken", "--resp-topic", "jobs-done", "--max-retries",
           "1", "--backoff", "10ms", "--max-backoff", "20ms", "--create-stream")
    wait_running(flintd, "jobs")
    for i in (1, 2, 3):
        nats_server.publish("jobs.in", f"job-{i}", f"j-{i}")

    def dead_rows(*args):
        r = flintd.cli("dlq", "list", *args, check=True)
        return [line.split() for line in r.stdout.splitlines()[1:] if "broken" in line]
    rows = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(dead_rows()),
                    what="three dead letters")
    assert all(row[1:5] == ["broken", "messagequeuetrigger/jobs", "dead", "2"] for row in rows)
    assert sorted(dead_rows("--function", "broken")) == sorted(rows)
    assert dead_rows("--function", "someone-else") == []
    # invocation ids are UUIDv7s of the publish time: in the order published
    inv1, inv2, inv3 = sorted(row[0] for row in rows)
    for inv in (inv1, inv2, inv3):
        assert runs_of(flintd, "broken", inv) == [1, 2]
    wait_for(lambda: mqt(flintd, "jobs")["status"]["consumer"].get("dead") == 3,
             what="the consumer counts them")
    parked = nats_server.messages("FLINT_DEAD")
    assert sorted(m["subject"] for m in parked) == sorted(
        f"flint.dead.mqt_jobs.{m['headers']['Flint-Seq']}" for m in parked)
    assert sorted(header(m, "Flint-Message-Id") for m in parked) == ["j-1", "j-2", "j-3"]

    # shown with the message's body and why, read from FLINT_DEAD
    dead = json.loads(flintd.cli("-o", "json", "dlq", "get", inv2, check=True).stdout)
    assert dead["status"] == "dead" and dead["trigger"] == "messagequeuetrigger/jobs", dead
    assert dead["request"]["body"] == "job-2", dead
    assert "attempt 2" in dead["reason"], dead

    # purged: gone from FLINT_DEAD and from the list
    r = flintd.cli("dlq", "purge", inv3, check=True)
    assert inv3 in r.stdout
    assert sorted(header(m, "Flint-Message-Id") for m in nats_server.messages("FLINT_DEAD")) \
        == ["j-1", "j-2"]
    assert sorted(row[0] for row in dead_rows()) == [inv1, inv2]
    r = flintd.cli("dlq", "redrive", inv3)
    assert r.returncode != 0, r.stdout
    # an async call's dead letter of the same function, in the store
    r = flintd.cli("fn", "invoke", "--name", "broken", "--async", "--body", "async-1",
                   check=True)
    async_id = r.stdout.strip()
    wait_for(lambda: async_id in [row[0] for row in dead_rows("--function", "broken")],
             what="the async dead letter")

    # fixed, then one redriven: the same invocation, numbering going on
    flintd.cli("fn", "update", "--name", "broken", "--code", str(d / "fixed.py"), "--entrypoint",
               "fixed.main", check=True)
    r = flintd.cli("dlq", "redrive", inv1, check=True)
    assert r.stdout == f"redriven {inv1}\n"
    done = wait_for(lambda: nats_server.messages("FLINT_jobs-done") or None,
                    what="the response")
    assert done[0]["data"] == "fixed job-1"
    assert header(done[0], "X-Flint-Invocation-Id") == inv1
    assert header(done[0], "X-Flint-Message-Id") == "j-1"

    def succeeded(inv):
        r = flintd.api("GET", f"/v1/invocations/{inv}")
        return r.json() if r.json()["status"] == "succeeded" else None
    got = wait_for(lambda: succeeded(inv1), what="the invocation succeeded")
    assert [(a["attempt"], a["status"]) for a in got["attempts"]] == [(1, 500), (2, 500),
                                                                       (3, 200)]
    assert runs_of(flintd, "broken", inv1) == [1, 2, 3]
    # redriving it again is refused: it is not dead any more
    assert flintd.cli("dlq", "redrive", inv1).returncode != 0

    # the rest of the function's, the trigger's and the async one at once
    r = flintd.cli("-o", "json", "dlq", "redrive", "--function", "broken", check=True)
    assert sorted(json.loads(r.stdout)["redriven"]) == sorted([inv2, async_id])
    wait_for(lambda: succeeded(inv2), what="the second letter succeeded")
    wait_for(lambda: succeeded(async_id), what="the async call succeeded")
    assert runs_of(flintd, "broken", inv2) == [1, 2, 3]
    assert nats_server.messages("FLINT_DEAD") == []
    assert dead_rows() == []
    wait_for(lambda: mqt(flintd, "jobs")["status"]["consumer"].get("dead") == 0,
             what="the consumer counts none")
    assert sorted(m["data"] for m in nats_server.messages("FLINT_jobs-done")) == [
        "fixed job-1", "fixed job-2"]


def test_a_call_longer_than_ack_wait_is_not_redelivered(nats_flintd, nats_server, tmp_path):
    flintd = nats_flintd
    deploy(flintd, tmp_path, mq_function("slow"), {"mq.py": MQ_PY})
    create(flintd, "slow", "slow", "slow", "--resp-topic", "slow-done", "--ack-wait", "1s",
           "--concurrency", "2", "--create-stream")
    wait_running(flintd, "slow")
    nats_server.publish("slow", {"sleep": 4})
    done = wait_for(lambda: nats_server.messages("FLINT_slow-done") or None, timeout=60,
                    what="the response")
    inv = header(done[0], "X-Flint-Invocation-Id")
    assert runs_of(flintd, "slow", inv) == [1]
    assert len(nats_server.messages("FLINT_slow-done")) == 1
    info = nats_server.consumer_info("FLINT_slow", "mqt_slow")
    assert info["redelivered"] == 0 and info["ackPending"] == 0


def test_concurrency_one_keeps_order_and_n_runs_n_at_once(nats_flintd, nats_server, tmp_path):
    flintd = nats_flintd
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    create(flintd, "seq", "seq", "work", "--resp-topic", "seq-done", "--create-stream")
    wait_running(flintd, "seq")
    for i in range(6):
        nats_server.publish("seq", {"i": i, "sleep": 0.05 * (i % 2)})
    done = wait_for(lambda: len(nats_server.messages("FLINT_seq-done")) == 6 and
                    nats_server.messages("FLINT_seq-done"), what="six responses")
    assert [json.loads(m["data"])["plan"]["i"] for m in done] == list(range(6))

    create(flintd, "par", "par", "work", "--resp-topic", "par-done", "--concurrency", "3",
           "--create-stream")
    wait_running(flintd, "par")
    for i in range(5):
        nats_server.publish("par", {"i": i, "sleep": 3})
    inflight = []

    def three_at_once():
        n = mqt(flintd, "par")["status"]["inflight"]
        inflight.append(n)
        return n == 3
    wait_for(three_at_once, timeout=60, what="three in flight")
    wait_for(lambda: len(nats_server.messages("FLINT_par-done")) == 5, timeout=60,
             what="five responses")
    assert max(inflight) == 3


def test_updates_take_effect_live_and_delete_removes_the_consumer(nats_flintd, nats_server,
                                                                  tmp_path):
    flintd = nats_flintd
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    nats_server.add_stream("IN", "in")
    create(flintd, "t", "in", "work", "--resp-topic", "out", "--paused", "--create-stream")
    wait_for(lambda: state_of(flintd, "t") == "paused", what="paused")
    nats_server.publish("in", {"i": 1})
    nats_server.publish("in", {"i": 2})
    wait_for(lambda: mqt(flintd, "t")["status"]["consumer"].get("lag") == 2,
             what="two messages waiting")
    assert runs(flintd, "work") == []
    flintd.cli("mqt", "update", "--name", "t", "--paused=false", check=True)
    wait_for(lambda: len(nats_server.messages("FLINT_out")) == 2,
             what="both answered once unpaused")
    # a new response subject, a new concurrency: the next message follows them
    flintd.cli("mqt", "update", "--name", "t", "--resp-topic", "out2", "--concurrency", "2",
               check=True)
    wait_for(lambda: mqt(flintd, "t")["spec"].get("respTopic") == "out2" and
             state_of(flintd, "t") == "running", what="updated")
    nats_server.publish("in", {"i": 3})
    wait_for(lambda: len(nats_server.messages("FLINT_out2")) == 1, what="the response in out2")
    assert len(nats_server.messages("FLINT_out")) == 2
    # deleted: its consumer goes from the server
    assert nats_server.consumers("IN") == ["mqt_t"]
    flintd.cli("mqt", "delete", "--name", "t", check=True)
    wait_for(lambda: nats_server.consumers("IN") == [], what="the consumer deleted")
    n = len(runs(flintd, "work"))
    nats_server.publish("in", {"i": 4})
    # a trigger made again on the subject takes every message the stream
    # keeps; the deleted one never ran the last
    create(flintd, "t2", "in", "work", "--resp-topic", "out3", "--create-stream")
    wait_for(lambda: len(nats_server.messages("FLINT_out3")) == 4,
             what="the new trigger answers all")
    assert len(runs(flintd, "work")) == n + 4


def test_without_nats_at_start_triggers_say_disconnected_then_recover(
        flintd_factory, nats_server, tmp_path):
    nats_server.stop()
    flintd = flintd_factory(extra_args=["--nats", nats_server.url])
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    create(flintd, "t", "later", "work", "--resp-topic", "later-done", "--create-stream")
    st = wait_for(lambda: state_of(flintd, "t") == "disconnected" and mqt(flintd, "t")["status"],
                  what="disconnected")
    assert nats_server.url in st["error"], st
    assert "cannot connect" in st["error"] or "disconnected" in st["error"], st
    assert flintd.api("GET", "/healthz").status == 200
    nats_server.start()
    wait_running(flintd, "t", timeout=60)
    nats_server.publish("later", {"i": 1})
    wait_for(lambda: len(nats_server.messages("FLINT_later-done")) == 1, what="the response")


def test_a_restarted_nats_server_loses_nothing(nats_flintd, nats_server, tmp_path):
    flintd = nats_flintd
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    create(flintd, "t", "flow", "work", "--resp-topic", "flow-done", "--concurrency", "4",
           "--create-stream")
    wait_running(flintd, "t")
    nats_server.tool("pubn", "flow", "100", "a")
    wait_for(lambda: len(nats_server.messages("FLINT_flow-done")) >= 20, timeout=60,
             what="some answered")
    nats_server.restart()
    wait_for(lambda: state_of(flintd, "t") == "running", timeout=60, what="running again")
    nats_server.tool("pubn", "flow", "100", "b")

    def answered():
        ids = {header(m, "X-Flint-Message-Id") for m in nats_server.messages("FLINT_flow-done")}
        return ids if len(ids) >= 200 else None
    ids = wait_for(answered, timeout=120, interval=0.5, what="all 200 answered")
    assert ids == {f"a{i}" for i in range(100)} | {f"b{i}" for i in range(100)}


def test_kill_twice_and_restart_nats_under_10000_messages_loses_none(
        flintd_factory, nats_server, tmp_path):
    flintd = flintd_factory(extra_args=["--nats", nats_server.url])
    deploy(flintd, tmp_path, """
---
kind: function
name: echo
spec: {environment: c, code: echo.c, entrypoint: handler, concurrency: 4}
""", {"echo.c": ECHO_C}, envs=C_ENV)
    create(flintd, "load", "load", "echo", "--resp-topic", "load-done", "--concurrency", "16",
           "--ack-wait", "2s", "--max-retries", "5", "--backoff", "10ms", "--max-backoff",
           "100ms", "--create-stream")
    wait_running(flintd, "load")
    total = 10000
    result = {}

    def publisher():
        result["run"] = nats_server.tool("pubn", "load", str(total), "m", check=False,
                                         timeout=600)
    pub = threading.Thread(target=publisher)
    pub.start()
    try:
        def answered_count():
            info = nats_server.tool("stream-info", "FLINT_load-done", check=False)
            return json.loads(info.stdout)["messages"] if info.returncode == 0 else 0
        for kill_at in (total // 4, total * 2 // 3):
            wait_for(lambda: answered_count() >= kill_at, timeout=300, interval=0.2,
                     what=f"{kill_at} answered")
            flintd.kill()
            if kill_at == total // 4:
                nats_server.restart()  # with flintd down: it reconnects when it comes
            flintd.start()
        # and the server restarted under a running flintd too
        wait_for(lambda: answered_count() >= total * 5 // 6, timeout=300, interval=0.2,
                 what="most answered")
        nats_server.restart()
    finally:
        pub.join(timeout=620)
    assert result["run"].returncode == 0, result["run"].stderr

    # every message's response, at least once; a duplicate carries the
    # invocation id of the first
    def answered():
        by_msg = {}
        for m in nats_server.messages("FLINT_load-done"):
            by_msg.setdefault(header(m, "X-Flint-Message-Id"), set()).add(
                header(m, "X-Flint-Invocation-Id"))
        return by_msg if len(by_msg) >= total else None
    by_msg = wait_for(answered, timeout=300, interval=2, what="every message answered")
    assert set(by_msg) == {f"m{i}" for i in range(total)}
    assert all(len(ids) == 1 for ids in by_msg.values()), \
        [m for m, ids in by_msg.items() if len(ids) > 1][:5]
    for m in nats_server.messages("FLINT_load-done")[:100]:
        assert m["data"] == header(m, "X-Flint-Message-Id")


def test_the_example_applies_and_answers(nats_flintd, nats_server):
    flintd = nats_flintd
    example = os.path.join(ROOT, "examples", "nats")
    flintd.cli("apply", "-f", example, check=True)
    wait_running(flintd, "orders", timeout=60)
    nats_server.publish("orders.new", {"id": 1, "qty": 2}, "order-1")
    nats_server.publish("orders.new", {"id": 2, "qty": 0}, "order-2")
    done = wait_for(lambda: nats_server.messages("FLINT_orders_done") or None, timeout=60,
                    what="the answer")
    assert json.loads(done[0]["data"]) == {"id": 1, "accepted": True}
    failed = wait_for(lambda: nats_server.messages("FLINT_orders_failed") or None, timeout=60,
                      what="the failure")
    assert header(failed[0], "X-Flint-Attempts") == "3"
    assert "422" in header(failed[0], "X-Flint-Error")


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    made with openssl for this test only."""
    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=flint test CA")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", f"/CN=flint test {name}")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {n: str(d / n) for n in ("ca.pem", "server.pem", "server.key", "client.pem",
                                     "client.key")}


def refused_one_never_runs(flintd, server, home, prefix, running, why):
    """flintd, which server refuses, gets a trigger on <prefix>.in: it
    shows disconnected with the server's address and why (the server's
    word, once the connector has met it: "connecting" comes first) in its
    reason, and never takes a message, which the flintd with trigger
    `running` answers (the second response in FLINT_<prefix>-done).
    Returns its status."""
    home.mkdir()
    deploy(flintd, home, mq_function("work"), {"mq.py": MQ_PY})
    create(flintd, "refused", f"{prefix}.in", "work", "--resp-topic", f"{prefix}-done")

    def refused():
        st = mqt(flintd, "refused")["status"]
        return st if st.get("state") == "disconnected" and why in st.get("error", "") else None
    st = wait_for(refused, what=f"the refused trigger to show it is disconnected: {why}")
    assert server.url in st["error"], st
    server.publish(f"{prefix}.in", {"order": 2}, f"{prefix}-2")
    wait_for(lambda: len(server.messages(f"FLINT_{prefix}-done")) == 2,
             what="the next response")
    assert state_of(flintd, "refused") == "disconnected"
    assert server.consumers(prefix.upper()) == [f"mqt_{running}"]
    return st


def test_tls_with_client_certificates(flintd_factory, tmp_path):
    """A NATS server that speaks only TLS and wants a client certificate:
    flintd with --nats-tls-ca/--nats-tls-cert/--nats-tls-key delivers through
    it; a flintd without them never gets in, and says so."""
    from nats_util import NatsServer, nats_server_binary
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed (scripts/install-deps installs it)")
    certs_dir = tmp_path / "certs"
    certs_dir.mkdir()
    c = make_certs(certs_dir)
    server = NatsServer(tmp_path, extra_args=[
        "--tlsverify", "--tlscert", c["server.pem"], "--tlskey", c["server.key"],
        "--tlscacert", c["ca.pem"]], tool_env={
        "NATS_TOOL_TLS_CA": c["ca.pem"], "NATS_TOOL_TLS_CERT": c["client.pem"],
        "NATS_TOOL_TLS_KEY": c["client.key"]})
    try:
        flintd = flintd_factory(extra_args=[
            "--nats", server.url, "--nats-tls-ca", c["ca.pem"], "--nats-tls-cert",
            c["client.pem"], "--nats-tls-key", c["client.key"]])
        deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
        server.add_stream("TLS", "tls.>")
        create(flintd, "secure", "tls.in", "work", "--resp-topic", "tls-done",
               "--create-stream")
        wait_running(flintd, "secure")
        server.publish("tls.in", {"order": 1}, "t-1")
        done = wait_for(lambda: server.messages("FLINT_tls-done") or None, what="a response")
        assert json.loads(done[0]["data"])["plan"] == {"order": 1}

        # without the client certificate and CA: refused by the server,
        # the trigger shows why and never runs
        plain = flintd_factory("plain-flintd", extra_args=["--nats", server.url])
        refused_one_never_runs(plain, server, tmp_path / "plain", "tls", "secure", "closed")
    finally:
        server.close()


def test_credentials_of_an_operator_mode_server(flintd_factory, tmp_path):
    """A nats-server in operator (JWT) mode, trusting an operator, its
    system account and one account with JetStream (resolver MEMORY,
    preloaded): flintd with --nats-creds of a user of that account
    delivers through it; one with the credentials of a user of an account
    the server does not know is refused, and its trigger shows
    disconnected with the server's word."""
    from nats_util import NatsServer, nats_server_binary
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed (scripts/install-deps installs it)")
    from nats_jwt import Operator
    op = Operator()
    conf = op.server_config(tmp_path / "operator.conf")
    good = op.user_creds(tmp_path / "flintd.creds")
    stranger = op.user_creds(tmp_path / "stranger.creds", stranger=True)
    server = NatsServer(tmp_path, extra_args=["-c", conf], tool_env={"NATS_TOOL_CREDS": good})
    try:
        # a user of an account the server does not know gets nothing
        r = server.tool("stream-info", "X", check=False, env={"NATS_TOOL_CREDS": stranger})
        assert r.returncode != 0 and "Authorization Violation" in r.stderr, r.stderr

        flintd = flintd_factory(extra_args=["--nats", server.url, "--nats-creds", good])
        deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
        server.add_stream("JWT", "jwt.>")
        create(flintd, "signed", "jwt.in", "work", "--resp-topic", "jwt-done",
               "--create-stream")
        wait_running(flintd, "signed")
        assert server.consumers("JWT") == ["mqt_signed"]
        server.publish("jwt.in", {"order": 1}, "j-1")
        done = wait_for(lambda: server.messages("FLINT_jwt-done") or None, what="a response")
        assert json.loads(done[0]["data"])["plan"] == {"order": 1}

        other = flintd_factory("stranger-flintd",
                               extra_args=["--nats", server.url, "--nats-creds", stranger])
        refused_one_never_runs(other, server, tmp_path / "stranger", "jwt", "signed",
                               "Authorization Violation")
    finally:
        server.close()


def test_a_nats_trigger_runs_a_workflow(nats_flintd, nats_server, tmp_path):
    """A NATS trigger may target a workflow as a builtin one may: the
    subject's message is the invocation's request, its output the
    response published to the response subject."""
    from test_workflow_run import deploy_workflows
    flintd = nats_flintd
    shout = {"output": "Shout", "tasks": {"Shout": {
        "run": "step", "inputs": {"body": {"add": "{$.Invocation.Inputs.default.word}"}}}}}
    deploy_workflows(flintd, tmp_path, shout=shout)
    flintd.cli("mqt", "create", "--name", "shouts", "--topic", "words.in", "--workflow", "shout",
               "--connector", "nats", "--resp-topic", "words-shouted", "--create-stream",
               check=True)
    wait_running(flintd, "shouts")
    nats_server.publish("words.in", {"word": "hello"}, "w-1",
                        [("Content-Type", "application/json")])
    done = wait_for(lambda: nats_server.messages("FLINT_words-shouted") or None, timeout=60,
                    what="the workflow's output")
    assert json.loads(done[0]["data"])["seen"] == ["hello"]
    assert header(done[0], "X-Flint-Message-Id") == "w-1"
    runs = json.loads(flintd.cli("-o", "json", "inv", "list", "--workflow", "shout",
                                 check=True).stdout)["items"]
    assert [r["status"] for r in runs] == ["succeeded"], runs


def test_builtin_dead_letters_in_a_flintd_with_nats_stay_the_stores(
        nats_flintd, nats_server, tmp_path):
    """In a flintd with --nats, a builtin trigger's dead letter is still
    the store's: shown with its body, purged and redriven there (the MQ
    module passes it on to the async module)."""
    from test_mqtrigger import publish
    flintd = nats_flintd
    d = deploy(flintd, tmp_path, """
---
kind: function
name: broken
spec: {environment: python, code: broken.py, entrypoint: broken.main}
""", {"broken.py": BROKEN_PY, "fixed.py": FIXED_PY})
    for name in ("one", "two"):
        flintd.cli("mqt", "create", "--name", name, "--topic", name, "--function", "broken",
                   "--resp-topic", f"{name}-done", check=True)
        wait_running(flintd, name)
        publish(flintd, name, f"{name}-1")

    def dead():
        r = flintd.cli("dlq", "list", check=True)
        return {line.split()[2]: line.split()[0] for line in r.stdout.splitlines()[1:]
                if "broken" in line}
    letters = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(dead()),
                       what="two dead letters")
    one, two = letters["messagequeuetrigger/one"], letters["messagequeuetrigger/two"]
    shown = json.loads(flintd.cli("-o", "json", "dlq", "get", one, check=True).stdout)
    assert shown["request"]["body"] == "one-1", shown
    flintd.cli("dlq", "purge", one, check=True)
    assert set(dead()) == {"messagequeuetrigger/two"}
    flintd.cli("fn", "update", "--name", "broken", "--code", str(d / "fixed.py"), "--entrypoint",
               "fixed.main", check=True)
    r = flintd.cli("dlq", "redrive", two, check=True)
    assert r.stdout == f"redriven {two}\n"
    wait_for(lambda: flintd.api("GET", f"/v1/invocations/{two}").json()["status"] ==
             "succeeded", what="the redriven letter succeeded")
    assert dead() == {}
    assert nats_server.messages("FLINT_DEAD") == []
