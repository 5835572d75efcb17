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
import threading
import time

import pytest

from conftest import deploy, wait_for
from test_async import C_ENV, runs, runs_of
from test_mqtrigger import ECHO_C, MQ_PY, mq_function


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


def test_a_nats_trigger_without_nats_says_why(flintd, tmp_path):
    deploy(flintd, tmp_path, mq_function("work"), {"mq.py": MQ_PY})
    create(flintd, "t", "in", "work")
    st = wait_for(lambda: mqt(flintd, "t")["status"].get("error") and mqt(flintd, "t")["status"],
                  what="the reason")
    assert st["state"] == "failed"
    assert "connector 'nats' is not available in this flintd" in st["error"]
    assert "--nats" in st["error"]
