"""Time triggers through the real flintd and the flint CLI: the kind's
commands and refusals, fires of @every and seconds crons, one invocation per
scheduled time across kill -9 and restarts, and the catch-up policies of a
trigger whose times passed while flintd was stopped.

How fires are observed. A sandboxed function cannot reach the host's
loopback, so the function of this file writes one line per run to its
output, which flintd keeps in its log:

    fire {"invocation", "attempt", "scheduled", "trigger", "method", "body"}

(X-Flint-Invocation-Id, X-Flint-Attempt, X-Flint-Scheduled-Time,
X-Flint-Trigger). Every wait is for a condition with a generous deadline;
nothing asserts how long anything took.
"""
import datetime
import json
import os
import re
import time
from collections import defaultdict

from conftest import ROOT, deploy, list_all, log_lines, wait_for

RECORD_PY = """
import json

def main(req):
    h = {k.lower(): v for k, v in req.headers.items()}
    print("fire " + json.dumps({
        "invocation": h.get("x-flint-invocation-id"),
        "attempt": int(h.get("x-flint-attempt", "0")),
        "scheduled": h.get("x-flint-scheduled-time"),
        "trigger": h.get("x-flint-trigger"),
        "method": req.method,
        "body": (req.body or b"").decode("utf-8", "replace"),
    }), flush=True)
    return "ok"
"""

RECORD_FN = """
---
kind: function
name: {name}
spec: {{environment: python, code: record.py, entrypoint: record.main, concurrency: 2}}
"""


def deploy_recorder(flintd, tmp_path, *names):
    deploy(flintd, tmp_path, "".join(RECORD_FN.format(name=n) for n in names),
           {"record.py": RECORD_PY})


def epoch(rfc3339):
    """Unix seconds of an RFC 3339 time."""
    return int(datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def fires(flintd, fn, trigger=None):
    """Every run the function's log holds, as the dicts it printed; only
    those of trigger (a time trigger's name) if given."""
    out = []
    for _, text in log_lines(flintd, fn):
        if text.startswith("fire "):
            f = json.loads(text[5:])
            if trigger is None or f["trigger"] == f"timetrigger/{trigger}":
                out.append(f)
    return out


def scheduled_times(flintd, fn, trigger):
    """{scheduled Unix seconds: {invocation ids}} of a trigger's runs."""
    by_time = defaultdict(set)
    for f in fires(flintd, fn, trigger):
        by_time[epoch(f["scheduled"])].add(f["invocation"])
    return by_time


def one_invocation_per_time(by_time):
    twice = {t: ids for t, ids in by_time.items() if len(ids) > 1}
    assert twice == {}, f"scheduled times with more than one invocation: {twice}"


def tt_get(flintd, name):
    return json.loads(flintd.cli("-o", "json", "tt", "get", "--name", name, check=True).stdout)


def showschedule(flintd, cron, tz, n=1):
    r = flintd.cli("tt", "showschedule", "--cron", cron, "--tz", tz, "-n", str(n), check=True)
    return r.stdout.split()


# ---- the kind ----

def test_create_get_list_update_delete_and_bad_specs(flintd, tmp_path):
    deploy_recorder(flintd, tmp_path, "rec")
    before = showschedule(flintd, "0 9 * * *", "America/New_York")
    flintd.cli("tt", "create", "--name", "morning", "--cron", "0 9 * * *", "--function", "rec",
               "--tz", "America/New_York", "--method", "PUT", "--body", "hello",
               "--catchup", "none", "--retry-attempts", "2", check=True)
    after = showschedule(flintd, "0 9 * * *", "America/New_York")
    tt = tt_get(flintd, "morning")
    assert tt["kind"] == "timetrigger" and tt["name"] == "morning"
    assert tt["spec"] == {"cron": "0 9 * * *", "target": {"function": "rec"}, "method": "PUT",
                          "body": "hello", "tz": "America/New_York", "catchup": "none",
                          "retry": {"maxAttempts": 2}}
    # the next fire in the trigger's zone, as showschedule works it out
    assert tt["status"]["nextFire"] in before + after, (tt["status"], before, after)
    assert re.match(r"^\d{4}-\d\d-\d\dT09:00:00-0[45]:00$", tt["status"]["nextFire"])
    assert tt["status"]["lastFire"] is None

    flintd.cli("tt", "create", "--name", "often", "--cron", "*/30 * * * * *", "--function", "rec",
               check=True)
    table = flintd.cli("tt", "list", check=True).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == \
        ["NAME", "CRON", "TARGET", "LAST FIRE", "NEXT FIRE"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {"morning", "often"}
    assert "0 9 * * *" in rows["morning"] and "function:rec" in rows["morning"]

    # an update takes effect at once: the next fire moves
    flintd.cli("tt", "update", "--name", "morning", "--cron", "30 17 * * *", "--tz",
               "Asia/Tokyo", check=True)
    tt = tt_get(flintd, "morning")
    assert tt["spec"]["cron"] == "30 17 * * *" and tt["spec"]["method"] == "PUT"
    assert re.match(r"^\d{4}-\d\d-\d\dT17:30:00\+09:00$", tt["status"]["nextFire"]), tt["status"]

    # refusals, with the parser's own words
    for args, message in [
        (["--cron", "0 24 * * *", "--function", "rec"],
         "spec.cron: field 2 (hour): 24 is out of range 0-23"),
        (["--cron", "0 0 30 2 *", "--function", "rec"], "spec.cron: never fires"),
        (["--cron", "@every 90", "--function", "rec"], "@every '90': a duration is whole hours"),
        (["--cron", "@hourly", "--function", "rec", "--tz", "Mars/Olympus"],
         "spec.tz: unknown time zone 'Mars/Olympus'"),
        (["--cron", "@hourly", "--function", "nope"],
         "spec.target.function: function 'nope' does not exist"),
        (["--cron", "@hourly", "--workflow", "wf"],
         "spec.target.workflow: workflow 'wf' does not exist"),
        (["--cron", "@hourly", "--function", "rec", "--catchup", "sometimes"],
         "spec.catchup: must be none, last or all"),
        (["--cron", "@hourly", "--function", "rec", "--method", "FETCH"],
         "spec.method: unknown method"),
    ]:
        r = flintd.cli("tt", "create", "--name", "bad", *args)
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
        assert "HTTP 400" in r.stderr, r.stderr
    assert flintd.cli("tt", "get", "--name", "bad").returncode == 1

    # the function may not be deleted under its triggers
    r = flintd.cli("fn", "delete", "--name", "rec")
    assert r.returncode == 1 and "HTTP 409" in r.stderr and "timetrigger" in r.stderr, r.stderr
    for name in ("morning", "often"):
        flintd.cli("tt", "delete", "--name", name, check=True)
    r = flintd.cli("tt", "get", "--name", "morning")
    assert r.returncode == 1 and "HTTP 404" in r.stderr
    assert flintd.cli("tt", "list", check=True).stdout.splitlines()[1:] == []
    flintd.cli("fn", "delete", "--name", "rec", check=True)
    # showschedule is still listed under the word
    assert "tt showschedule" in flintd.cli("help", check=True).stdout


def test_apply_takes_the_cron_example(flintd):
    example = os.path.join(ROOT, "examples", "cron")
    flintd.cli("apply", "-f", example, check=True)
    nightly = tt_get(flintd, "tick-weekday-night")
    assert nightly["spec"]["tz"] == "Europe/Berlin" and nightly["spec"]["catchup"] == "last"
    assert nightly["status"]["nextFire"] in \
        showschedule(flintd, "0 30 2 * * MON-FRI", "Europe/Berlin", 2)
    assert tt_get(flintd, "tick-hourly-report")["spec"]["target"] == {"workflow": "hourly-report"}
    # its workflow runs (by hand here: its trigger fires hourly)
    r = flintd.cli("wf", "run", "--name", "hourly-report", "-H",
                   "X-Flint-Scheduled-Time: 2026-01-01T10:00:00Z", check=True)
    assert "report for 2026-01-01T10:00:00Z" in r.stdout, r.stdout
    # @every counts from the trigger's creation
    minutely = tt_get(flintd, "tick-every-minute")
    created = epoch(minutely["createdAt"])
    assert (epoch(minutely["status"]["nextFire"]) - created) % 60 == 0
    # applied again, nothing changes
    out = flintd.cli("apply", "-f", example, check=True).stdout
    assert "created" not in out and "updated" not in out, out
    assert tt_get(flintd, "tick-every-minute")["revision"] == minutely["revision"]


# ---- firing ----

def test_every_second_fires_once_per_scheduled_time(flintd, tmp_path):
    deploy_recorder(flintd, tmp_path, "rec", "other")
    flintd.cli("tt", "create", "--name", "tick", "--cron", "@every 1s", "--function", "rec",
               "--body", "tock", check=True)
    wait_for(lambda: len(scheduled_times(flintd, "rec", "tick")) >= 5, timeout=120,
             what="five fires of @every 1s")
    # what the function saw
    f = fires(flintd, "rec", "tick")[0]
    assert f["trigger"] == "timetrigger/tick" and f["method"] == "POST" and f["body"] == "tock"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", f["scheduled"])
    # the status names the last fire
    wait_for(lambda: tt_get(flintd, "tick")["status"]["lastFire"] is not None,
             what="the last fire in the status")
    last = tt_get(flintd, "tick")["status"]["lastFire"]
    assert last["scheduledTime"].endswith("Z") and last.get("error") is None

    # deleting it stops it: once another trigger has fired three times after
    # the delete, the deleted one has fired nothing scheduled after it
    flintd.cli("tt", "delete", "--name", "tick", check=True)
    deleted_at = time.time()
    flintd.cli("tt", "create", "--name", "tock", "--cron", "@every 1s", "--function", "other",
               check=True)
    wait_for(lambda: len([t for t in scheduled_times(flintd, "other", "tock")
                          if t > deleted_at + 1]) >= 3, timeout=120, what="fires of another")
    by_time = scheduled_times(flintd, "rec", "tick")
    assert [t for t in by_time if t > deleted_at + 1] == []

    # one invocation per scheduled time, the scheduled times strictly
    # increasing in the order the invocations were made (ids are UUIDv7)
    one_invocation_per_time(by_time)
    time_of = {next(iter(ids)): t for t, ids in by_time.items()}
    wait_for(lambda: all(i["status"] == "succeeded"
                         for i in list_all(flintd, function="rec")), what="every fire ended")
    listed = sorted(i["id"] for i in list_all(flintd, function="rec"))
    assert set(listed) == set(time_of), "every invocation ran, and every run is listed"
    times = [time_of[i] for i in listed]
    assert times == sorted(set(times)), times
    assert all(i["trigger"] == "timetrigger/tick" for i in list_all(flintd, function="rec"))
    # the CLI lists them too
    out = flintd.cli("inv", "list", "--function", "rec", "--all", check=True).stdout
    assert all(i in out for i in listed)


def test_kill_9_and_restart_never_fire_a_time_twice(flintd, tmp_path):
    deploy_recorder(flintd, tmp_path, "rec")
    # six fields, seconds first; catch up every missed second
    flintd.cli("tt", "create", "--name", "sec", "--cron", "* * * * * *", "--function", "rec",
               "--catchup", "all", check=True)
    for round_ in range(3):
        seen = len(scheduled_times(flintd, "rec", "sec"))
        wait_for(lambda: len(scheduled_times(flintd, "rec", "sec")) >= seen + 3, timeout=120,
                 what=f"three more fires (round {round_})")
        flintd.kill()
        flintd.start()
    restarted = time.time()
    wait_for(lambda: len([t for t in scheduled_times(flintd, "rec", "sec") if t > restarted + 1])
             >= 3, timeout=120, what="fires after the last restart")
    flintd.cli("tt", "delete", "--name", "sec", check=True)
    # everything accepted ran (async: at least once), and no scheduled time
    # has two invocations
    wait_for(lambda: all(i["status"] == "succeeded"
                         for i in list_all(flintd, function="rec")), timeout=120,
             what="every fire ended")
    by_time = scheduled_times(flintd, "rec", "sec")
    one_invocation_per_time(by_time)
    listed = list_all(flintd, function="rec")
    ran = {i for ids in by_time.values() for i in ids}
    assert {i["id"] for i in listed} == ran
    # catchup all: no second was lost across the kills
    times = sorted(by_time)
    assert times == list(range(times[0], times[-1] + 1)), \
        sorted(set(range(times[0], times[-1] + 1)) - set(times))


def test_catchup_policies_for_times_missed_while_stopped(flintd, tmp_path):
    deploy_recorder(flintd, tmp_path, "rec")
    # three fire times well ahead, in one minute, then none until tomorrow
    now = int(time.time())
    first = now + 20
    if first % 60 > 57:
        first += 60 - first % 60
    times = [first, first + 1, first + 2]
    t = time.gmtime(first)
    cron = f"{t.tm_sec},{t.tm_sec + 1},{t.tm_sec + 2} {t.tm_min} {t.tm_hour} * * *"
    for policy in ("none", "last", "all"):
        flintd.cli("tt", "create", "--name", policy, "--cron", cron, "--function", "rec",
                   "--catchup", policy, check=True)
        assert epoch(tt_get(flintd, policy)["status"]["nextFire"]) == first
    flintd.stop()
    assert time.time() < first, "flintd took 20 s to stop: the test cannot tell what it missed"
    wait_for(lambda: time.time() >= times[-1] + 1, timeout=60, what="the three times to pass")
    flintd.start()
    # all: each missed time once; last: the most recent; none: nothing
    wait_for(lambda: len(scheduled_times(flintd, "rec", "all")) == 3
             and len(scheduled_times(flintd, "rec", "last")) == 1, timeout=120,
             what="the catch-up fires")
    assert sorted(scheduled_times(flintd, "rec", "all")) == times
    assert sorted(scheduled_times(flintd, "rec", "last")) == [times[-1]]
    one_invocation_per_time(scheduled_times(flintd, "rec", "all"))
    none = tt_get(flintd, "none")["status"]
    assert none["lastFire"] is None, none
    assert epoch(none["nextFire"]) == first + 86400
    assert scheduled_times(flintd, "rec", "none") == {}
    last = tt_get(flintd, "last")["status"]["lastFire"]
    assert epoch(last["scheduledTime"]) == times[-1] and last["invocation"]
    # restarting again owes nothing more: the fires were recorded
    flintd.restart()
    for policy in ("all", "last"):
        wait_for(lambda: tt_get(flintd, policy)["status"]["lastFire"] is not None,
                 what=f"{policy} loaded with its last fire")
    wait_for(lambda: all(i["status"] == "succeeded" for i in list_all(flintd, function="rec")),
             what="every fire ended")
    assert len(list_all(flintd, function="rec")) == 4


def test_a_trigger_starts_a_workflow_once_per_scheduled_time(flintd, tmp_path):
    """A time trigger may target a workflow: each fire starts an async
    invocation of it (method, body, X-Flint-Scheduled-Time in its inputs,
    trigger timetrigger/NAME), one per trigger and scheduled time across
    kill -9 and restarts; the workflow must exist, and may not be deleted
    while a trigger names it."""
    deploy_recorder(flintd, tmp_path, "rec")
    spec = {"output": "Rec", "tasks": {"Rec": {"run": "rec", "inputs": {
        "body": "{$.Invocation.Inputs.headers['X-Flint-Scheduled-Time']}"}}}}
    (tmp_path / "tick.json").write_text(json.dumps(spec))
    flintd.cli("wf", "create", "--name", "tick", "--spec", str(tmp_path / "tick.json"),
               check=True)
    r = flintd.cli("tt", "create", "--name", "bad", "--cron", "@hourly", "--workflow", "nope")
    assert r.returncode == 1 and "workflow 'nope' does not exist" in r.stderr, r.stderr
    flintd.cli("tt", "create", "--name", "wt", "--cron", "* * * * * *", "--workflow", "tick",
               "--catchup", "all", "--body", "tock", check=True)
    assert tt_get(flintd, "wt")["spec"]["target"] == {"workflow": "tick"}
    r = flintd.cli("wf", "delete", "--name", "tick")
    assert r.returncode == 1 and "HTTP 409" in r.stderr and "timetrigger" in r.stderr, r.stderr

    def invocations():
        return list_all(flintd, workflow="tick")
    for round_ in range(2):
        seen = len(invocations())
        wait_for(lambda: len(invocations()) >= seen + 3, timeout=120,
                 what=f"three more fires (round {round_})")
        flintd.kill()
        flintd.start()
    restarted = time.time()
    wait_for(lambda: len(invocations()) >= 9, timeout=120, what="fires after the restarts")
    flintd.cli("tt", "delete", "--name", "wt", check=True)
    wait_for(lambda: all(i["status"] == "succeeded" for i in invocations()), timeout=120,
             what="every invocation ended")

    by_time = defaultdict(set)
    for item in invocations():
        got = flintd.api("GET", f"/v1/invocations/{item['invocation']}").json()
        assert got["trigger"] == "timetrigger/wt", got
        assert got["inputs"]["body"] == "tock" and got["inputs"]["method"] == "POST", got
        scheduled = got["inputs"]["headers"]["X-Flint-Scheduled-Time"]
        assert got["output"] == "ok", got
        by_time[epoch(scheduled)].add(got["invocation"])
    one_invocation_per_time(by_time)
    times = sorted(by_time)
    assert times == list(range(times[0], times[-1] + 1)), \
        sorted(set(range(times[0], times[-1] + 1)) - set(times))
    assert any(t > restarted for t in times)
    # the workflow's task ran once per invocation
    runs = [f for f in fires(flintd, "rec") if f["trigger"] == "workflow/tick"]
    assert sorted(f["body"] for f in runs) == sorted(
        datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for t in times)
    flintd.cli("wf", "delete", "--name", "tick", check=True)
