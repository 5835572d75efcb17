"""A real NATS JetStream server for the end-to-end tests, and a client.

`NatsServer` runs `nats-server -js` (the Debian package; scripts/install-deps
installs it) on a free loopback port with its store in the test's temporary
directory; it can be stopped and started again on the same port with the
same store (a restart loses nothing JetStream stored). The `nats_server`
fixture (conftest.py) starts one per test and stops it at teardown.

Tests publish and read through build/tests/helpers/nats_tool (libnats; see
tests/helpers/nats_tool.c): Debian has no Python NATS client.
"""
import json
import os
import shutil
import socket
import subprocess
import time

from conftest import BUILD, free_port

NATS_TOOL = os.path.join(BUILD, "tests", "helpers", "nats_tool")


def nats_server_binary():
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)


class NatsServer:
    def __init__(self, tmp_path, extra_args=(), tool_env=None):
        """extra_args go to nats-server (TLS, say); tool_env to every
        nats_tool run (NATS_TOOL_TLS_CA, NATS_TOOL_TLS_CERT, NATS_TOOL_TLS_KEY,
        NATS_TOOL_CREDS: a credentials file, for a server in operator mode)."""
        self.dir = tmp_path / "nats"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.tool_env = dict(os.environ, **(tool_env or {}))
        self.log_path = str(self.dir / "nats-server.log")
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", str(self.dir / "store"), "--no_advertise", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"INFO"):
                        break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"nats-server did not listen in {timeout}s:\n{self.log()}")
        # JetStream answers once it has recovered its store
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.tool("stream-info", "FLINT-NO-SUCH-STREAM", check=False).returncode == 3:
                return
            time.sleep(0.1)
        raise RuntimeError(f"JetStream did not answer in {timeout}s:\n{self.log()}")

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    # ---- the client ----

    def tool(self, *args, check=True, timeout=300, env=None):
        """env: variables for this run on top of tool_env."""
        r = subprocess.run([NATS_TOOL, self.url, *args], capture_output=True, text=True,
                           timeout=timeout, env=dict(self.tool_env, **(env or {})))
        if check and r.returncode != 0:
            raise AssertionError(f"nats_tool {' '.join(args)} failed ({r.returncode}): "
                                 f"{r.stderr}")
        return r

    def add_stream(self, name, *subjects):
        self.tool("add-stream", name, *subjects)

    def publish(self, subject, body, msg_id="", headers=()):
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        self.tool("pub", subject, data, msg_id, *[f"{k}: {v}" for k, v in headers])

    def messages(self, stream):
        """Every message stream keeps, oldest first: {seq, subject, headers, data};
        [] if there is no such stream."""
        r = self.tool("read", stream, check=False)
        if r.returncode == 3:
            return []
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def consumers(self, stream):
        r = self.tool("consumers", stream, check=False)
        if r.returncode == 3:
            return []
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def consumer_info(self, stream, name):
        r = self.tool("consumer-info", stream, name, check=False)
        if r.returncode == 3:
            return None
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
