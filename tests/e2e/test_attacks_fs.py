"""Attacks on what flintd does as root with the files of builds and instances,
through a real flintd with real builds in the real sandbox: a build output too
big to walk on the loop, a build that leaves set-id files, fifos and links to
host files, and the collection of builds and code nobody uses any more."""
import glob
import hashlib
import os
import stat
import threading
import time

from conftest import wait_for
from test_executor import _tarball as tarball, deploy, function_status, invoke

DIRS, FILES_PER_DIR = 100, 1000  # the big build: 100k files


def run_dirs(flintd):
    """Where instances live: DATA/run, or the /tmp directory DATA/run-dir names."""
    note = os.path.join(flintd.data_dir, "run-dir")
    if os.path.exists(note):
        with open(note) as f:
            return f.read().strip()
    return os.path.join(flintd.data_dir, "run")


def count(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return None


GEN = f"""import os
for d in range({DIRS}):
    os.makedirs(f"many/{{d:03d}}")
    for f in range({FILES_PER_DIR}):
        open(f"many/{{d:03d}}/{{f}}", "w").close()
"""

BIG = """import os
def main(req):
    base = os.path.join(os.path.dirname(__file__), "many")
    return str(sum(len(os.listdir(os.path.join(base, d))) for d in os.listdir(base)))
"""

ENVS = """
kind: environment
name: python
spec: {runtime: python, poolsize: 1}
---
kind: environment
name: python-big
spec:
  runtime: python
  poolsize: 1
  builder: "python3 gen.py"
---
kind: function
name: other
spec: {environment: python, code: other.py, entrypoint: other.main}
"""


def test_calls_are_answered_while_a_huge_build_is_linked_and_removed(flintd, tmp_path):
    deploy(flintd, tmp_path, ENVS + """
---
kind: function
name: big
spec: {environment: python-big, code: big.tar.gz, entrypoint: app.main}
""", {"other.py": "def main(req):\n    return 'other'\n",
      "big.tar.gz": tarball({"app.py": BIG, "gen.py": GEN})})
    assert invoke(flintd, "other").text == "other"
    wait_for(lambda: function_status(flintd, "big")["build"] != "running", timeout=600,
             what="the big build")
    assert function_status(flintd, "big")["build"] == "ok", function_status(flintd, "big")

    failures, answered = [], []

    def call_other():
        r = invoke(flintd, "other")
        if (r.status, r.text) != (200, "other"):
            failures.append((r.status, r.text))
        answered.append(r.status)

    # the first call of big takes the warm instance: its code (100k files) is
    # linked into DATA/run/<n>/code/f while other keeps being called
    big_answer = []
    caller = threading.Thread(target=lambda: big_answer.append(invoke(flintd, "big")))
    caller.start()
    during_link = 0
    pattern = os.path.join(run_dirs(flintd), "*", "code", "f", "many")
    while caller.is_alive():
        linked = glob.glob(pattern)
        if linked and (count(linked[0]) or 0) > 0:
            # the link has begun: a call answered before it ends proves the
            # loop was free meanwhile (many/ holds all its directories only
            # once the link is done)
            call_other()
            if (count(linked[0]) or DIRS) < DIRS:
                during_link += 1
        else:
            call_other()
    caller.join()
    assert big_answer[0].status == 200, big_answer[0].text
    assert big_answer[0].text == str(DIRS * FILES_PER_DIR)
    assert failures == []
    assert during_link > 0, f"no call was answered while the code was linked ({len(answered)})"

    # deleting big stops its instance, and its directory (100k links) is
    # removed while other keeps answering
    socket = function_status(flintd, "big")["instances"][0]["socket"]
    inst_dir = os.path.dirname(socket[len("unix:"):])  # DATA/run/<n>/s
    many = os.path.join(inst_dir, "code", "f", "many")
    assert count(many) == DIRS
    flintd.cli("fn", "delete", "--name", "big", check=True)
    during_removal = 0
    while os.path.isdir(inst_dir):
        left = count(many)
        call_other()
        if left is not None and left < DIRS and os.path.isdir(inst_dir):
            during_removal += 1  # removal had begun, and is not over
    assert failures == []
    assert during_removal > 0, "no call was answered while the instance directory was removed"


def test_a_build_cannot_give_its_instances_powers_or_host_files(flintd, tmp_path):
    builder = ("printf x > suid && chmod 4755 suid && "
               "mkdir open && chmod 1777 open && mkfifo fifo && "
               "ln -s /etc/shadow shadow && ln -s /etc/passwd passwd")
    inspect = """import os, stat
def main(req):
    here = os.path.dirname(__file__)
    out = []
    for name in sorted(os.listdir(here)):
        p = os.path.join(here, name)
        st = os.lstat(p)
        kind = "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) \\
            else "file" if stat.S_ISREG(st.st_mode) else "other"
        line = f"{name} {kind} {st.st_mode & 0o7777:o} {st.st_uid}"
        if kind == "link":
            try:
                with open(p) as f:
                    line += " readable:" + str(len(f.read()))
            except OSError as e:
                line += " unreadable"
        out.append(line)
    return "\\n".join(out)
"""
    deploy(flintd, tmp_path, f"""
kind: environment
name: sneaky
spec:
  runtime: python
  poolsize: 1
  builder: "{builder}"
---
kind: function
name: inspect
spec: {{environment: sneaky, code: app.tar.gz, entrypoint: app.main}}
""", {"app.tar.gz": tarball({"app.py": inspect})})
    r = invoke(flintd, "inspect")
    assert r.status == 200, r.text
    seen = {line.split()[0]: line.split()[1:] for line in r.text.splitlines()}
    assert "fifo" not in seen, seen
    assert seen["suid"][:2] == ["file", "755"], seen    # no setuid bit
    assert seen["open"][:2] == ["dir", "755"], seen     # no longer world-writable
    assert seen["app.py"][:2] == ["file", "644"], seen
    # inside the sandbox the links lead nowhere useful: /etc/shadow is not
    # there at all, and /etc/passwd is the sandbox's own
    assert seen["shadow"][0] == "link" and seen["shadow"][-1] == "unreadable", seen
    assert seen["passwd"][0] == "link", seen
    # the build on disk: owned by root, and the host's /etc/shadow untouched
    key_dirs = glob.glob(os.path.join(flintd.data_dir, "builds", "*", "out", "deploy"))
    assert key_dirs
    for deploy_dir in key_dirs:
        for root, dirs, files in os.walk(deploy_dir):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                assert st.st_uid == 0 and st.st_gid == 0, (name, st)
                assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), name
                assert not st.st_mode & 0o022 or stat.S_ISLNK(st.st_mode), name
    assert not os.stat("/etc/shadow").st_mode & 0o004
    assert "removed 1 special files" in flintd.api("GET", "/v1/functions/inspect").text


def gc_runs(flintd):
    for line in flintd.api("GET", "/metrics").text.splitlines():
        if line.startswith('flint_gc_runs_total{result="ok"}'):
            return int(float(line.split()[-1]))
    return 0


def test_unused_builds_and_code_are_collected(flintd_factory, tmp_path):
    flintd = flintd_factory(extra_args=["--gc-interval", "200ms", "--build-grace", "1s",
                                        "--code-grace", "3s"])
    spec = """
kind: environment
name: python
spec: {runtime: python, poolsize: 1}
---
kind: function
name: kept
spec: {environment: python, code: k.py, entrypoint: k.main}
---
kind: function
name: gone
spec: {environment: python, code: g.py, entrypoint: g.main}
"""
    code = {v: f"def main(req):\n    return '{v}'\n" for v in ("v1", "v2", "v3")}
    gone = "def main(req):\n    return 'gone'\n"
    blobs = os.path.join(flintd.data_dir, "code", "sha256")
    digest = {v: hashlib.sha256(code[v].encode()).hexdigest() for v in code}
    digest["gone"] = hashlib.sha256(gone.encode()).hexdigest()

    def builds():
        """What each build on disk deploys: v1, v2, v3 or gone."""
        found = {}
        # the collector may remove a build while this looks at it: a file
        # gone between the listing and the open was collected, not found
        for key in os.listdir(os.path.join(flintd.data_dir, "builds")):
            for name in ("k.py", "g.py"):
                path = os.path.join(flintd.data_dir, "builds", key, "out", "deploy", name)
                try:
                    with open(path) as f:
                        found[f.read().split("'")[1]] = key
                except FileNotFoundError:
                    pass
        return found

    for v in ("v1", "v2", "v3"):
        deploy(flintd, tmp_path, spec, {"k.py": code[v], "g.py": gone})
        wait_for(lambda: invoke(flintd, "kept").text == v, what=f"kept to answer {v}")
        # while in use, a build and its code are there (older ones may be
        # collected already: their grace is short)
        assert v in builds() and "gone" in builds()
        assert os.path.exists(os.path.join(blobs, digest[v]))
        assert os.path.exists(os.path.join(blobs, digest["gone"]))
    assert invoke(flintd, "gone").text == "gone"
    flintd.cli("fn", "delete", "--name", "gone", check=True)

    def collected():
        return (set(builds()) == {"v3"} and
                sorted(os.listdir(blobs)) == [digest["v3"]])

    wait_for(collected, timeout=90, what="the unused builds and code to be collected")
    # the current ones stay, sweep after sweep, and the function still answers
    runs = gc_runs(flintd)
    wait_for(lambda: gc_runs(flintd) >= runs + 3, timeout=60, what="three more collections")
    assert collected()
    assert invoke(flintd, "kept").text == "v3"
    assert "what=build removed=" in flintd.log() and "what=code removed=" in flintd.log()


def test_uploading_stored_code_again_renews_its_grace(flintd):
    body = b"print('same code')\n"
    first = flintd.api("POST", "/v1/code", body, headers={"X-Flint-Filename": "same.py"})
    assert first.status == 201, first.text
    blob = os.path.join(flintd.data_dir, "code", "sha256", first.json()["sha256"])
    long_ago = time.time() - 86400
    os.utime(blob, (long_ago, long_ago))  # as if uploaded a day ago and never used
    again = flintd.api("POST", "/v1/code", body, headers={"X-Flint-Filename": "same.py"})
    assert again.status == 201 and again.json()["sha256"] == first.json()["sha256"]
    # collection measures a blob's grace from this time: the upload renewed it
    assert os.stat(blob).st_mtime > long_ago + 3600
