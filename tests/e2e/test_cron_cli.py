"""`flint tt showschedule`: the next fire times of a cron expression, worked
out by the CLI alone (no daemon). Its answers are checked against fixed
expectations (Fission's published example, daylight saving in Berlin) and
against an independent reference written here on Python's zoneinfo, around
every daylight saving change of a year in three zones; its errors must say
what is wrong and exit non-zero."""
import datetime as dt
import os
import subprocess
import time
from zoneinfo import ZoneInfo

import pytest

from conftest import free_port

BUILD = os.environ.get("FLINT_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
FLINT = os.path.join(BUILD, "bin", "flint")


def flint(*args):
    env = dict(os.environ)
    env.pop("FLINT_TOKEN", None)
    # no daemon: a URL where nothing listens shows that none is asked
    env["FLINT_URL"] = f"http://127.0.0.1:{free_port()}"
    return subprocess.run([FLINT, *args], capture_output=True, text=True, timeout=30, env=env)


def schedule(*args):
    r = flint("tt", "showschedule", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_fission_published_example():
    # fission timer showschedule --cron "0 30 * * * *" --round 5, at 2018-06-12T05:07:41Z
    assert schedule("--cron", "0 30 * * * *", "--round", "5", "--after", "2018-06-12T05:07:41Z") == [
        "2018-06-12T05:30:00Z",
        "2018-06-12T06:30:00Z",
        "2018-06-12T07:30:00Z",
        "2018-06-12T08:30:00Z",
        "2018-06-12T09:30:00Z",
    ]
    # "@every 1m" counts from now, as Fission's does
    assert schedule("--cron", "@every 1m", "-n", "2", "--after", "2019-12-17T08:33:43Z") == [
        "2019-12-17T08:34:43Z",
        "2019-12-17T08:35:43Z",
    ]


def test_times_are_in_the_zone_with_its_offset_across_daylight_saving():
    assert schedule("--cron", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "3",
                    "--after", "2026-03-28T00:00:00Z") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that day: once, at 03:00
        "2026-03-30T02:30:00+02:00",
    ]
    assert schedule("--cron", "0 * * * *", "--tz", "America/New_York", "-n", "4",
                    "--after", "2026-11-01T04:30:00Z") == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",  # the repeated hour is lived twice
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]


def test_default_is_five_times_from_now():
    before = int(time.time())
    lines = schedule("--cron", "*/1 * * * *")
    after = int(time.time())
    assert len(lines) == 5
    times = [dt.datetime.fromisoformat(line.replace("Z", "+00:00")).timestamp() for line in lines]
    assert times == sorted(set(times))
    assert all(t % 60 == 0 for t in times)
    assert before < times[0] <= after + 60
    assert [b - a for a, b in zip(times, times[1:])] == [60, 60, 60, 60]


# ---- an independent reference on zoneinfo ----

def parse_field(text, lo, hi):
    values, unrestricted = set(), False
    for item in text.split(","):
        rng, slash, step = item.partition("/")
        step = int(step) if slash else 1
        if rng in ("*", "?"):
            a, b = lo, hi
            unrestricted |= step == 1
        elif "-" in rng:
            a, b = map(int, rng.split("-"))
        else:
            a = int(rng)
            b = hi if slash else a
        values.update(range(a, b + 1, step))
    return values, unrestricted


def reference(expr, zone, start, count):
    """The fire times after start, minute by minute over the instants: a
    job fires where the zone's wall clock matches; a fixed-time job (minute
    and hour not starting with '*') fires only at a time's first
    occurrence, and at the end of a gap for a time the gap skipped."""
    minute, hour, dom, month, dow = expr.split()
    fields = [parse_field(t, lo, hi) for t, (lo, hi) in
              zip((minute, hour, dom, month, dow), ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6)))]
    wall_clock = minute.startswith("*") or hour.startswith("*")
    tz = ZoneInfo(zone)

    def matches(local):
        (mi, _), (h, _), (d, d_any), (mo, _), (w, w_any) = fields
        weekday = (local.weekday() + 1) % 7
        day = (local.day in d and weekday in w) if d_any or w_any else (local.day in d or weekday in w)
        return local.minute in mi and local.hour in h and local.month in mo and day

    out, u = [], (start // 60 + 1) * 60
    while len(out) < count:
        now = dt.datetime.fromtimestamp(u, tz)
        offset = now.utcoffset().total_seconds()
        before = dt.datetime.fromtimestamp(u - 60, tz).utcoffset().total_seconds()
        fire = matches(now.replace(tzinfo=None)) and (wall_clock or now.fold == 0)
        if not wall_clock and offset > before:
            epoch = dt.datetime(1970, 1, 1)
            fire |= any(matches(epoch + dt.timedelta(seconds=x))
                        for x in range(int(u + before), int(u + offset), 60))
        if fire:
            out.append(u)
        u += 60
    return out


def transitions(zone, year):
    tz = ZoneInfo(zone)
    u = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    end, found = u + 366 * 86400, []
    offset = dt.datetime.fromtimestamp(u, tz).utcoffset()
    while u < end:
        o = dt.datetime.fromtimestamp(u, tz).utcoffset()
        if o != offset:
            found.append(u)
            offset = o
        u += 900
    return found


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("year", [2026, 2045])  # 2045: past the zone files' transitions
def test_agrees_with_zoneinfo_around_every_change(zone, year):
    changes = transitions(zone, year)
    assert len(changes) == 2
    for change in changes:
        start = change - 6 * 3600
        after = dt.datetime.fromtimestamp(start, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for expr, count in (("30 2 * * *", 3), ("0,30 1-2 * * *", 6), ("0 * * * *", 12),
                            ("*/30 * * * *", 16), ("45 1 * * *", 3)):
            got = [int(dt.datetime.fromisoformat(line.replace("Z", "+00:00")).timestamp())
                   for line in schedule("--cron", expr, "--tz", zone, "-n", str(count),
                                        "--after", after)]
            assert got == reference(expr, zone, start, count), (expr, zone, after)


# ---- errors ----

@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--cron", "0 24 * * *"], 2, "--cron '0 24 * * *': field 2 (hour): 24 is out of range 0-23"),
        (["--cron", "* * * * FUNDAY"], 2, "'FUNDAY' is not a number or a day name (SUN-SAT)"),
        (["--cron", "* * *"], 2, "3 fields: write 5 (minute hour day-of-month month day-of-week)"),
        (["--cron", "@every 500ms"], 2, "a duration is whole hours, minutes and seconds"),
        (["--cron", "@reboot"], 2, "unknown descriptor '@reboot'"),
        (["--cron", "0 0 30 2 *"], 1, "'0 0 30 2 *' never fires"),
        (["--cron", "* * * * *", "--tz", "Mars/Olympus_Mons"], 2, "unknown time zone 'Mars/Olympus_Mons'"),
        (["--cron", "* * * * *", "--tz", "../../../etc/passwd"], 2, "is not a time zone name"),
        (["--cron", "* * * * *", "--tz", "/etc/localtime"], 2, "is not a time zone name"),
        (["--cron", "* * * * *", "-n", "0"], 2, "-n takes a number from 1 to 1000, not '0'"),
        (["--cron", "* * * * *", "-n", "many"], 2, "-n takes a number from 1 to 1000"),
        (["--cron", "* * * * *", "--after", "yesterday"], 2, "--after takes an RFC 3339 time"),
        (["--cron", "* * * * *", "--bogus"], 2, "has no option '--bogus'"),
        ([], 2, "'flint tt showschedule' needs --cron"),
    ],
)
def test_errors_say_what_is_wrong(args, code, message):
    r = flint("tt", "showschedule", *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr
    assert r.stdout == ""


def test_help_lists_it_and_tt_alone_asks_for_a_subcommand():
    r = flint("help")
    assert "tt showschedule" in r.stdout
    r = flint("help", "tt", "showschedule")
    assert r.returncode == 0 and "--cron EXPR" in r.stdout and "--tz ZONE" in r.stdout
    r = flint("tt")
    assert r.returncode == 2 and "'tt' needs a subcommand" in r.stderr
