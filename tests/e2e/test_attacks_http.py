"""Attacks on flintd's listeners from outside, each performed for real
against a real flintd, and shown to fail: connection floods and slowloris,
unauthenticated uploads and unread pipelines that would take its memory,
log floods, request smuggling, credential leaks to functions.

Every loop here is bounded in count and in time; nothing waits by sleeping
and sampling: each wait is for a condition, with a generous deadline."""
import json
import os
import re
import socket
import time

from conftest import http, wait_for
from test_executor import ENVS, call, deploy

ECHO = """
def main(req):
    return {"headers": {k.lower(): v for k, v in req.headers.items()}}
"""

ECHO_APP = ENVS + """
---
kind: function
name: echo
spec: {environment: python, code: echo.py, entrypoint: echo.main}
---
kind: route
name: echo
spec: {path: /echo, target: {function: echo}}
"""


def connect(port, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answer(s, deadline=30):
    """Read one whole answer (Content-Length framed) from s: (status, body)."""
    s.settimeout(deadline)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    length = int(m.group(1)) if m else 0
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, rest[:length]


def raw(port, data):
    with connect(port) as s:
        s.sendall(data)
        return read_answer(s)


# ---- smuggling and paths (item: 400 and 404, never 503 or 500) ----

def test_a_header_name_with_a_space_is_a_400_through_the_router(flintd, tmp_path):
    deploy(flintd, tmp_path, ECHO_APP, {"echo.py": ECHO})
    assert call(flintd, "/echo").status == 200
    for request in [
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
            b"GET /echo HTTP/1.1\r\nHost: x\r\nX Spaced: 1\r\n\r\n"]:
        status, body = raw(flintd.router_port, request)
        assert status == 400, (request, status, body)
        assert json.loads(body)["error"]["code"] == "bad_request"
    assert call(flintd, "/echo").status == 200


def test_names_that_cannot_be_functions_are_a_json_404_on_the_api(flintd):
    for path in ["/v1/functions/%2e%2e/logs", "/v1/functions/%2e%2e/invoke",
                 "/v1/functions/..%2f..%2fetc/logs", "/v1/functions/a%00b/logs",
                 "/v1/functions/%2e%2e"]:
        method = "POST" if path.endswith("invoke") else "GET"
        r = flintd.api(method, path)
        assert r.status == 404, (path, r.status, r.text)
        assert r.json()["error"]["code"] == "not_found", path


# ---- credentials (item: the operator's token never reaches a function) ----

def test_the_api_token_never_reaches_a_function(flintd, tmp_path):
    deploy(flintd, tmp_path, ECHO_APP, {"echo.py": ECHO})
    token = flintd.token
    # through the API's invoke: the caller's credentials are the operator's
    r = flintd.api("POST", "/v1/functions/echo/invoke", body="",
                   headers={"Proxy-Authorization": "Basic b3A6c2VjcmV0", "X-Kept": "yes"})
    assert r.status == 200, r.text
    seen = r.json()["headers"]
    assert "authorization" not in seen and "proxy-authorization" not in seen, seen
    assert token not in r.text
    assert seen["x-kept"] == "yes" and seen["x-flint-trigger"] == "api"
    # through the router: the caller's own Authorization is the function's business
    r = call(flintd, "/echo", headers={"Authorization": "Bearer app-user-token"})
    assert r.status == 200, r.text
    assert r.json()["headers"]["authorization"] == "Bearer app-user-token"


# ---- logs (item: no line per unauthenticated request) ----

def test_bad_tokens_cannot_flood_the_log(flintd):
    def refusals():
        return flintd.log().count('msg="refused a request without a valid token"')

    start = time.monotonic()
    for i in range(2000):
        auth = b"Authorization: Bearer " + b"0" * 64 + b"\r\n" if i % 2 else b""
        status, _ = raw(flintd.api_port, b"GET /v1/status HTTP/1.1\r\n" + auth + b"\r\n")
        assert status == 401
    elapsed = time.monotonic() - start
    # 10 lines at once, then one a second: whatever the speed of this machine
    bound = 10 + int(elapsed) + 2
    assert refusals() <= bound, (refusals(), elapsed)
    # what was dropped is said, once a line is let through again: each
    # summary counts what was dropped since the line before it (more than
    # one where the flood lasted past a second), so they are added up
    def suppressed():
        return sum(int(n) for n in re.findall(r'msg="suppressed similar lines" count=(\d+)',
                                              flintd.log()))

    deadline = time.monotonic() + 30
    while suppressed() < 2000 - bound:
        assert time.monotonic() < deadline, f"only {suppressed()} suppressed lines summed up"
        assert flintd.api("GET", "/v1/status", token=False).status == 401
        time.sleep(0.2)
    # every refusal is still counted
    text = flintd.api("GET", "/metrics").text
    none = int(re.search(r'flint_api_refused_total\{token="none"\} (\d+)', text).group(1))
    wrong = int(re.search(r'flint_api_refused_total\{token="wrong"\} (\d+)', text).group(1))
    assert none >= 1000 and wrong == 1000


# ---- connections (item: floods and slowloris take neither listener down) ----

def connect_from(source, port, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_a_flooded_router_never_locks_the_operator_out_of_the_api(flintd):
    cap = 64  # flintd's default --max-conns-per-addr
    socks = []
    try:
        # one address takes its whole share: idle connections and slowloris
        for i in range(cap):
            s = connect(flintd.router_port)
            if i % 4 == 0:
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
            socks.append(s)
        # more from it are refused at once, and keep nothing
        for _ in range(20):
            with connect(flintd.router_port) as s:
                status, body = read_answer(s)
                assert status == 503, body
                assert json.loads(body)["error"]["code"] == "too_many_connections"
                assert b"too many connections from this address" in body
        # another client is served by the router
        with connect_from("127.0.0.2", flintd.router_port) as s:
            s.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            status, body = read_answer(s)
            assert status == 404 and json.loads(body)["error"]["code"] == "no_route"
        # the API has connections of its own: the operator gets in
        r = flintd.api("GET", "/v1/functions")
        assert r.status == 200, r.text
        assert r.json() == {"items": []}
        # a slowloris is cut by the header timeout (10 s), whatever it trickles
        slow = socks[0]
        slow.settimeout(60)
        status, body = read_answer(slow, deadline=60)
        assert status == 408 and b"headers did not arrive in time" in body
    finally:
        for s in socks:
            s.close()


# ---- memory (item: what unauthenticated clients do cannot take flintd's memory) ----

MIB = 1 << 20


def rss_peak(pid):
    """flintd's peak resident memory (VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


BIG_APP = ENVS + """
---
kind: function
name: big
spec: {environment: python, code: big.py, entrypoint: big.main, concurrency: 2}
---
kind: route
name: big
spec: {path: /big, target: {function: big}}
"""


def test_unauthenticated_uploads_and_unread_pipelines_cannot_take_flintds_memory(flintd_factory,
                                                                                 tmp_path):
    # under AddressSanitizer, freed memory waits in a quarantine (256 MiB by
    # default) before it is reused: that is the sanitizer's memory, not
    # flintd's, so this flintd runs without it (a plain build ignores it)
    asan = os.environ.get("ASAN_OPTIONS", "")
    flintd = flintd_factory(env={"ASAN_OPTIONS": (asan + ":" if asan else "") +
                                 "quarantine_size_mb=0"})
    deploy(flintd, tmp_path, BIG_APP,
           {"big.py": "ANSWER = b'x' * (1 << 20)\ndef main(req):\n    return ANSWER\n"})
    assert len(call(flintd, "/big").body) == MIB
    pid = flintd.proc.pid
    bound = 256 * MIB
    upload_head = (b"POST /v1/code HTTP/1.1\r\nHost: x\r\nX-Flint-Filename: a.tgz\r\n"
                   b"Content-Length: %d\r\n\r\n" % (60 * MIB))
    chunk = b"u" * (256 * 1024)
    pipeline = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 64

    def uploader():
        s = connect(flintd.api_port)
        s.setblocking(False)
        return {"sock": s, "sent": 0, "head": False}

    def pipeliner():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing anyway
        s.settimeout(30)
        s.connect(("127.0.0.1", flintd.router_port))
        s.setblocking(False)
        return s

    uploads = [uploader() for _ in range(40)]
    pipes = [pipeliner() for _ in range(16)]
    opened = {"uploads": 40, "pipes": 16}
    refused_uploads = pipes_cut = 0
    authorized_ok = 0
    start = time.monotonic()
    try:
        # a bounded attack: at most 20 s and 600 connections opened
        while time.monotonic() - start < 20 and opened["uploads"] + opened["pipes"] < 600:
            for u in uploads:
                try:
                    if not u["head"]:
                        u["sock"].sendall(upload_head)
                        u["head"] = True
                    if u["sent"] < 60 * MIB:
                        u["sent"] += u["sock"].send(chunk)
                except BlockingIOError:
                    pass
                except OSError:  # refused and closed: a new one takes its place
                    refused_uploads += 1
                    u["sock"].close()
                    u.update(uploader())
                    opened["uploads"] += 1
            for i, s in enumerate(pipes):
                try:
                    s.send(pipeline)
                except BlockingIOError:
                    pass
                except OSError:  # let go for reading nothing: come back
                    pipes_cut += 1
                    s.close()
                    pipes[i] = pipeliner()
                    opened["pipes"] += 1
            peak = rss_peak(pid)
            assert peak < bound, f"flintd's peak RSS is {peak / MIB:.0f} MiB"
            if time.monotonic() - start > 5 and authorized_ok < 3:
                # the operator, meanwhile: answered
                r = flintd.api("GET", "/v1/functions/big")
                assert r.status == 200, r.text
                authorized_ok += 1
            time.sleep(0.01)
    finally:
        for u in uploads:
            u["sock"].close()
        for s in pipes:
            s.close()
    peak = rss_peak(pid)
    print(f"flintd peak RSS under attack: {peak / MIB:.1f} MiB; uploads refused: "
          f"{refused_uploads}; pipelines cut: {pipes_cut}")
    assert peak < bound
    assert authorized_ok == 3
    # the attack was real: uploads were refused before their bodies...
    assert refused_uploads >= 40
    assert flintd.log().count("refused a request without a valid token") >= 1
    # ...and the router's budget was spent, and it shed
    assert pipes_cut >= 1 or "closed a connection that leaves its answers unread" in flintd.log()
    # and flintd serves on
    assert len(call(flintd, "/big").body) == MIB
    assert flintd.api("GET", "/v1/status").status == 200
