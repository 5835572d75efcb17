"""Helpers to drive a runtime instance the way the executor does: start it
with FLINT_LISTEN=unix:PATH, speak HTTP/1.1 over the socket, kill it after."""
import http.client
import json
import os
import signal
import socket
import subprocess
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.socket_path)
        self.sock = s


class Instance:
    def __init__(self, argv, tmp_path, env=None):
        self.sock = str(tmp_path / "instance.sock")
        self.log = tmp_path / "instance.log"
        full_env = dict(os.environ, FLINT_LISTEN="unix:" + self.sock, **(env or {}))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"instance exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("instance did not become healthy")

    def connection(self):
        return UnixHTTPConnection(self.sock)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.connection()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            if conn is None:
                c.close()

    def specialize(self, filepath, function_name):
        status, _, body = self.request("POST", "/v2/specialize", json.dumps(
            {"filepath": str(filepath), "functionName": function_name}),
            {"Content-Type": "application/json"})
        return status, json.loads(body) if body else None

    def output(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


# Answers a function may return that HTTP cannot carry (for the python and
# node runtimes' tests: handlers.<name> in each returns the like), and what
# the runtime must say of each.
INVALID_RESPONSES = [
    ("split", "header 'X-Split' holds a control character"),
    ("spaced", "header name 'Bad Name' is not a token"),
    ("framed", "header 'Content-Length' is the runtime's to set"),
    ("huge_status", "status 1000 is not from 200 to 599"),
    ("word_status", "status 'ok' is not a number"),
]


def check_invalid_response(instance, fn_dir, name, message):
    """The function's answer is a 500 saying why, and the instance serves on."""
    instance.specialize(fn_dir, "handlers." + name)
    for _ in range(2):
        status, headers, body = instance.request("GET", "/")
        assert status == 500 and "X-Injected" not in headers
        err = json.loads(body)["error"]
        assert err == {"code": "function_error",
                       "message": f"handlers.{name} returned an invalid response: {message}"}
    assert instance.request("GET", "/healthz")[0] == 200
