"""Fixtures for Flint's end-to-end tests.

Every test that asks for `flintd` gets the real daemon (FLINT_BUILD/bin/flintd,
default: the checkout's build/) started in its own temporary data directory on
free loopback ports; it is always stopped at teardown, and its log is printed
when the test fails. `flintd_factory` starts more than one, or with extra
arguments.

Every flintd the harness starts (through those fixtures, or a `Flintd` a test
makes itself, subclasses included) is checked once stopped: a sanitizer report
in its log (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer, as
`make SANITIZE=address,undefined test` builds it) fails the test at teardown,
whatever the test itself asserted. `test_harness.py` shows the check can fail.
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# pytester: test_harness.py runs pytest on tests of the harness itself
pytest_plugins = ["pytester"]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("FLINT_BUILD", os.path.join(ROOT, "build")))
BIN = os.path.join(BUILD, "bin")


def wait_for(predicate, timeout=20, what="condition", interval=0.05):
    """predicate()'s first true value, asked every interval seconds until
    timeout; a predicate that costs the daemon much asks less often."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def free_port():
    """A loopback port that was free a moment ago."""
    return free_ports(1)[0]


def free_ports(n):
    """n distinct loopback ports that were free a moment ago (held together
    while chosen, so that two of them are never the same)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def http(method, url, body=None, headers=None, timeout=30):
    """One HTTP request; returns a Response whatever the status."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


# What a sanitizer writes to stderr (flintd's log here) when it finds a bug:
# "==42==ERROR: AddressSanitizer: heap-use-after-free ...", "==42==ERROR:
# LeakSanitizer: detected memory leaks", "src/x.c:10:5: runtime error: ...".
# flintd's own lines start with "ts=" and may quote any text, so they are
# never taken for a report.
SANITIZER_MARKS = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")


def sanitizer_report(log, max_lines=80):
    """The sanitizer report in a log's text, from its first line (at most
    max_lines), or "" when there is none."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("ts=") and SANITIZER_MARKS.search(line):
            return "\n".join(lines[i:i + max_lines])
    return ""


# Every Flintd made since the current test began, checked at its teardown.
_made = []


class RecordingServer:
    """An HTTP server of the test on 127.0.0.1 (a free port): it records
    every request as (method, path, headers, body) in .requests and answers
    what answer(method, path, body) returns: (status, bytes). close() it."""

    def __init__(self, answer):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.lock:
                    outer.requests.append((self.command, self.path, dict(self.headers), body))
                    status, data = answer(self.command, self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Flintd:
    """A running flintd and how to talk to it."""

    def __init__(self, tmp_path, extra_args=(), env=None):
        self.data_dir = str(tmp_path / "data")
        self.log_path = str(tmp_path / "flintd.log")
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.api_port, self.router_port = free_ports(2)
        self.proc = None
        self.sanitizers_checked = False
        _made.append(self)
        self.start()

    @property
    def api_url(self):
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def router_url(self):
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def token(self):
        with open(os.path.join(self.data_dir, "token")) as f:
            return f.read().strip()

    def start(self, wait=True):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "flintd"), "--data", self.data_dir,
             "--api", f"127.0.0.1:{self.api_port}",
             "--router", f"127.0.0.1:{self.router_port}", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flintd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if http("GET", self.api_url + "/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"flintd did not become ready in {timeout}s:\n{self.log()}")

    def api(self, method, path, body=None, headers=None, token=True):
        h = dict(headers or {})
        if token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        return http(method, self.api_url + path, body, h)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal flintd and wait; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._kill_group()

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def _kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    def check_sanitizers(self):
        """Stop flintd if it still runs (a sanitizer writes leaks at exit),
        then fail the current test if its log holds a sanitizer report."""
        if self.sanitizers_checked:
            return
        self.sanitizers_checked = True
        try:
            self.stop(timeout=10)
        except Exception:
            pass
        if self.proc is not None:
            self._kill_group()
        report = sanitizer_report(self.log())
        if report:
            pytest.fail(f"flintd ({self.data_dir}) wrote a sanitizer report to its log "
                        f"{self.log_path}:\n{report}", pytrace=False)

    def cli(self, *args, check=False, input=None, timeout=60):
        """Run the flint CLI against this daemon."""
        env = dict(os.environ, FLINT_URL=self.api_url, FLINT_DATA=self.data_dir)
        env.pop("FLINT_TOKEN", None)
        r = subprocess.run([os.path.join(BIN, "flint"), *args], capture_output=True, text=True,
                           env=env, input=input, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"flint {' '.join(args)} failed ({r.returncode}):\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r


def under_ci():
    """Whether CI is set (to anything but "", "0" or "false"; CI services set
    CI=true). There a skipped test fails, as in the unit tests' runner: CI
    has what every guarantee's test needs, so each must run there."""
    return os.environ.get("CI", "") not in ("", "0", "false")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and under_ci() and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped, and under CI every test must run: {reason}"
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def flintd_factory(tmp_path, request):
    started = []

    def make(name="flintd", extra_args=(), env=None):
        d = tmp_path / name
        d.mkdir()
        f = Flintd(d, extra_args, env)
        started.append(f)
        return f

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for f in started:
        try:
            f.stop(timeout=10)
        except Exception:
            pass
        f._kill_group()
        if failed or sanitizer_report(f.log()):
            print(f"\n----- log of {f.data_dir} -----\n{f.log()}")
    check_sanitizers(started)


@pytest.fixture
def flintd(flintd_factory):
    return flintd_factory()


def check_sanitizers(flintds):
    """Check each flintd's log (see Flintd.check_sanitizers), all of them
    even when one fails; fail with every report found."""
    reports = []
    for f in flintds:
        try:
            f.check_sanitizers()
        except pytest.fail.Exception as e:
            reports.append(str(e))
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)


@pytest.fixture(autouse=True)
def _flintd_sanitizer_check():
    """Check, at the end of every test, each flintd made during it that no
    fixture checked (one a test made itself, through Flintd or a subclass).
    Autouse fixtures are torn down last, after the fixtures that stop their
    flintd."""
    first = len(_made)
    yield
    mine = _made[first:]
    del _made[first:]
    check_sanitizers(mine)


@pytest.fixture
def closer():
    """closer(x) returns x and calls x.close() at teardown (test servers)."""
    things = []

    def keep(thing):
        things.append(thing)
        return thing

    yield keep
    for thing in things:
        thing.close()


# ---- deploying and reading invocations (test_async.py, test_timetrigger.py) ----

PYTHON_ENV = """
kind: environment
name: python
spec: {runtime: python, poolsize: 1}
"""


def deploy(flintd, tmp_path, documents, files, envs=PYTHON_ENV):
    """Write files next to a spec of envs and documents, and `flint apply` it."""
    d = tmp_path / "app"
    d.mkdir(exist_ok=True)
    for name, content in files.items():
        (d / name).write_text(content)
    (d / "app.yaml").write_text(envs + documents)
    flintd.cli("apply", "-f", str(d / "app.yaml"), check=True)
    return d


def log_lines(flintd, fn):
    """[(ts, line)] of everything the function's log holds ([] before it
    has one)."""
    r = flintd.api("GET", f"/v1/functions/{fn}/logs?tail=0")
    if r.status == 404:
        return []
    assert r.status == 200, r.text
    entries = [json.loads(line) for line in r.text.splitlines()]
    return [(e.get("ts"), e.get("line", "")) for e in entries]


def inv_get(flintd, inv_id):
    """`flint inv get ID` as JSON."""
    r = flintd.cli("-o", "json", "inv", "get", inv_id, check=True)
    return json.loads(r.stdout)


def list_all(flintd, path="/v1/invocations", **query):
    """Every item of a paged list of the API (1000 a page)."""
    query.setdefault("limit", 1000)
    items, after = [], None
    for _ in range(100000):
        q = dict(query, **({"after": after} if after else {}))
        qs = "&".join(f"{k}={urllib.parse.quote(str(v), safe='')}" for k, v in q.items())
        r = flintd.api("GET", path + (f"?{qs}" if qs else ""))
        assert r.status == 200, r.text
        page = r.json()
        items += page["items"]
        if page.get("next") and page["next"] == after:
            raise AssertionError(f"the list's next cursor does not move on from {after!r}")
        after = page.get("next")
        if not after:
            return items
    raise AssertionError("too many pages")


@pytest.fixture
def nats_server(tmp_path):
    """A real `nats-server -js` of this test (nats_util.NatsServer): a free
    loopback port, its store under tmp_path; stopped at teardown."""
    from nats_util import NatsServer, nats_server_binary
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed (scripts/install-deps installs it)")
    server = NatsServer(tmp_path)
    yield server
    server.close()
