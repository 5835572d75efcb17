"""The flint CLI's behaviour that needs no daemon: help generated from the
command table, usage errors, spec validation, and an unreachable daemon."""
import os
import socket
import subprocess

import pytest

BUILD = os.environ.get("FLINT_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
FLINT = os.path.join(BUILD, "bin", "flint")


def flint(*args, env=None):
    full_env = dict(os.environ)
    full_env.pop("FLINT_TOKEN", None)
    full_env.update(env or {})
    return subprocess.run([FLINT, *args], capture_output=True, text=True, timeout=30, env=full_env)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_help_lists_every_command_family():
    r = flint("help")
    assert r.returncode == 0
    for cmd in ("env create", "fn create", "fn test", "fn logs", "route create", "apply", "status"):
        assert cmd in r.stdout


def test_help_for_one_command_shows_its_options():
    r = flint("help", "route", "create")
    assert r.returncode == 0
    assert "--url PATH" in r.stdout and "--function FN" in r.stdout


def test_help_shows_the_async_options():
    r = flint("help", "route", "create")
    for option in ("--async", "--allow-async", "--callback URL", "--retry-attempts N",
                   "--retry-backoff DURATION", "--retry-max-backoff DURATION"):
        assert option in r.stdout, option
    r = flint("help", "fn", "update")
    assert "--retry-attempts N" in r.stdout and "--retry-max-backoff DURATION" in r.stdout


def test_no_command_is_a_usage_error():
    r = flint()
    assert r.returncode == 2
    assert "Commands:" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["bogus"], "'bogus' is not a flint command"),
        (["fn"], "'fn' needs a subcommand"),
        (["fn", "create", "--name", "x", "--bogus", "1"], "has no option '--bogus'"),
        (["fn", "get"], "needs --name"),
        (["fn", "create", "--name", "x", "--concurrency", "many"], "takes a whole number"),
        (["-o", "xml", "env", "list"], "unknown output format 'xml'"),
        (["apply"], "needs -f"),
        (["route", "create", "--name", "r", "--async=maybe"], "--async takes true or false"),
        (["fn", "create", "--name", "x", "--retry-attempts", "3x"], "takes a whole number"),
        (["fn", "create", "--name", "x", "--async"], "has no option '--async'"),
    ],
)
def test_usage_errors_say_what_is_wrong(args, message):
    r = flint(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_unreachable_daemon_says_what_to_do():
    r = flint("--url", f"http://127.0.0.1:{closed_port()}", "env", "list")
    assert r.returncode == 1
    assert "cannot reach flintd" in r.stderr
    assert "FLINT_URL" in r.stderr


def test_apply_refuses_invalid_specs_with_the_reason(tmp_path):
    cases = {
        "dup.yaml": ("kind: function\nname: a\nname: b\n", "dup.yaml:3:1: duplicate key 'name'"),
        "kind.yaml": ("kind: gadget\nname: a\nspec: {}\n",
                      "'kind' must be environment, function, workflow, timetrigger, route or "
                      "messagequeuetrigger"),
        "noname.yaml": ("kind: route\nspec: {}\n", "'name' is missing"),
        "spec.yaml": ("kind: route\nname: r\nspec: [1]\n", "'spec' must be a mapping"),
        "syntax.yaml": ("kind: route\nname: [unclosed\n", "syntax.yaml:"),
        "typo.yaml": ("kind: route\nname: r\nspec: {}\nlabel: {a: b}\n",
                      "route 'r': 'label' is not a field (kind, name, spec)"),
        # refused before any call, never sent as a path cut short
        "long.yaml": ("kind: route\nname: " + "r" * 600 + "\nspec: {}\n", "the name is too long"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        r = flint("--url", f"http://127.0.0.1:{closed_port()}", "apply", "-f", str(path))
        assert r.returncode == 1, (name, r.stderr)
        assert message in r.stderr, (name, r.stderr)


def test_apply_refuses_a_resource_declared_twice(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: environment\nname: py\nspec: {runtime: python}\n")
    (tmp_path / "b.yaml").write_text("kind: environment\nname: py\nspec: {runtime: node}\n")
    r = flint("--url", f"http://127.0.0.1:{closed_port()}", "apply", "-f", str(tmp_path))
    assert r.returncode == 1
    assert "environment 'py' is also declared in" in r.stderr


def test_apply_of_a_folder_too_large_to_read_whole_is_an_error(tmp_path):
    # applying part of it would be wrong, and --prune would delete the rest
    for i in range(257):
        (tmp_path / f"e{i:03}.yaml").write_text(f"kind: environment\nname: e{i}\nspec: {{runtime: c}}\n")
    r = flint("--url", f"http://127.0.0.1:{closed_port()}", "apply", "--prune", "-f", str(tmp_path))
    assert r.returncode == 1
    assert "holds more than 256 spec files" in r.stderr


def test_apply_of_an_empty_directory_is_an_error(tmp_path):
    r = flint("apply", "-f", str(tmp_path))
    assert r.returncode == 1
    assert "holds no .yaml" in r.stderr


# ---- the invocation commands against a stand-in for the API ----
# What the CLI sends and prints, checked against canned answers in the form
# docs/api.md gives them; test_async.py runs the same commands against flintd.

import json

from conftest import RecordingServer

INV_ID = "0193a0c4-0000-7000-8000-000000000001"
INVOCATION = {
    "id": INV_ID, "function": "report", "trigger": "api", "status": "succeeded",
    "createdAt": "2026-12-03T10:00:00.000Z", "updatedAt": "2026-12-03T10:00:03.250Z",
    "request": {"method": "POST", "path": "/", "query": "", "headers": {"content-type": "text/plain"}},
    "retry": {"maxAttempts": 3, "backoff": "1s", "maxBackoff": "5m"},
    "attempts": [
        {"attempt": 1, "startedAt": "2026-12-03T10:00:00.100Z", "durationMs": 12, "status": 503,
         "error": "instance_crashed: \x1b[31mred\x1b[0m"},
        {"attempt": 2, "startedAt": None, "durationMs": None, "status": 0,
         "error": "lost: flintd stopped"},
        {"attempt": 3, "startedAt": "2026-12-03T10:00:03.200Z", "durationMs": 9, "status": 200},
    ],
    "nextAttemptAt": None,
    "result": {"status": 200, "headers": {}, "body": "done\nand \x07dusted\n", "bodyEncoding": "text",
               "truncated": False},
    "callback": {"url": "http://127.0.0.1:9000/done", "status": "delivered", "attempts": 1},
}


class StandIn(RecordingServer):
    """The API, answering from a table of (method, path) -> (status, JSON)."""

    def __init__(self, answers):
        not_found = (404, {"error": {"code": "not_found", "message": "no such thing"}})

        def answer(method, path, body):
            status, value = answers.get((method, path), not_found)
            return status, json.dumps(value).encode()
        super().__init__(answer)


@pytest.fixture
def stand_in(closer):
    return lambda answers: closer(StandIn(answers))


def test_fn_invoke_async_prints_the_id_and_sends_the_headers(stand_in):
    accepted = {"invocation": INV_ID, "status": "queued"}
    api = stand_in({("POST", "/v1/functions/report/invoke/sub?x=1"): (202, accepted),
                    ("POST", "/v1/functions/dup/invoke"): (202, dict(accepted, duplicate=True)),
                    ("POST", "/v1/functions/sync/invoke"): (200, {"ran": True})})
    r = flint("--url", api.url, "--token", "t", "fn", "invoke", "--name", "report", "--async",
              "--idempotency-key", "k-1", "--callback", "http://127.0.0.1:9/cb", "--body", "hi",
              "-H", "X-Mine: 1", "--path", "/sub?x=1")
    assert (r.returncode, r.stdout) == (0, INV_ID + "\n"), r.stderr
    method, path, headers, body = api.requests[-1]
    assert (method, body) == ("POST", b"hi")
    assert headers["Prefer"] == "respond-async"
    assert headers["Idempotency-Key"] == "k-1"
    assert headers["X-Flint-Callback-Url"] == "http://127.0.0.1:9/cb"
    assert headers["X-Mine"] == "1"
    # -o json: the whole answer; a duplicate says so on stderr, the id alone on stdout
    r = flint("--url", api.url, "--token", "t", "-o", "json", "fn", "invoke", "--name", "report",
              "--async", "--path", "/sub?x=1", "--method", "POST")
    assert json.loads(r.stdout) == accepted
    r = flint("--url", api.url, "--token", "t", "fn", "test", "--name", "dup", "--async",
              "--body", "")
    assert r.stdout == INV_ID + "\n" and "nothing new was queued" in r.stderr
    # a daemon that ran the call instead is an error, not an id
    r = flint("--url", api.url, "--token", "t", "fn", "invoke", "--name", "sync", "--async",
              "--method", "POST")
    assert r.returncode == 1 and "does not take async invocations" in r.stderr
    # without --async: no Prefer, and the async options are a usage error
    r = flint("--url", api.url, "--token", "t", "fn", "invoke", "--name", "sync", "--method",
              "POST")
    assert r.returncode == 0 and json.loads(r.stdout) == {"ran": True}
    assert "Prefer" not in api.requests[-1][2]
    r = flint("--url", api.url, "fn", "invoke", "--name", "sync", "--idempotency-key", "k")
    assert r.returncode == 2 and "add --async" in r.stderr
    # an API error: its code and message, and a failing exit
    r = flint("--url", api.url, "--token", "t", "fn", "invoke", "--name", "nope", "--async",
              "--method", "POST")
    assert r.returncode == 1
    assert "cannot invoke 'nope' asynchronously: no such thing (not_found, HTTP 404)" in r.stderr


def test_inv_get_shows_the_attempts_result_and_callback_inertly(stand_in):
    api = stand_in({("GET", f"/v1/invocations/{INV_ID}"): (200, INVOCATION)})
    r = flint("--url", api.url, "inv", "get", INV_ID)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for line in (f"id:        {INV_ID}", "function:  report", "trigger:   api",
                 "status:    succeeded", "created:   2026-12-03T10:00:00.000Z",
                 "retry:     3 attempts, backoff 1s, max 5m", "result:    200", "  done",
                 "  and \\x07dusted",
                 "callback:  http://127.0.0.1:9000/done: delivered (1 attempt)"):
        assert line in out, (line, out)
    assert "ATTEMPT  STARTED" in out and "12ms" in out and "503" in out
    lost = [line for line in out.splitlines() if line.startswith("2 ")]
    assert lost and lost[0].split()[:4] == ["2", "-", "-", "0"], out
    assert "\x1b" not in out and "\\x1b[31mred" in out  # a function's text cannot steer the terminal
    r = flint("--url", api.url, "-o", "json", "inv", "get", INV_ID)
    assert json.loads(r.stdout) == INVOCATION
    r = flint("--url", api.url, "inv", "get", "no-such")
    assert r.returncode == 1 and "invocation 'no-such': no such thing (not_found, HTTP 404)" in r.stderr
    for bad in (["inv", "get"], ["inv", "get", "a/b"], ["inv", "get", INV_ID, "--all"],
                ["inv", "get", INV_ID, INV_ID]):
        assert flint("--url", api.url, *bad).returncode == 2, bad


def test_inv_list_follows_pages_with_all(stand_in):
    item = {k: v for k, v in INVOCATION.items() if k not in ("attempts", "result")}
    second = dict(item, id="0193a0c4-0000-7000-8000-000000000002", status="dead", attempts=3)
    api = stand_in({
        ("GET", "/v1/invocations?function=report&status=dead&limit=1"): (200, {"items": [item], "next": "c 1"}),
        ("GET", "/v1/invocations?function=report&status=dead&limit=1&after=c%201"): (200, {"items": [second], "next": None}),
        ("GET", "/v1/deadletters?function=report"): (200, {"items": [second], "next": None}),
        ("GET", "/v1/deadletters?function=stuck"): (200, {"items": [second], "next": "c"}),
        ("GET", "/v1/deadletters?function=stuck&after=c"): (200, {"items": [second], "next": "c"}),
    })
    args = ["--url", api.url, "inv", "list", "--function", "report", "--status", "dead", "--limit", "1"]
    r = flint(*args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "FUNCTION", "TRIGGER", "STATUS", "ATTEMPTS", "CREATED"]
    assert len(lines) == 2 and INV_ID in lines[1] and "--all" in r.stderr
    r = flint(*args, "--all")
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and lines[2].split()[3:5] == ["dead", "3"], r.stdout
    r = flint(*args, "--all", "-o", "json")
    assert [i["id"] for i in json.loads(r.stdout)["items"]] == [INV_ID, second["id"]]
    r = flint("--url", api.url, "dlq", "list", "--function", "report")
    assert r.returncode == 0 and second["id"] in r.stdout
    # a cursor that does not move on is an error, not an endless listing
    r = flint("--url", api.url, "dlq", "list", "--function", "stuck", "--all")
    assert r.returncode == 1 and "the same page again" in r.stderr
    assert flint("--url", api.url, "dlq", "list", "--status", "dead").returncode == 2
    assert flint("--url", api.url, "inv", "list", "--limit", "0").returncode == 2


def test_dlq_get_redrive_purge_and_cancel(stand_in):
    dead = dict(INVOCATION, status="dead", result=None,
                request=dict(INVOCATION["request"], body="AAEC/w==", bodyEncoding="base64"))
    api = stand_in({
        ("GET", f"/v1/deadletters/{INV_ID}"): (200, dead),
        ("POST", f"/v1/deadletters/{INV_ID}/redrive"): (200, {"redriven": [INV_ID]}),
        ("POST", "/v1/deadletters/redrive?function=report"): (200, {"redriven": [INV_ID, "x-2"]}),
        ("POST", "/v1/deadletters/redrive?all=true"): (200, {"redriven": []}),
        ("DELETE", f"/v1/deadletters/{INV_ID}"): (200, {"purged": [INV_ID]}),
        ("POST", "/v1/deadletters/purge?all=true"): (200, {"purged": ["x-3"]}),
        ("POST", f"/v1/invocations/{INV_ID}/cancel"): (200, dict(INVOCATION, status="canceled")),
        ("POST", "/v1/invocations/x-9/cancel"): (409, {"error": {"code": "ended", "message": "it has ended"}}),
    })
    r = flint("--url", api.url, "dlq", "get", INV_ID)
    assert r.returncode == 0, r.stderr
    assert "request:   POST /" in r.stdout and "content-type: text/plain" in r.stdout
    assert "(4 bytes, binary)" in r.stdout
    r = flint("--url", api.url, "dlq", "redrive", INV_ID)
    assert (r.returncode, r.stdout) == (0, f"redriven {INV_ID}\n")
    r = flint("--url", api.url, "dlq", "redrive", "--function", "report")
    assert r.stdout.split() == ["redriven", INV_ID, "redriven", "x-2"]
    r = flint("--url", api.url, "dlq", "redrive", "--all")
    assert "no dead letters to redrive" in r.stdout
    assert flint("--url", api.url, "dlq", "redrive").returncode == 2
    assert flint("--url", api.url, "dlq", "redrive", INV_ID, "--all").returncode == 2
    r = flint("--url", api.url, "dlq", "purge", INV_ID)
    assert r.stdout == f"purged {INV_ID}\n"
    # purging many asks for --yes, and nothing is sent without it
    n = len(api.requests)
    r = flint("--url", api.url, "dlq", "purge", "--all")
    assert r.returncode == 2 and "--yes" in r.stderr and len(api.requests) == n
    r = flint("--url", api.url, "dlq", "purge", "--all", "--yes")
    assert r.stdout == "purged x-3\n"
    r = flint("--url", api.url, "inv", "cancel", INV_ID)
    assert (r.returncode, r.stdout) == (0, f"invocation {INV_ID} canceled\n")
    r = flint("--url", api.url, "inv", "cancel", "x-9")
    assert r.returncode == 1 and "it has ended (ended, HTTP 409)" in r.stderr
