"""Async invocations, retries and dead letters through the real flintd, mostly
through the flint CLI (fn invoke --async, inv, dlq), with real runtimes in the
real sandbox.

How runs are observed. A sandboxed function cannot reach the host's loopback
(docs/security.md), so it cannot report to a server of the test. Instead every
function of this file writes one line per run to its output,

    run <X-Flint-Invocation-Id> <X-Flint-Attempt>

which flintd keeps in the function's log (GET /v1/functions/F/logs), with the
time flintd read it. A function decides what to answer from the request body
(replayed on every attempt) and X-Flint-Attempt, so "fail twice, then
succeed" needs no state of its own. Callbacks come from flintd itself, on the
host, so they go to an HTTP server of the test on 127.0.0.1.

Nothing here sleeps and then samples: every wait is for a condition, with a
deadline far above what a slow machine needs.
"""
import datetime
import http.client
import json
import re
import socket
import threading
import time
from collections import Counter

import pytest

from conftest import (RecordingServer, deploy, http as http_call, inv_get, list_all, log_lines,
                      wait_for)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENDED = {"succeeded", "failed", "dead", "canceled"}
# the order statuses may be seen in while an invocation runs (retrying and
# running alternate, so they share a rank)
RANK = {"queued": 0, "running": 1, "retrying": 1, "succeeded": 2, "failed": 2, "dead": 2,
        "canceled": 2}

# Answers what the body asks: {"fail": [S1, S2...]} answers S1 to attempt 1,
# S2 to attempt 2..., then "status" (200); "sleep" seconds first.
BEHAVE_PY = """
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
    status = fail[attempt - 1] if 0 < attempt <= len(fail) else plan.get("status", 200)
    out = {"invocation": inv, "attempt": attempt, "trigger": h.get("x-flint-trigger"),
           "body": plan}
    return json.dumps(out), status, {"Content-Type": "application/json"}
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
    return "fixed " + h.get("x-flint-attempt", "?")
"""

# The load test's function: as fast as Flint runs anything.
COUNT_C = r"""
#include <flint/fn.h>
#include <stdio.h>

int handler(const struct flint_request *req, struct flint_response *resp)
{
    const char *id = flint_request_header(req, "X-Flint-Invocation-Id");
    const char *attempt = flint_request_header(req, "X-Flint-Attempt");
    fprintf(stderr, "run %s %s\n", id ? id : "-", attempt ? attempt : "-");
    flint_response_printf(resp, "%s %s\n", id ? id : "-", attempt ? attempt : "-");
    return 0;
}
"""

C_ENV = """
kind: environment
name: c
spec: {runtime: c, poolsize: 1}
"""


def behave(name, retry="{maxAttempts: 5, backoff: 10ms, maxBackoff: 20ms}", concurrency=5):
    return f"""
---
kind: function
name: {name}
spec: {{environment: python, code: behave.py, entrypoint: behave.main,
        concurrency: {concurrency}, retry: {retry}}}
"""


def invoke_async(flintd, fn, plan=None, *extra):
    """flint fn invoke --async: the id it prints, alone on stdout."""
    r = flintd.cli("fn", "invoke", "--name", fn, "--async", "--method", "POST", "--body",
                   json.dumps(plan if plan is not None else {}), *extra, check=True)
    inv_id = r.stdout.strip()
    assert UUID.match(inv_id), r.stdout
    return inv_id


def wait_ended(flintd, inv_id, timeout=120, seen=None):
    """Poll `flint inv get` until the invocation has ended; every status seen
    on the way is appended to seen (with the invocation as it was)."""
    def ended():
        inv = inv_get(flintd, inv_id)
        if seen is not None:
            seen.append(inv)
        return inv if inv["status"] in ENDED else None
    return wait_for(ended, timeout=timeout, what=f"invocation {inv_id} to end")


def runs(flintd, fn):
    """[(ts, invocation id, attempt)] of every run the function's log holds."""
    out = []
    for ts, line in log_lines(flintd, fn):
        words = line.split()
        if len(words) == 3 and words[0] == "run":
            out.append((ts, words[1], int(words[2])))
    return out


def runs_of(flintd, fn, inv_id):
    return [attempt for _, i, attempt in runs(flintd, fn) if i == inv_id]


def ms(ts):
    """Milliseconds since the epoch of an RFC 3339 time with milliseconds."""
    return int(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


class CallbackServer(RecordingServer):
    """Where flintd posts outcomes: 500 to the first fail_first posts, then 200."""

    def __init__(self, fail_first=0):
        def answer(method, path, body):
            return (500 if len(self.requests) <= fail_first else 200), b""
        super().__init__(answer)

    @property
    def posts(self):
        with self.lock:
            return [(path, headers, body) for _, path, headers, body in self.requests]

    def bodies(self, inv_id):
        return [json.loads(b) for _, _, b in self.posts
                if b and json.loads(b).get("invocation") == inv_id]


@pytest.fixture
def callback_server(closer):
    return lambda fail_first=0: closer(CallbackServer(fail_first))


# ---- specs ----

def test_functions_and_routes_take_the_retry_and_async_fields(flintd, tmp_path):
    deploy(flintd, tmp_path, behave("f"), {"behave.py": BEHAVE_PY})
    fn = json.loads(flintd.cli("-o", "json", "fn", "get", "--name", "f", check=True).stdout)
    assert fn["spec"]["retry"] == {"maxAttempts": 5, "backoff": "10ms", "maxBackoff": "20ms"}
    flintd.cli("fn", "update", "--name", "f", "--retry-attempts", "7", "--retry-max-backoff", "1m",
               check=True)
    fn = json.loads(flintd.cli("-o", "json", "fn", "get", "--name", "f").stdout)
    assert fn["spec"]["retry"] == {"maxAttempts": 7, "backoff": "10ms", "maxBackoff": "1m"}
    r = flintd.cli("fn", "update", "--name", "f", "--retry-backoff", "2m")
    assert r.returncode == 1
    assert "spec.retry.maxBackoff: 1m is below the backoff (2m)" in r.stderr
    r = flintd.cli("fn", "update", "--name", "f", "--retry-attempts", "0")
    assert r.returncode == 1 and "spec.retry.maxAttempts: must be a whole number from 1 to 100" \
        in r.stderr

    flintd.cli("route", "create", "--name", "jobs", "--url", "/jobs", "--function", "f",
               "--async", "--callback", "http://127.0.0.1:9/done", "--retry-attempts", "2",
               check=True)
    route = json.loads(flintd.cli("-o", "json", "route", "get", "--name", "jobs").stdout)
    assert route["spec"] == {"path": "/jobs", "target": {"function": "f"}, "async": True,
                             "callback": "http://127.0.0.1:9/done", "retry": {"maxAttempts": 2}}
    # a switch is turned off with =false, and takes nothing after it
    flintd.cli("route", "update", "--async=false", "--name", "jobs", "--allow-async", check=True)
    route = json.loads(flintd.cli("-o", "json", "route", "get", "--name", "jobs").stdout)
    assert route["spec"]["async"] is False and route["spec"]["allowAsync"] is True
    for args, message in [
        (["--callback", "https://127.0.0.1:9/x"], "only http:// URLs are supported, not https://"),
        (["--callback", "http://u:p@127.0.0.1/x"], "spec.callback: must not hold a user name"),
        (["--callback", "127.0.0.1:9/x"], "spec.callback: must start with http://"),
        (["--retry-backoff", "10m"], "spec.retry.maxBackoff: 5m is below the backoff (10m)"),
    ]:
        r = flintd.cli("route", "create", "--name", "bad", "--url", "/bad", "--function", "f",
                       *args)
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
        assert "HTTP 400" in r.stderr


# ---- accepting and running ----

def test_an_async_call_is_accepted_then_runs_to_its_result(flintd, tmp_path):
    deploy(flintd, tmp_path, behave("echo"), {"behave.py": BEHAVE_PY})
    # the API: 202, the id, where to look
    r = flintd.api("POST", "/v1/functions/echo/invoke", json.dumps({"n": 1}),
                   headers={"Prefer": "respond-async"})
    assert r.status == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "queued" and UUID.match(accepted["invocation"])
    assert r.headers["Location"] == f"/v1/invocations/{accepted['invocation']}"
    assert r.headers.get("Preference-Applied") == "respond-async"
    # the CLI prints the id alone; -o json the whole answer
    inv_id = invoke_async(flintd, "echo", {"n": 2})
    out = flintd.cli("-o", "json", "fn", "invoke", "--name", "echo", "--async", "--body", "{}",
                     check=True)
    assert json.loads(out.stdout)["status"] == "queued"
    seen = []
    inv = wait_ended(flintd, inv_id, seen=seen)
    assert inv["status"] == "succeeded", inv
    ranks = [RANK[s["status"]] for s in seen]
    assert ranks == sorted(ranks), [s["status"] for s in seen]
    assert inv["id"] == inv_id and inv["function"] == "echo" and inv["trigger"] == "api"
    assert inv["request"]["method"] == "POST"
    assert [a["attempt"] for a in inv["attempts"]] == [1]
    assert inv["attempts"][0]["status"] == 200
    # the function saw who asked in X-Flint-Trigger: the invocation's trigger
    result = json.loads(inv["result"]["body"])
    assert result == {"invocation": inv_id, "attempt": 1, "trigger": "api", "body": {"n": 2}}
    assert inv["result"]["status"] == 200 and inv["result"]["bodyEncoding"] == "text"
    # the table form shows the same
    table = flintd.cli("inv", "get", inv_id, check=True).stdout
    assert f"id:        {inv_id}" in table and "status:    succeeded" in table
    assert "ATTEMPT" in table and '"attempt": 1' in table
    # and the list names it
    listed = flintd.cli("inv", "list", "--function", "echo", "--all", check=True).stdout
    assert inv_id in listed and listed.splitlines()[0].split() == \
        ["ID", "FUNCTION", "TRIGGER", "STATUS", "ATTEMPTS", "CREATED"]
    # an unknown function is refused at once, with the API's code
    r = flintd.cli("fn", "invoke", "--name", "nope", "--async", "--body", "")
    assert r.returncode == 1 and "HTTP 404" in r.stderr
    r = flintd.cli("inv", "get", "0193a0c4-0000-7000-8000-000000000000")
    assert r.returncode == 1 and "HTTP 404" in r.stderr


def test_a_flaky_function_succeeds_on_the_third_attempt_after_backoffs(flintd, tmp_path):
    deploy(flintd, tmp_path, behave("flaky", retry="{maxAttempts: 5, backoff: 1s, maxBackoff: 2s}"),
           {"behave.py": BEHAVE_PY})
    inv_id = invoke_async(flintd, "flaky", {"fail": [503, 503]})
    seen = []
    inv = wait_ended(flintd, inv_id, seen=seen)
    assert inv["status"] == "succeeded", inv
    attempts = inv["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["status"] for a in attempts] == [503, 503, 200]
    assert all(a.get("error") for a in attempts[:2])
    assert json.loads(inv["result"]["body"])["attempt"] == 3
    # every attempt carried the same invocation id and its own number
    wait_for(lambda: len(runs_of(flintd, "flaky", inv_id)) == 3, what="three runs logged")
    assert runs_of(flintd, "flaky", inv_id) == [1, 2, 3]
    # the attempts come one after the other, each after the one before ended
    for before, after in zip(attempts, attempts[1:]):
        assert ms(after["startedAt"]) >= ms(before["startedAt"]) + before["durationMs"] - 1
    # whenever it was seen retrying, the next attempt was due after the failed one
    # ended, and did not start before it was due
    for s in seen:
        if s["status"] != "retrying" or not s.get("nextAttemptAt"):
            continue
        n = len(s["attempts"])
        failed = s["attempts"][-1]
        due = ms(s["nextAttemptAt"])
        assert due >= ms(failed["startedAt"]) + failed["durationMs"] - 1, s
        assert ms(attempts[n]["startedAt"]) >= due - 1, (s, attempts)
    assert inv["retry"] == {"maxAttempts": 5, "backoff": "1s", "maxBackoff": "2s"}


def test_a_4xx_answer_fails_at_once_and_is_not_retried(flintd, tmp_path):
    deploy(flintd, tmp_path, behave("picky"), {"behave.py": BEHAVE_PY})
    inv_id = invoke_async(flintd, "picky", {"status": 400})
    inv = wait_ended(flintd, inv_id)
    assert inv["status"] == "failed", inv
    assert [(a["attempt"], a["status"]) for a in inv["attempts"]] == [(1, 400)]
    assert inv["result"]["status"] == 400
    # a 429 is retried like a 5xx
    inv_id = invoke_async(flintd, "picky", {"fail": [429]})
    inv = wait_ended(flintd, inv_id)
    assert inv["status"] == "succeeded"
    assert [a["status"] for a in inv["attempts"]] == [429, 200]
    # failed ones are not dead letters
    r = flintd.cli("dlq", "list", "--function", "picky", check=True)
    assert inv_id not in r.stdout and len(r.stdout.splitlines()) == 1


def test_an_always_failing_function_is_a_dead_letter_until_redriven_after_a_fix(flintd, tmp_path):
    d = deploy(flintd, tmp_path, """
---
kind: function
name: broken
spec: {environment: python, code: broken.py, entrypoint: broken.main,
       retry: {maxAttempts: 3, backoff: 10ms, maxBackoff: 50ms}}
""", {"broken.py": BROKEN_PY, "fixed.py": FIXED_PY})
    inv_id = invoke_async(flintd, "broken", {"order": 42})
    inv = wait_ended(flintd, inv_id)
    assert inv["status"] == "dead", inv
    assert [(a["attempt"], a["status"]) for a in inv["attempts"]] == [(1, 500), (2, 500), (3, 500)]
    # listed with the dead letters, and shown with its request
    r = flintd.cli("dlq", "list", "--function", "broken", check=True)
    row = [line for line in r.stdout.splitlines() if inv_id in line]
    assert len(row) == 1 and row[0].split()[1:5] == ["broken", "api", "dead", "3"], r.stdout
    r = flintd.cli("dlq", "get", inv_id, check=True)
    assert "request:   POST /" in r.stdout and '{"order": 42}' in r.stdout
    dead = json.loads(flintd.cli("-o", "json", "dlq", "get", inv_id, check=True).stdout)
    assert json.loads(dead["request"]["body"]) == {"order": 42}
    # fix the function, then redrive: same id, history kept, numbering goes on
    flintd.cli("fn", "update", "--name", "broken", "--code", str(d / "fixed.py"), "--entrypoint",
               "fixed.main", check=True)
    r = flintd.cli("dlq", "redrive", inv_id, check=True)
    assert r.stdout == f"redriven {inv_id}\n"
    inv = wait_ended(flintd, inv_id)
    assert inv["status"] == "succeeded", inv
    assert inv["id"] == inv_id
    assert [(a["attempt"], a["status"]) for a in inv["attempts"]] == \
        [(1, 500), (2, 500), (3, 500), (4, 200)]
    assert inv["result"]["body"] == "fixed 4"
    wait_for(lambda: runs_of(flintd, "broken", inv_id) == [1, 2, 3, 4], what="four runs logged")
    r = flintd.cli("dlq", "list", "--function", "broken", check=True)
    assert inv_id not in r.stdout
    # redriving what is no dead letter is an error with the API's code
    r = flintd.cli("dlq", "redrive", inv_id)
    assert r.returncode == 1 and "HTTP 4" in r.stderr
    # many at once, and purge
    flintd.cli("fn", "update", "--name", "broken", "--code", str(d / "broken.py"),
               "--entrypoint", "broken.main", check=True)
    ids = [invoke_async(flintd, "broken", {"i": i}) for i in range(3)]
    for i in ids:
        assert wait_ended(flintd, i)["status"] == "dead"
    r = flintd.cli("dlq", "purge", "--function", "broken")
    assert r.returncode == 2 and "--yes" in r.stderr
    r = flintd.cli("dlq", "purge", ids[0], check=True)
    assert r.stdout == f"purged {ids[0]}\n"
    r = flintd.cli("dlq", "redrive", "--function", "broken", check=True)
    assert sorted(r.stdout.split()[1::2]) == sorted(ids[1:])
    for i in ids[1:]:
        assert wait_ended(flintd, i)["status"] == "dead"
    r = flintd.cli("dlq", "purge", "--all", "--yes", check=True)
    assert sorted(r.stdout.split()[1::2]) == sorted(ids[1:])
    assert flintd.cli("dlq", "list", check=True).stdout.splitlines()[1:] == []


def test_idempotency_keys_run_once_per_function(flintd, tmp_path):
    deploy(flintd, tmp_path, behave("once") + behave("other"), {"behave.py": BEHAVE_PY})
    first = invoke_async(flintd, "once", {"k": 1}, "--idempotency-key", "order-17")
    r = flintd.cli("fn", "invoke", "--name", "once", "--async", "--method", "POST", "--body",
                   "{}", "--idempotency-key", "order-17", check=True)
    assert r.stdout.strip() == first and "nothing new was queued" in r.stderr
    r = flintd.api("POST", "/v1/functions/once/invoke", "{}",
                   headers={"Prefer": "respond-async", "Idempotency-Key": "order-17"})
    assert r.status == 202 and r.json()["invocation"] == first and r.json()["duplicate"] is True
    # the same key for another function is another invocation
    other = invoke_async(flintd, "other", {}, "--idempotency-key", "order-17")
    assert other != first
    assert wait_ended(flintd, first)["status"] == "succeeded"
    assert wait_ended(flintd, other)["status"] == "succeeded"
    wait_for(lambda: runs_of(flintd, "other", other) == [1], what="the other's run logged")
    # ran once: the first request's body, one run
    assert runs_of(flintd, "once", first) == [1]
    assert json.loads(inv_get(flintd, first)["result"]["body"])["body"] == {"k": 1}
    ids = {i["id"] for i in list_all(flintd, function="once")}
    assert ids == {first}


def test_callbacks_are_posted_and_retried(flintd, tmp_path, callback_server):
    deploy(flintd, tmp_path, behave("cb"), {"behave.py": BEHAVE_PY})
    server = callback_server()
    inv_id = invoke_async(flintd, "cb", {"x": 1}, "--callback", server.url + "/done?tag=a")
    assert wait_ended(flintd, inv_id)["status"] == "succeeded"
    wait_for(lambda: inv_get(flintd, inv_id).get("callback", {}).get("status") == "delivered",
             what="the callback delivered")
    posts = [p for p in server.posts if p[0] == "/done?tag=a"]
    assert len(posts) == 1
    path, headers, body = posts[0]
    assert headers["X-Flint-Invocation-Id"] == inv_id
    sent = json.loads(body)
    assert sent["invocation"] == inv_id and sent["function"] == "cb"
    assert sent["status"] == "succeeded" and sent["result"]["status"] == 200
    assert json.loads(sent["result"]["body"])["body"] == {"x": 1}
    inv = inv_get(flintd, inv_id)
    assert inv["callback"]["url"] == server.url + "/done?tag=a"
    assert inv["callback"]["attempts"] == 1
    table = flintd.cli("inv", "get", inv_id, check=True).stdout
    assert f"callback:  {server.url}/done?tag=a: delivered (1 attempt)" in table

    # a callback server that fails the first time gets it again; a dead one is told too
    flaky = callback_server(fail_first=1)
    inv_id = invoke_async(flintd, "cb", {"status": 500}, "--callback", flaky.url + "/cb")
    assert wait_ended(flintd, inv_id)["status"] == "dead"
    wait_for(lambda: inv_get(flintd, inv_id).get("callback", {}).get("status") == "delivered",
             what="the callback delivered on its second attempt")
    bodies = flaky.bodies(inv_id)
    assert len(bodies) == 2 and all(b["status"] == "dead" for b in bodies)
    assert inv_get(flintd, inv_id)["callback"]["attempts"] == 2
    # a callback that is not http:// is refused when the call is made
    r = flintd.cli("fn", "invoke", "--name", "cb", "--async", "--body", "",
                   "--callback", "https://127.0.0.1:1/x")
    assert r.returncode == 1 and "HTTP 400" in r.stderr


def test_cancel_a_queued_a_running_and_a_retrying_invocation(flintd, tmp_path):
    # concurrency 1: one async attempt at a time, the others queue behind it
    deploy(flintd, tmp_path,
           behave("slow", concurrency=1) +
           behave("failing", retry="{maxAttempts: 100, backoff: 24h, maxBackoff: 24h}"),
           {"behave.py": BEHAVE_PY})
    running = invoke_async(flintd, "slow", {"sleep": 10})
    queued = invoke_async(flintd, "slow", {})
    wait_for(lambda: inv_get(flintd, running)["status"] == "running", what="the first running")
    assert inv_get(flintd, queued)["status"] == "queued"
    r = flintd.cli("inv", "cancel", queued, check=True)
    assert r.stdout == f"invocation {queued} canceled\n"
    inv = inv_get(flintd, queued)
    assert inv["status"] == "canceled" and inv["attempts"] == []
    r = flintd.cli("inv", "cancel", running, check=True)
    assert inv_get(flintd, running)["status"] == "canceled"
    # a retrying one: its next attempt is due in up to a day
    retrying = invoke_async(flintd, "failing", {"status": 503})
    wait_for(lambda: inv_get(flintd, retrying)["status"] == "retrying", what="it retrying")
    flintd.cli("inv", "cancel", retrying, check=True)
    inv = inv_get(flintd, retrying)
    assert inv["status"] == "canceled" and inv["nextAttemptAt"] is None
    # an ended invocation cannot be canceled; the slot is free for the next
    done = invoke_async(flintd, "slow", {})
    assert wait_ended(flintd, done)["status"] == "succeeded"
    r = flintd.cli("inv", "cancel", done)
    assert r.returncode == 1 and "HTTP 409" in r.stderr
    assert runs_of(flintd, "slow", queued) == []
    listed = list_all(flintd, status="canceled")
    assert {i["id"] for i in listed} == {queued, running, retrying}


def test_invocations_not_taken_yet_are_read_listed_and_canceled(flintd, tmp_path):
    # An accept writes the message alone; the history begins when a worker
    # takes it. One async attempt at a time, held by a sleeper: the others
    # wait untaken, and every read must still show them.
    deploy(flintd, tmp_path, behave("held", concurrency=1), {"behave.py": BEHAVE_PY})
    sleeper = invoke_async(flintd, "held", {"sleep": 60})
    wait_for(lambda: inv_get(flintd, sleeper)["status"] == "running", what="the sleeper running")
    waiting = []
    for n in range(5):
        r = flintd.api("POST", f"/v1/functions/held/invoke?n={n}", json.dumps({"n": n}),
                       headers={"Prefer": "respond-async", "X-Order": f"o-{n}",
                                "Idempotency-Key": f"key-{n}"})
        assert r.status == 202, r.text
        waiting.append(r.json()["invocation"])
    # get: queued, with its request, no attempt yet
    for n, inv_id in enumerate(waiting):
        inv = inv_get(flintd, inv_id)
        assert inv["status"] == "queued" and inv["attempts"] == [], inv
        assert inv["function"] == "held" and inv["trigger"] == "api"
        assert inv["request"]["method"] == "POST" and inv["request"]["query"] == f"n={n}"
        assert inv["request"]["headers"]["x-order"] == f"o-{n}"
        assert inv["retry"]["maxAttempts"] == 5 and inv["createdAt"]
    # not a dead letter: nothing to redrive or purge
    for verb in ("redrive", "purge"):
        r = flintd.cli("dlq", verb, waiting[0])
        assert r.returncode == 1 and "HTTP 409" in r.stderr, r.stderr
    # an idempotency key still names its first invocation
    r = flintd.api("POST", "/v1/functions/held/invoke", "{}",
                   headers={"Prefer": "respond-async", "Idempotency-Key": "key-2"})
    assert r.status == 202 and r.json() == {"invocation": waiting[2], "status": "queued",
                                            "duplicate": True}
    # list: by status and function, in pages that lose and repeat nothing
    queued = list_all(flintd, function="held", status="queued")
    assert [i["id"] for i in queued] == waiting
    assert all(i["attempts"] == 0 and i["trigger"] == "api" for i in queued)
    paged = list_all(flintd, function="held", limit=2)
    assert [i["id"] for i in paged] == [sleeper] + waiting
    assert [i["status"] for i in paged] == ["running"] + ["queued"] * 5
    assert list_all(flintd, status="running") == [paged[0]]
    assert list_all(flintd, function="other") == []
    assert list_all(flintd, status="succeeded", function="held") == []
    out = flintd.cli("inv", "list", "--function", "held", "--status", "queued", check=True).stdout
    assert all(i in out for i in waiting)
    # cancel one before any worker took it: it never runs
    r = flintd.cli("inv", "cancel", waiting[1], check=True)
    assert r.stdout == f"invocation {waiting[1]} canceled\n"
    inv = inv_get(flintd, waiting[1])
    assert inv["status"] == "canceled" and inv["attempts"] == []
    assert inv["request"]["headers"]["x-order"] == "o-1"
    r = flintd.cli("inv", "cancel", waiting[1])
    assert r.returncode == 1 and "HTTP 409" in r.stderr
    assert [i["id"] for i in list_all(flintd, function="held", status="queued")] == \
        [waiting[0]] + waiting[2:]
    # free the slot: the rest run, each once, the canceled one never
    flintd.cli("inv", "cancel", sleeper, check=True)
    for n, inv_id in enumerate(waiting):
        inv = wait_ended(flintd, inv_id)
        assert inv["status"] == ("canceled" if n == 1 else "succeeded"), inv
        if n != 1:
            assert [a["attempt"] for a in inv["attempts"]] == [1]
            assert inv["request"]["headers"]["x-order"] == f"o-{n}"
            assert inv["request"]["query"] == f"n={n}"
    assert runs_of(flintd, "held", waiting[1]) == []
    assert sorted(runs_of(flintd, "held", waiting[0])) == [1]
    statuses = {i["id"]: i["status"] for i in list_all(flintd, function="held")}
    assert statuses == {sleeper: "canceled", **{i: "canceled" if n == 1 else "succeeded"
                                                for n, i in enumerate(waiting)}}


def test_finished_invocations_are_swept_after_the_retention(flintd_factory, tmp_path):
    flintd = flintd_factory(extra_args=["--retention", "2s"])
    deploy(flintd, tmp_path, behave("brief"), {"behave.py": BEHAVE_PY})
    inv_id = invoke_async(flintd, "brief", {}, "--idempotency-key", "k")
    assert wait_ended(flintd, inv_id)["status"] == "succeeded"
    wait_for(lambda: flintd.cli("inv", "get", inv_id).returncode == 1, timeout=120,
             what="the invocation swept")
    r = flintd.cli("inv", "get", inv_id)
    assert "HTTP 404" in r.stderr
    assert inv_id not in flintd.cli("inv", "list", "--all", check=True).stdout
    # its idempotency key went with it: the same key is a new invocation
    again = invoke_async(flintd, "brief", {}, "--idempotency-key", "k")
    assert again != inv_id


def test_async_routes_and_routes_that_allow_it(flintd, tmp_path, callback_server):
    server = callback_server()
    deploy(flintd, tmp_path, behave("echo") + f"""
---
kind: route
name: jobs
spec: {{path: /jobs, methods: [POST], target: {{function: echo}}, async: true,
        callback: "{server.url}/jobs"}}
---
kind: route
name: maybe
spec: {{path: /maybe, target: {{function: echo}}, allowAsync: true}}
---
kind: route
name: never
spec: {{path: /never, target: {{function: echo}}}}
""", {"behave.py": BEHAVE_PY})
    r = http_call("POST", flintd.router_url + "/jobs", json.dumps({"job": 1}))
    assert r.status == 202, r.text
    inv_id = r.json()["invocation"]
    assert r.headers["Location"] == f"/v1/invocations/{inv_id}"
    inv = wait_ended(flintd, inv_id)
    assert inv["status"] == "succeeded" and inv["trigger"] == "route/jobs"
    assert json.loads(inv["result"]["body"])["body"] == {"job": 1}
    wait_for(lambda: server.bodies(inv_id), what="the route's callback")
    # allowAsync: synchronous unless the caller prefers otherwise
    r = http_call("POST", flintd.router_url + "/maybe", json.dumps({"sync": True}))
    assert r.status == 200 and json.loads(r.text)["body"] == {"sync": True}
    r = http_call("POST", flintd.router_url + "/maybe", "{}", headers={"Prefer": "respond-async"})
    assert r.status == 202
    inv = wait_ended(flintd, r.json()["invocation"])
    assert inv["trigger"] == "route/maybe"
    assert json.loads(inv["result"]["body"])["trigger"] == "route/maybe"  # X-Flint-Trigger
    # a route that does not allow it ignores the preference
    r = http_call("POST", flintd.router_url + "/never", "{}", headers={"Prefer": "respond-async"})
    assert r.status == 200
    # made async from the CLI too
    flintd.cli("route", "update", "--name", "never", "--async", check=True)
    r = http_call("POST", flintd.router_url + "/never", "{}")
    assert r.status == 202


# ---- kill -9 ----

def check_runs(flintd, fn, invocations, ended_before_kill, restarted_at_ms):
    """What the kill tests require of the runs the log shows: no attempt of an
    invocation ran twice, every run is an attempt its invocation records,
    the attempts are numbered 1..n, and nothing that had ended before the
    kill ran after the restart."""
    logged = runs(flintd, fn)
    pairs = Counter((i, a) for _, i, a in logged)
    twice = [p for p, n in pairs.items() if n > 1]
    assert twice == [], f"attempts that ran twice: {twice[:10]}"
    after_restart = {i for ts, i, _ in logged if ms(ts) >= restarted_at_ms}
    assert after_restart & ended_before_kill == set(), "an ended invocation ran again"
    for inv in invocations:
        numbers = [a["attempt"] for a in inv["attempts"]]
        assert numbers == list(range(1, len(numbers) + 1)), inv
        ran = {a for (i, a) in pairs if i == inv["id"]}
        assert ran <= set(numbers), (inv["id"], ran, numbers)
        # one success: an attempt whose answer was lost in the kill is
        # recorded as lost, never as a second success
        assert sum(200 <= a["status"] < 300 for a in inv["attempts"]) == 1, inv


def test_kill_with_invocations_queued_and_retrying(flintd, tmp_path):
    # one async attempt at a time (concurrency 2: half of it), each a while
    deploy(flintd, tmp_path, behave("steady", concurrency=2,
                                    retry="{maxAttempts: 10, backoff: 1s, maxBackoff: 2s}"),
           {"behave.py": BEHAVE_PY})
    ids = []
    for i in range(12):
        plan = {"sleep": 0.5, "fail": [503] if i % 2 else []}
        ids.append(invoke_async(flintd, "steady", plan))

    def three_done():
        items = list_all(flintd, function="steady")
        return items if sum(i["status"] == "succeeded" for i in items) >= 3 else None
    before = wait_for(three_done, timeout=120, what="three invocations succeeded")
    flintd.kill()
    ended = {i["id"] for i in before if i["status"] in ENDED}
    assert len(ended) < len(ids), "everything ended before the kill: nothing was shown"
    restarted_at = int(time.time() * 1000)
    flintd.start()

    def all_done():
        items = [inv_get(flintd, i) for i in ids]
        return items if all(i["status"] in ENDED for i in items) else None
    invocations = wait_for(all_done, timeout=240, what="every invocation ended after the restart")
    assert [i["status"] for i in invocations] == ["succeeded"] * len(ids)
    # each that was to fail once did, and each ran to a 200 in the end
    for n, inv in enumerate(invocations):
        assert inv["attempts"][-1]["status"] == 200
        if n % 2:
            # its first attempt answered 503, or was the one the kill cut
            # short (recorded as lost, status 0)
            assert inv["attempts"][0]["status"] in (503, 0)
    check_runs(flintd, "steady", invocations, ended, restarted_at)


def test_kill_under_5000_async_invocations(flintd, tmp_path):
    deploy(flintd, tmp_path, """
---
kind: function
name: count
spec: {environment: c, code: count.c, entrypoint: handler, concurrency: 4,
       retry: {maxAttempts: 10, backoff: 10ms, maxBackoff: 100ms}}
""", {"count.c": COUNT_C}, envs=C_ENV)
    total, kill_at = 5000, 2500
    accepted, refused, lock = [], [], threading.Lock()
    deadline = time.monotonic() + 300
    token = flintd.token

    def submit():
        conn = None
        while time.monotonic() < deadline:
            with lock:
                if len(accepted) >= total:
                    return
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", flintd.api_port, timeout=30)
                conn.request("POST", "/v1/functions/count/invoke", body=b"",
                             headers={"Authorization": f"Bearer {token}",
                                      "Prefer": "respond-async"})
                r = conn.getresponse()
                body = r.read()
                if r.status == 202:
                    with lock:
                        accepted.append(json.loads(body)["invocation"])
                elif r.status >= 500 or r.status == 429:
                    time.sleep(0.05)  # the daemon is starting or full: try again
                else:
                    with lock:
                        refused.append((r.status, body))
                    return
            except (OSError, http.client.HTTPException):
                # flintd was killed under this request: its fate is unknown, so
                # it is not counted; connect again once it is back
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(accepted) >= kill_at or refused or
                 not any(t.is_alive() for t in threads), timeout=240, what=f"{kill_at} accepted")
        assert refused == [], refused[:5]
        flintd.kill()
        with lock:
            before_kill = set(accepted)
        restarted_at = int(time.time() * 1000)
        flintd.start()
    finally:
        for t in threads:
            t.join(timeout=320)
    assert refused == [], refused[:5]
    assert len(accepted) >= total, f"only {len(accepted)} accepted"
    assert len(set(accepted)) == len(accepted)

    # every accepted invocation ends succeeded (listing 5,000 costs the
    # daemon something: once a second)
    def all_ended():
        statuses = {i["id"]: i["status"] for i in list_all(flintd, function="count")}
        if all(statuses.get(i) in ENDED for i in accepted):
            return statuses
        return None
    statuses = wait_for(all_ended, timeout=300, interval=1,
                        what="every accepted invocation ended")
    assert Counter(statuses[i] for i in accepted) == {"succeeded": len(accepted)}
    assert set(statuses.values()) == {"succeeded"}  # those of unknown fate included
    # the runs of those accepted before the kill that ran after the restart:
    # every one an attempt its invocation records, none twice, one success
    # each; an invocation that had ended before the kill and ran again would
    # show as a second success, a run its record lacks, or an attempt twice
    logged = runs(flintd, "count")
    around = {i for ts, i, _ in logged if ms(ts) >= restarted_at} & before_kill
    invocations = [inv_get_api(flintd, i) for i in sorted(around)]
    check_runs(flintd, "count", invocations, set(), restarted_at)


def inv_get_api(flintd, inv_id):
    r = flintd.api("GET", f"/v1/invocations/{inv_id}")
    assert r.status == 200, r.text
    return r.json()


# ---- requests that are not text ----

def raw_answer(port, request):
    """Send one raw HTTP request (Connection: close); (status, parsed JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body else None


def test_a_path_or_query_that_is_not_utf8_is_a_400_and_nothing_is_queued(flintd, tmp_path):
    deploy(flintd, tmp_path, behave("echo") + """
---
kind: route
name: jobs
spec: {path: /jobs, methods: [POST], target: {function: echo}, async: true}
""", {"behave.py": BEHAVE_PY})
    auth = f"Authorization: Bearer {flintd.token}\r\n".encode()
    for port, target, extra in [
            (flintd.api_port, b"/v1/functions/echo/invoke?x=\xff\xfe", auth),
            (flintd.api_port, b"/v1/functions/echo/invoke?x=caf\xc3(", auth),
            (flintd.router_port, b"/jobs?x=\xed\xa0\x80", b"")]:
        status, body = raw_answer(port, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra +
                                  b"Prefer: respond-async\r\nContent-Length: 2\r\n"
                                  b"Connection: close\r\n\r\n{}")
        assert status == 400, (target, status, body)
        assert body["error"]["code"] == "bad_request" and "UTF-8" in body["error"]["message"]
    assert list_all(flintd, function="echo") == []
    # a header value that is not text is kept (as base64) and the call goes on
    status, body = raw_answer(flintd.api_port, b"POST /v1/functions/echo/invoke?n=1 HTTP/1.1\r\n"
                              b"Host: x\r\n" + auth + b"Prefer: respond-async\r\n"
                              b"X-Bin: \xff\xfe\r\nX-Text: caf\xc3\xa9\r\n"
                              b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert status == 202, body
    inv = wait_ended(flintd, body["invocation"])
    assert inv["status"] == "succeeded", inv
    assert inv["request"]["headers"]["x-bin"] == "(not text)"
    assert inv["request"]["headers"]["x-text"] == "caf\u00e9"
    assert inv["request"]["query"] == "n=1"
