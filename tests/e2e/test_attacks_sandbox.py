"""Hostile functions against a real flintd: each test performs an attack from
inside an instance (or through a function's spec) and shows that it fails.

None of them changes a host setting: where an attack would write one, it
writes back the value that is already there, so that success would show
without changing anything.
"""
import glob
import io
import json
import os
import secrets
import socket
import stat
import tarfile

import pytest

from conftest import wait_for
from test_executor import deploy, function_status, invoke

UID_BASE = 2000000000  # FL_SANDBOX_UID_BASE


def sandboxed(flintd):
    mode = flintd.api("GET", "/v1/status").json()["sandbox"]["mode"]
    if not mode.startswith("bwrap"):
        pytest.fail(f"these attacks need the real sandbox, and it is not usable here: {mode}")
    return mode


def instance_pids(flintd):
    """The processes of this flintd's instances, from their cgroups (named
    i<flintd pid>-<n>): never anything else that runs on the machine."""
    pids = set()
    pattern = f"i{flintd.proc.pid}-*"
    for parent in ("/sys/fs/cgroup/flint", "/sys/fs/cgroup/pids/flint"):
        for group in glob.glob(os.path.join(parent, pattern)):
            try:
                with open(os.path.join(group, "cgroup.procs")) as f:
                    pids.update(int(line) for line in f if line.strip())
            except FileNotFoundError:
                pass
    return pids


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode("utf-8", "replace")


def deploy_python(flintd, tmp_path, name, code, network=False, env=None):
    docs = f"""
kind: environment
name: py-{name}
spec: {{runtime: python, poolsize: 0, network: {json.dumps(network)}}}
---
kind: function
name: {name}
spec: {{environment: py-{name}, code: {name}.py, entrypoint: {name}.main}}
"""
    if env is not None:
        docs = docs.rstrip("}\n") + ", env: " + json.dumps(env) + "}\n"
    deploy(flintd, tmp_path, docs, {f"{name}.py": code})


def test_instances_run_as_unprivileged_host_uids(flintd, tmp_path):
    sandboxed(flintd)
    code = "import time\ndef main(req):\n    return 'up'\n"
    deploy_python(flintd, tmp_path, "whoami", code)
    deploy_python(flintd, tmp_path, "whoami-online", code, network=True)
    assert invoke(flintd, "whoami").text == "up"
    assert invoke(flintd, "whoami-online").text == "up"
    runtimes = {}
    for pid in instance_pids(flintd):
        try:
            status, line = proc_status(pid), cmdline(pid)
        except FileNotFoundError:
            continue
        uids = [int(u) for u in status["Uid"]]
        gids = [int(g) for g in status["Gid"]]
        if "flint-sandbox" in line or "slirp4netns" in line:
            continue  # the launcher waiting on a networked instance, its network
        assert min(uids) >= UID_BASE and min(gids) >= UID_BASE, (pid, line, uids, gids)
        assert status["CapEff"] == ["0000000000000000"], (pid, line, status["CapEff"])
        assert status["NoNewPrivs"] == ["1"], (pid, line)
        if not line.startswith("bwrap "):  # bwrap loads the filter for what it runs
            assert status["Seccomp"] == ["2"], (pid, line)
        if "flint_runtime.py" in line:
            runtimes[pid] = uids[0]
    # both instances were seen (bwrap and the runtime under it), each
    # instance with a uid of its own
    assert len(set(runtimes.values())) == 2, runtimes


def test_a_function_cannot_write_kernel_settings(flintd, tmp_path):
    sandboxed(flintd)
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    # the attack of a function that owned /proc/sys: a core_pattern that
    # pipes to a program runs it as host root; this one writes back the
    # value already there, so that even success would change nothing
    code = ("def main(req):\n"
            "    value = open('/proc/sys/kernel/core_pattern').read()\n"
            "    out = []\n"
            "    for path in ('/proc/sys/kernel/core_pattern', '/proc/sysrq-trigger'):\n"
            "        try:\n"
            "            with open(path, 'w') as f:\n"
            "                f.write(value if 'core' in path else '')\n"
            "            out.append('wrote ' + path)\n"
            "        except OSError as e:\n"
            "            out.append(type(e).__name__)\n"
            "    return ' '.join(out)\n")
    deploy_python(flintd, tmp_path, "sysctl", code)
    r = invoke(flintd, "sysctl")
    assert r.status == 200, r.text
    assert "wrote" not in r.text, r.text
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before


SYSCALLS = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
# x86_64 numbers, with arguments that would be valid for an unconfined root
CALLS = {
    'unshare(CLONE_NEWUSER)': (272, 0x10000000),
    'unshare(CLONE_NEWNS)': (272, 0x00020000),
    'setns': (308, 0, 0),
    'ptrace(PTRACE_TRACEME)': (101, 0, 0, 0, 0),
    'keyctl(GET_KEYRING_ID)': (250, 0, -3, 0),
    'add_key': (248, 0, 0, 0, 0, 0),
    'bpf(PROG_LOAD)': (321, 5, 0, 0),
    'perf_event_open': (298, 0, 0, -1, -1, 0),
    'userfaultfd': (323, 0),
    'mount': (165, 0, 0, 0, 0, 0),
    'umount2': (166, 0, 0),
    'init_module': (175, 0, 0, 0),
    'finit_module': (313, -1, 0, 0),
    'kexec_load': (246, 0, 0, 0, 0),
    'clock_settime': (227, 0, 0),
    'settimeofday': (164, 0, 0),
    'open_by_handle_at': (304, -1, 0, 0),
    'io_uring_setup': (425, 1, 0),
    'clone(CLONE_NEWUSER)': (56, 0x10000000 | 17, 0, 0, 0, 0),
    'clone3': (435, 0, 0),
}
def main(req):
    out = {}
    for name, (nr, *args) in CALLS.items():
        ctypes.set_errno(0)
        rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        if rc == 0 and name.startswith('clone('):
            os._exit(0)  # a child got made: end it at once
        out[name] = errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())) if rc == -1 else 'ok'
    return out
"""


def test_the_seccomp_filter_refuses_what_functions_do_not_need(flintd, tmp_path):
    sandboxed(flintd)
    deploy_python(flintd, tmp_path, "syscalls", SYSCALLS)
    r = invoke(flintd, "syscalls")
    assert r.status == 200, r.text
    results = r.json()
    for name, result in results.items():
        expected = "ENOSYS" if name == "clone3" else "EPERM"
        assert result == expected, (name, result)


def test_loader_variables_are_refused(flintd, tmp_path):
    sandboxed(flintd)
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH", "GLIBC_TUNABLES", "PYTHONPATH",
                 "NODE_OPTIONS", "FLINT_LISTEN"):
        with pytest.raises(AssertionError) as refused:
            deploy_python(flintd, tmp_path, "preload", "def main(req):\n    return 'x'\n",
                          env={name: "/tmp/evil.so"})
        assert f"'{name}' cannot be set" in str(refused.value), str(refused.value)


def test_a_functions_variables_never_leave_its_sandbox(flintd, tmp_path):
    sandboxed(flintd)
    marker = "flint-marker-" + secrets.token_hex(16)
    env = {f"VAR_{i}": "x" * 200 for i in range(250)}  # used to overflow bwrap's arguments
    env["MARKER"] = marker
    code = ("import os, time\ndef main(req):\n"
            "    time.sleep(float(req.body or 0))\n"
            "    return os.environ['MARKER'] + ' ' + str(len(os.environ))\n")
    deploy_python(flintd, tmp_path, "secretive", code, env=env)
    r = invoke(flintd, "secretive")
    assert r.status == 200, r.text
    value, count = r.text.split()
    assert value == marker and int(count) >= 251
    # every process on the machine: no argument list holds it, and no
    # process outside the sandbox (the host's uids) has it in its environment
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert marker.encode() not in f.read(), cmdline(pid)
            if min(int(u) for u in proc_status(pid)["Uid"]) >= UID_BASE:
                continue  # an instance: its own variables are its business
            with open(f"/proc/{pid}/environ", "rb") as f:
                assert marker.encode() not in f.read(), cmdline(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone, or not the host's (a container's own init)


def test_a_function_cannot_reach_its_socket_or_leave_setuid_files(flintd, tmp_path):
    sandboxed(flintd)
    code = ("import os, shutil\ndef main(req):\n"
            "    out = []\n"
            "    # replace the socket flintd connects to with a link to a host socket\n"
            "    for d in ('/run/flint', '/run', '/code', '/'):\n"
            "        try:\n"
            "            os.symlink('/run/systemd/private', os.path.join(d, 's'))\n"
            "            out.append('linked in ' + d)\n"
            "        except OSError as e:\n"
            "            out.append(type(e).__name__)\n"
            "    # a setuid copy of a shell wherever it can write\n"
            "    for d in ('/tmp', '/code', '/run'):\n"
            "        try:\n"
            "            p = os.path.join(d, 'rootshell')\n"
            "            shutil.copy('/bin/sh', p)\n"
            "            os.chmod(p, 0o4755)\n"
            "            out.append('setuid in ' + d + ' ' + str(os.stat(p).st_mode & 0o4000))\n"
            "        except OSError as e:\n"
            "            out.append(type(e).__name__)\n"
            "    return ' '.join(out)\n")
    deploy_python(flintd, tmp_path, "squatter", code)
    r = invoke(flintd, "squatter")
    assert r.status == 200, r.text
    assert "linked" not in r.text, r.text
    # the private /tmp is the one writable place, on no host disk (nosuid
    # besides); a second call still reaches the function, not a host socket
    assert "setuid in /code" not in r.text and "setuid in /run" not in r.text, r.text
    assert invoke(flintd, "squatter").status == 200
    data = flintd.data_dir
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(data, "flint.db")).st_mode) == 0o600
    run = os.path.join(data, "run")
    if os.path.isdir(run):
        assert stat.S_IMODE(os.stat(run).st_mode) == 0o700
    for root, dirs, files in os.walk(data):
        for name in files + dirs:
            st = os.lstat(os.path.join(root, name))
            assert not (st.st_mode & (stat.S_ISUID | stat.S_ISGID)) or stat.S_ISDIR(st.st_mode), \
                os.path.join(root, name)
            assert st.st_uid == 0 or st.st_uid >= UID_BASE, os.path.join(root, name)


def test_the_private_tmp_is_bounded(flintd, tmp_path):
    sandboxed(flintd)
    code = ("def main(req):\n"
            "    chunk = b'x' * (1 << 20)\n"
            "    written = 0\n"
            "    try:\n"
            "        with open('/tmp/fill', 'wb') as f:\n"
            "            for _ in range(1024):\n"
            "                f.write(chunk)\n"
            "                f.flush()\n"
            "                written += 1\n"
            "    except OSError as e:\n"
            "        return type(e).__name__ + ' after ' + str(written)\n"
            "    return 'wrote a GiB'\n")
    deploy_python(flintd, tmp_path, "filler", code)
    r = invoke(flintd, "filler")
    assert r.status == 200, r.text
    assert r.text.startswith("OSError after "), r.text
    assert int(r.text.split()[-1]) <= 64


def test_network_access_is_outbound_only(flintd, tmp_path):
    sandboxed(flintd)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    code = ("import socket\ndef main(req):\n"
            "    port = int(req.body)\n"
            "    out = {'interfaces': sorted(l.split(':')[0].strip() for l in\n"
            "                                open('/proc/net/dev').readlines()[2:]),\n"
            "           'default_route': any(l.split()[1] == '00000000' for l in\n"
            "                                open('/proc/net/route').readlines()[1:])}\n"
            "    for host in ('127.0.0.1', '10.0.2.2'):\n"
            "        try:\n"
            "            socket.create_connection((host, port), timeout=5).close()\n"
            "            out[host] = 'connected'\n"
            "        except OSError as e:\n"
            "            out[host] = type(e).__name__\n"
            "    return out\n")
    deploy_python(flintd, tmp_path, "online", code, network=True)
    deploy_python(flintd, tmp_path, "offline", code, network=False)
    try:
        online = invoke(flintd, "online", str(port))
        assert online.status == 200, online.text
        online = online.json()
        # a network of its own, with a way out...
        assert online["interfaces"] == ["lo", "tap0"] and online["default_route"], online
        # ...but the host's loopback (flintd's API and router, local services)
        # is out of reach, by its own address and by the gateway's
        assert online["127.0.0.1"] != "connected" and online["10.0.2.2"] != "connected", online
        offline = invoke(flintd, "offline", str(port)).json()
        assert offline["interfaces"] == ["lo"] and not offline["default_route"], offline
        assert offline["127.0.0.1"] != "connected" and offline["10.0.2.2"] != "connected"
    finally:
        listener.close()


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.n = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.n)
        b[:k] = bytes(k)
        self.n -= k
        return k


def _tree_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def test_an_archive_bomb_fills_the_build_sandbox_not_the_disk(flintd, tmp_path):
    sandboxed(flintd)
    # 6 MB of gzip that unpacks to 1.4 GiB, more than a build's /tmp holds
    # (in files each under the 1 GiB file size limit)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as t:
        for name in ("bomb1", "bomb2"):
            info = tarfile.TarInfo(name)
            info.size = 700 << 20
            t.addfile(info, io.BufferedReader(_Zeros(info.size), 1 << 20))
    deploy(flintd, tmp_path, """
kind: environment
name: py-bomb
spec: {runtime: python, poolsize: 0}
---
kind: function
name: bomb
spec: {environment: py-bomb, code: bomb.tar.gz, entrypoint: bomb.main}
""", {"bomb.tar.gz": buf.getvalue()})
    # unpacking 1.4 GiB takes a while where CPU is scarce: the build's end is
    # waited for, not the queue's patience with a call
    wait_for(lambda: function_status(flintd, "bomb")["build"] in ("ok", "failed"), timeout=600,
             what="the build to fail")
    r = invoke(flintd, "bomb")
    assert r.status == 500, r.text
    error = r.json()["error"]
    assert error["code"] == "build_failed", error
    # tar's words for a full file system
    assert "bomb2: Wrote only" in error["message"] or "No space left" in error["message"], error

    # what reached the host's disk is the archive and the log, not its content
    assert _tree_bytes(flintd.data_dir) < 64 << 20


STRAYS = {
    "python": ("stray.py", "stray.main",
               "import subprocess\ndef main(req):\n"
               "    subprocess.Popen(['sleep', '{n}'], start_new_session=True,\n"
               "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
               "    return 'left one'\n"),
    "node": ("stray.js", "stray.main",
             "const cp = require('child_process');\n"
             "module.exports.main = async () => {\n"
             "  cp.spawn('sleep', ['{n}'], {detached: true, stdio: 'ignore'}).unref();\n"
             "  return 'left one';\n};\n"),
    "binary": ("stray.sh", None,
               "#!/bin/sh\nsetsid sleep {n} >/dev/null 2>&1 </dev/null &\necho left one\n"),
    "c": ("stray.c", None,
          "#include <flint/fn.h>\n#include <unistd.h>\n#include <fcntl.h>\n"
          "int handler(const struct flint_request *req, struct flint_response *resp)\n{\n"
          "    if (fork() == 0) {\n"
          "        setsid();\n"
          "        int null = open(\"/dev/null\", O_RDWR);\n"
          "        dup2(null, 0); dup2(null, 1); dup2(null, 2);\n"
          "        execlp(\"sleep\", \"sleep\", \"{n}\", (char *)0);\n"
          "        _exit(1);\n"
          "    }\n"
          "    flint_response_printf(resp, \"left one\");\n    return 0;\n}\n"),
}


@pytest.mark.parametrize("runtime", sorted(STRAYS))
def test_processes_a_call_leaves_running_end_with_it(flintd, tmp_path, runtime):
    sandboxed(flintd)
    seconds = str(4000000 + secrets.randbelow(1000000))  # names this test's sleep alone
    filename, entrypoint, code = STRAYS[runtime]
    spec = f"environment: s-{runtime}, code: {filename}"
    if entrypoint:
        spec += f", entrypoint: {entrypoint}"
    deploy(flintd, tmp_path, f"""
kind: environment
name: s-{runtime}
spec: {{runtime: {runtime}, poolsize: 0, network: false}}
---
kind: function
name: stray-{runtime}
spec: {{{spec}}}
""", {filename: code.replace("{n}", seconds)})

    def strays():
        found = []
        for pid in instance_pids(flintd):
            try:
                if f"sleep {seconds}" in cmdline(pid):
                    found.append(pid)
            except FileNotFoundError:
                pass
        return found

    r = invoke(flintd, f"stray-{runtime}")
    assert (r.status, r.text.strip()) == (200, "left one"), r.text
    # the daemon it started outlives the call for a moment at most: once no
    # call runs on the instance, flintd ends what its calls left
    wait_for(lambda: not strays(), timeout=30, what="the stray process to be ended")
    wait_for(lambda: "its calls left running" in flintd.log(), what="the executor's note")
    # the instance itself lives on and answers; its next stray ends likewise
    assert invoke(flintd, f"stray-{runtime}").status == 200
    wait_for(lambda: flintd.log().count("its calls left running") == 2,
             what="the second stray to be ended")
    assert not strays()


def test_a_functions_terminal_escapes_reach_no_terminal(flintd, tmp_path):
    # retitle the window, clear the screen, C1 CSI: shown, never sent raw
    code = ("def main(req):\n"
            "    print('before \\x1b]0;pwned\\x07\\x1b[2J\\u009b31m\\x7f after \u2018\u00e9\u2019', flush=True)\n"
            "    return 'printed'\n")
    deploy_python(flintd, tmp_path, "escapes", code)
    assert invoke(flintd, "escapes").text == "printed"
    out = wait_for(lambda: [line for line in flintd.cli("fn", "logs", "--name", "escapes",
                                                        check=True).stdout.splitlines()
                            if "before" in line] or None, what="the log line")
    line = out[0]
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in line), repr(line)
    # and text that is not a control goes through as it is
    assert line.endswith(r"before \x1b]0;pwned\x07\x1b[2J\xc2\x9b31m\x7f after" + " \u2018\u00e9\u2019"), \
        repr(line)


def test_the_operator_chooses_the_sandbox_uid_range(flintd_factory, tmp_path):
    flintd = flintd_factory(extra_args=["--sandbox-uids", "1500000000:64"])
    sandboxed(flintd)
    deploy_python(flintd, tmp_path, "ranged", "def main(req):\n    return 'up'\n")
    assert invoke(flintd, "ranged").text == "up"
    uids = set()
    for pid in instance_pids(flintd):
        try:
            if "flint_runtime.py" in cmdline(pid):
                uids.add(int(proc_status(pid)["Uid"][0]))
        except FileNotFoundError:
            pass
    assert uids and all(1500000000 <= u < 1500000064 for u in uids), uids
    import subprocess
    from conftest import BIN
    for bad in ("0:64", "1500000000", "1500000000:1", "x:y", "4294967200:65536"):
        r = subprocess.run([os.path.join(BIN, "flintd"), "--sandbox-uids", bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "--sandbox-uids takes BASE:COUNT" in r.stderr, (bad, r)
