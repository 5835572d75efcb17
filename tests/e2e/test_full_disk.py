"""flintd on a data directory whose disk fills up: every write answers the
same clear 507, nothing half-written is kept, and writes work again once
space is freed. The small disk is a tmpfs mounted in a mount namespace of
flintd's own (unshare -m), so nothing changes on the host."""
import os
import subprocess

import pytest

from conftest import BIN, Flintd, http, wait_for


class SmallDiskFlintd(Flintd):
    """A flintd whose data directory is a tmpfs of `size`, seen only by it."""

    size = "6m"

    def start(self, wait=True):
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        script = ('mount -t tmpfs -o size=%s,mode=0700 flint-small "$1" && shift && exec "$@"'
                  % self.size)
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "small-disk",
             self.data_dir, os.path.join(BIN, "flintd"), "--data", self.data_dir,
             "--api", f"127.0.0.1:{self.api_port}",
             "--router", f"127.0.0.1:{self.router_port}", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()

    @property
    def token(self):
        # the token lives on flintd's own tmpfs: read it through its namespace
        path = f"/proc/{self.proc.pid}/root{self.data_dir}/token"
        with open(path) as f:
            return f.read().strip()


@pytest.fixture
def small(tmp_path):
    f = SmallDiskFlintd(tmp_path)
    yield f
    f.stop(timeout=10)


def test_a_full_disk_is_one_clear_507_and_space_freed_makes_writes_work(small):
    # fill the disk with code uploads of 512 KiB each, all different
    stored = []
    for i in range(64):
        body = os.urandom(512 * 1024)
        r = small.api("POST", "/v1/code", body, headers={"X-Flint-Filename": f"f{i}.bin"})
        if r.status != 201:
            break
        stored.append(r.json()["sha256"])
    else:
        pytest.fail("64 uploads of 512 KiB fit on a 6 MiB disk")
    assert r.status == 507, r.text
    assert r.json()["error"]["code"] == "no_space", r.text
    assert "no space left" in r.json()["error"]["message"]
    # a resource write finds the same disk and gets the same answer
    env = '{"kind": "environment", "name": "py", "spec": {"runtime": "python"}}'
    for i in range(200):
        r = small.api("POST", "/v1/environments",
                      env.replace('"py"', f'"py{i}"'), headers={"Content-Type": "application/json"})
        if r.status != 201:
            break
    assert r.status == 507 and r.json()["error"]["code"] == "no_space", r.text
    # nothing half-written: no temporary upload left behind
    code_dir = f"/proc/{small.proc.pid}/root{small.data_dir}/code/sha256"
    assert not [n for n in os.listdir(code_dir) if n.startswith(".tmp")]
    # free space (as an operator would, removing what nothing uses), and writes work again
    for sha in stored[:4]:
        os.unlink(os.path.join(code_dir, sha))
    r = small.api("POST", "/v1/code", os.urandom(1024), headers={"X-Flint-Filename": "again.bin"})
    assert r.status == 201, r.text
    wait_for(lambda: small.api("POST", "/v1/environments",
                               env.replace('"py"', '"after"'),
                               headers={"Content-Type": "application/json"}).status == 201,
             what="a resource write to succeed once space is free")
    assert small.api("GET", "/healthz", token=False).status == 200
