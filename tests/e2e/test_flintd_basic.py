"""flintd's life cycle and its listeners' behaviour with good and bad input."""
import os
import signal
import socket
import stat
import subprocess

from conftest import BIN, free_port, http


def raw(port, data, read=65536):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(read)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def test_healthz_needs_no_token(flintd):
    r = http("GET", flintd.api_url + "/healthz")
    assert r.status == 200
    assert r.json() == {"status": "ok"}


def test_token_file_is_private(flintd):
    mode = os.stat(os.path.join(flintd.data_dir, "token")).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert len(flintd.token) == 64


def test_api_refuses_missing_and_wrong_tokens_and_logs_them(flintd):
    r = flintd.api("GET", "/v1/functions", token=False)
    assert r.status == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = flintd.api("GET", "/v1/functions", headers={"Authorization": "Bearer " + "0" * 64})
    assert r.status == 401
    assert "refused a request without a valid token" in flintd.log()
    assert "auth=wrong" in flintd.log()
    text = flintd.api("GET", "/metrics").text
    assert 'flint_api_refused_total{token="none"} 1' in text
    assert 'flint_api_refused_total{token="wrong"} 1' in text


def test_unknown_router_path_is_a_json_404(flintd):
    r = http("GET", flintd.router_url + "/nothing/here")
    assert r.status == 404
    assert r.json()["error"]["code"] == "no_route"
    assert "/nothing/here" in r.json()["error"]["message"]


def test_malformed_http_gets_400_and_the_daemon_keeps_serving(flintd):
    out = raw(flintd.router_port, b"THIS IS NOT HTTP\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b'"code":"bad_request"' in out
    out = raw(flintd.router_port, b"GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 ")
    assert http("GET", flintd.api_url + "/healthz").status == 200


def test_sigterm_stops_cleanly(flintd):
    assert flintd.stop(signal.SIGTERM) == 0
    assert 'msg="stopped"' in flintd.log()


def test_restart_keeps_the_token(flintd):
    before = flintd.token
    flintd.restart()
    assert flintd.token == before
    assert flintd.api("GET", "/v1/nothing").status == 404  # authorized, unknown endpoint


def test_a_deleted_token_is_replaced_and_said_so(flintd):
    assert "token file was missing" not in flintd.log()  # the first start makes one quietly
    before = flintd.token
    flintd.stop()
    os.unlink(os.path.join(flintd.data_dir, "token"))
    flintd.start()
    assert flintd.token != before
    assert "the API token file was missing and a new token was made" in flintd.log()
    assert flintd.api("GET", "/v1/nothing").status == 404  # the new token works


def test_bad_flags_and_busy_ports_are_clear_errors(tmp_path, flintd):
    r = subprocess.run([os.path.join(BIN, "flintd"), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "usage: flintd" in r.stderr
    r = subprocess.run([os.path.join(BIN, "flintd"), "--max-body", "1TiB"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "--max-body takes a size from 1KiB to 64MiB" in r.stderr
    r = subprocess.run([os.path.join(BIN, "flintd"), "--data", str(tmp_path / "d2"),
                        "--api", f"127.0.0.1:{flintd.api_port}",
                        "--router", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "cannot listen on" in r.stderr and "address already in use" in r.stderr
    r = subprocess.run([os.path.join(BIN, "flintd"), "--data", "/proc/forbidden"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "cannot create the data directory" in r.stderr


def test_help_lists_every_option_with_its_variable(tmp_path):
    r = subprocess.run([os.path.join(BIN, "flintd"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("usage: flintd")
    for flag in ("data", "store", "api", "router", "log-level", "log-file", "drain", "runtimes",
                 "queue-max", "queue-wait", "max-body", "max-conns-per-addr", "sandbox-uids",
                 "max-inflight", "gc-interval", "build-grace", "code-grace", "expr-deadline",
                 "expr-evaluators"):
        assert f"--{flag} " in r.stdout, flag
        assert "FLINT_" + flag.upper().replace("-", "_") in r.stdout, flag
    # a variable is checked like its flag, and the message says which one it was
    env = dict(os.environ, FLINT_MAX_BODY="1TiB", FLINT_DATA=str(tmp_path / "d"))
    r = subprocess.run([os.path.join(BIN, "flintd")], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 2
    assert "FLINT_MAX_BODY (for --max-body) takes a size from 1KiB to 64MiB" in r.stderr
    # and the flag wins over it (--max-inflight is checked after --max-body)
    r = subprocess.run([os.path.join(BIN, "flintd"), "--max-body", "2MiB", "--max-inflight", "x"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 2 and "--max-inflight takes a size" in r.stderr, r.stderr


def test_metrics_show_how_long_the_loop_stalls(flintd):
    # the loop's busy time per iteration: a histogram and the longest
    text = flintd.api("GET", "/metrics").text
    assert "# TYPE flint_loop_stall_seconds histogram" in text
    count = [l for l in text.splitlines() if l.startswith("flint_loop_stall_seconds_count ")]
    assert count and int(count[0].split()[1]) > 0
    # the longest stall is there (how long depends on the machine: the unit
    # tests of src/loop make stalls of a known length)
    longest = [l for l in text.splitlines() if l.startswith("flint_loop_stall_max_seconds ")]
    assert longest and float(longest[0].split()[1]) >= 0
