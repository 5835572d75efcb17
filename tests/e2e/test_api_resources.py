"""Environments, functions and routes through the flint CLI and the API:
create, read, update with revisions, delete, validation, references,
restarts and declarative apply."""
import hashlib
import json

import pytest

from conftest import http, wait_for


@pytest.fixture
def hello_py(tmp_path):
    p = tmp_path / "hello.py"
    p.write_text("def main(req):\n    return 'hello'\n")
    return p


def test_environment_life_cycle(flintd):
    r = flintd.cli("env", "create", "--name", "python", "--runtime", "python", "--poolsize", "3",
                   check=True)
    assert "environment 'python' created" in r.stdout
    r = flintd.cli("env", "get", "--name", "python", "-o", "json", check=True)
    env = json.loads(r.stdout)
    assert env["kind"] == "environment" and env["name"] == "python"
    assert env["spec"] == {"runtime": "python", "poolsize": 3}
    rev = env["revision"]
    r = flintd.cli("env", "list", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "RUNTIME", "POOLSIZE", "NETWORK", "REVISION"]
    assert lines[1].split()[:3] == ["python", "python", "3"]
    flintd.cli("env", "update", "--name", "python", "--poolsize", "1", "--network", "false",
               check=True)
    env = json.loads(flintd.cli("env", "get", "--name", "python", "-o", "json").stdout)
    assert env["spec"] == {"runtime": "python", "poolsize": 1, "network": False}
    assert env["revision"] > rev
    r = flintd.cli("env", "get", "--name", "python", "-o", "yaml", check=True)
    assert "runtime: python\n" in r.stdout
    flintd.cli("env", "delete", "--name", "python", check=True)
    r = flintd.cli("env", "get", "--name", "python")
    assert r.returncode == 1
    assert "environment 'python' does not exist" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--runtime", "cobol"], "spec.runtime: must be c, binary, python, node or custom, not 'cobol'"),
    (["--runtime", "python", "--poolsize", "100"], "spec.poolsize: must be a whole number from 0 to 64, not 100"),
    (["--runtime", "custom"], "spec.command: a custom runtime needs"),
    (["--runtime", "python", "--memory", "1T"], "spec.limits.memory"),
    (["--runtime", "python", "--cpus", "0"], "spec.limits.cpus: must be a number of cores"),
])
def test_invalid_environments_are_refused_with_the_field(flintd, args, message):
    r = flintd.cli("env", "create", "--name", "bad", *args)
    assert r.returncode == 1
    assert message in r.stderr
    assert "HTTP 400" in r.stderr


def test_cpu_limits_are_set_from_the_cli(flintd):
    flintd.cli("env", "create", "--name", "capped", "--runtime", "python", "--cpus", "0.5",
               check=True)
    env = json.loads(flintd.cli("env", "get", "--name", "capped", "-o", "json").stdout)
    assert env["spec"]["limits"] == {"cpus": 0.5}
    r = flintd.cli("env", "update", "--name", "capped", "--cpus", "half")
    assert r.returncode == 2 and "--cpus takes a number such as 0.5, not 'half'" in r.stderr


def test_bad_names_and_bodies(flintd):
    r = flintd.cli("env", "create", "--name", "Bad_Name", "--runtime", "python")
    assert r.returncode == 1 and "name: must be 1 to 63 lowercase" in r.stderr
    r = flintd.api("POST", "/v1/environments", body="{not json")
    assert r.status == 400 and r.json()["error"]["code"] == "bad_json"
    r = flintd.api("POST", "/v1/environments", body={"name": "x"})
    assert r.status == 400 and "spec: is required" in r.json()["error"]["message"]
    r = flintd.api("POST", "/v1/environments",
                   body={"name": "x", "spce": {"runtime": "python"}, "spec": {"runtime": "python"}})
    assert r.status == 400 and r.json()["error"]["message"].startswith("spce: is not a field")
    r = flintd.api("POST", "/v1/environments",
                   body={"kind": "function", "name": "x", "spec": {"runtime": "python"}})
    assert r.status == 400 and "kind: must be 'environment'" in r.json()["error"]["message"]
    # what a GET answered goes back as it is; a rename is refused
    created = flintd.api("POST", "/v1/environments", body={"name": "x", "spec": {"runtime": "c"}})
    assert created.status == 201, created.text
    got = flintd.api("GET", "/v1/environments/x").json()
    got["spec"]["poolsize"] = 1
    r = flintd.api("PUT", "/v1/environments/x", body=got)
    assert r.status == 200, r.text
    r = flintd.api("PUT", "/v1/environments/x", body=dict(got, name="y", revision=r.json()["revision"]))
    assert r.status == 400 and "cannot be renamed" in r.json()["error"]["message"]
    r = flintd.api("PATCH", "/v1/environments/x")
    assert r.status == 405
    r = flintd.api("GET", "/v1/gadgets")
    assert r.status == 404


def test_functions_need_their_environment_and_code(flintd, hello_py):
    r = flintd.cli("fn", "create", "--name", "hello", "--env", "nope", "--code", str(hello_py),
                   "--entrypoint", "hello.main")
    assert r.returncode == 1
    assert "spec.environment: environment 'nope' does not exist" in r.stderr
    flintd.cli("env", "create", "--name", "python", "--runtime", "python", check=True)
    flintd.cli("fn", "create", "--name", "hello", "--env", "python", "--code", str(hello_py),
               "--entrypoint", "hello.main", "--timeout", "5s", "--env-var", "GREETING=hi",
               check=True)
    fn = json.loads(flintd.cli("fn", "get", "--name", "hello", "-o", "json").stdout)
    digest = hashlib.sha256(hello_py.read_bytes()).hexdigest()
    assert fn["spec"]["code"] == {"sha256": digest, "filename": "hello.py"}
    assert fn["spec"]["env"] == {"GREETING": "hi"}
    assert fn["spec"]["functionTimeout"] == "5s"
    # code that was never uploaded is refused
    spec = dict(fn["spec"], code={"sha256": "0" * 64, "filename": "x.py"})
    r = flintd.api("POST", "/v1/functions", body={"name": "ghost", "spec": spec})
    assert r.status == 400 and "upload it with POST /v1/code first" in r.json()["error"]["message"]
    # an environment in use is not deleted
    r = flintd.cli("env", "delete", "--name", "python")
    assert r.returncode == 1
    assert "used by 1 function ('hello')" in r.stderr


def test_a_directory_as_code_says_to_pack_it(flintd, tmp_path):
    flintd.cli("env", "create", "--name", "python", "--runtime", "python", check=True)
    r = flintd.cli("fn", "create", "--name", "d", "--env", "python", "--code", str(tmp_path))
    assert r.returncode == 1 and "is a directory" in r.stderr and "tar czf" in r.stderr


def test_code_upload_is_content_addressed(flintd):
    data = b"print('hi')\n"
    r1 = flintd.api("POST", "/v1/code", body=data, headers={"X-Flint-Filename": "a.py"})
    r2 = flintd.api("POST", "/v1/code", body=data, headers={"X-Flint-Filename": "b.py"})
    assert r1.status == r2.status == 201
    assert r1.json()["sha256"] == r2.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert r1.json()["size"] == len(data)
    r = flintd.api("POST", "/v1/code", body=data)
    assert r.status == 400 and "X-Flint-Filename" in r.json()["error"]["message"]
    r = flintd.api("POST", "/v1/code", body=data, headers={"X-Flint-Filename": "../etc"})
    assert r.status == 400


def test_the_same_code_uploaded_at_once_is_stored_once(flintd):
    import os, threading
    data = os.urandom(2 << 20)
    statuses = []

    def upload():
        r = flintd.api("POST", "/v1/code", body=data, headers={"X-Flint-Filename": "big.bin"})
        statuses.append((r.status, r.json().get("sha256")))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [(201, hashlib.sha256(data).hexdigest())] * 8
    stored = [name for _, _, files in os.walk(os.path.join(flintd.data_dir, "code"))
              for name in files]
    assert stored == [hashlib.sha256(data).hexdigest()]  # no temporary file left


def test_a_partial_upload_left_by_a_kill_is_removed(flintd):
    import os
    flintd.kill()
    partial = os.path.join(flintd.data_dir, "code", "sha256", ".tmp-" + "0" * 64 + "-Ab12Cd")
    with open(partial, "wb") as f:
        f.write(b"half of it")
    flintd.start()
    assert not os.path.exists(partial)
    assert "removed partial uploads left by a flintd that died" in flintd.log()


def test_routes_need_their_function_and_a_valid_path(flintd, hello_py):
    r = flintd.cli("route", "create", "--name", "r", "--url", "/hello", "--function", "hello")
    assert r.returncode == 1
    assert "spec.target.function: function 'hello' does not exist" in r.stderr
    flintd.cli("env", "create", "--name", "python", "--runtime", "python", check=True)
    flintd.cli("fn", "create", "--name", "hello", "--env", "python", "--code", str(hello_py),
               check=True)
    r = flintd.cli("route", "create", "--name", "r", "--url", "hello", "--function", "hello")
    assert r.returncode == 1 and "spec.path: must start with '/'" in r.stderr
    flintd.cli("route", "create", "--name", "r", "--url", "/hello/{who}", "--function", "hello",
               "--method", "GET", check=True)
    r = flintd.cli("route", "list", check=True)
    assert "/hello/{who}" in r.stdout and "function:hello" in r.stdout and "GET" in r.stdout
    # fn get says what calls the function
    out = flintd.cli("fn", "get", "--name", "hello", check=True).stdout
    assert "\nroutes:     GET /hello/{who} (r)\n" in out


def test_stale_revisions_are_conflicts(flintd):
    r = flintd.api("POST", "/v1/environments", body={"name": "e", "spec": {"runtime": "node"}})
    assert r.status == 201
    rev = r.json()["revision"]
    r = flintd.api("POST", "/v1/environments", body={"name": "e", "spec": {"runtime": "node"}})
    assert r.status == 409 and "exists already" in r.json()["error"]["message"]
    r = flintd.cli("env", "create", "--name", "e", "--runtime", "node")
    assert r.returncode == 1 and "change it with 'update', or 'delete' it first" in r.stderr
    ok = flintd.api("PUT", "/v1/environments/e", body={"revision": rev, "spec": {"runtime": "node", "poolsize": 1}})
    assert ok.status == 200
    stale = flintd.api("PUT", "/v1/environments/e", body={"revision": rev, "spec": {"runtime": "c"}})
    assert stale.status == 409
    assert f"is at revision {ok.json()['revision']}, not {rev}" in stale.json()["error"]["message"]
    r = flintd.api("PUT", "/v1/environments/e", body={"spec": {"runtime": "c"}})
    assert r.status == 400 and "revision: is required" in r.json()["error"]["message"]
    r = flintd.api("PUT", "/v1/environments/none", body={"revision": 1, "spec": {"runtime": "c"}})
    assert r.status == 404
    r = flintd.api("DELETE", f"/v1/environments/e?revision={rev}")
    assert r.status == 409
    r = flintd.api("DELETE", "/v1/environments/e?revision=soon")
    assert r.status == 400 and "revision: must be a number" in r.json()["error"]["message"]
    # the revision is found among other parameters too
    r = flintd.api("DELETE", f"/v1/environments/e?pretty=1&revision={rev}")
    assert r.status == 409
    assert flintd.api("DELETE", f"/v1/environments/e?revision={ok.json()['revision']}").status == 200
    assert flintd.api("DELETE", "/v1/environments/e").status == 404


def test_restart_keeps_every_resource(flintd, hello_py):
    flintd.cli("env", "create", "--name", "python", "--runtime", "python", check=True)
    flintd.cli("fn", "create", "--name", "hello", "--env", "python", "--code", str(hello_py),
               check=True)
    flintd.cli("route", "create", "--name", "hello", "--url", "/hello", "--function", "hello",
               check=True)

    def stored():
        # what the store holds; "status" is the executor's live view and is
        # rebuilt after a restart (a cached build is found again, briefly "running")
        out = {}
        for kind in ("env", "fn", "route"):
            items = json.loads(flintd.cli(kind, "list", "-o", "json", check=True).stdout)
            out[kind] = [{k: v for k, v in item.items() if k != "status"} for item in items]
        return out

    before = stored()
    flintd.kill()  # SIGKILL: what was acknowledged must still be there
    flintd.start()
    after = stored()
    assert before == after
    assert [r["name"] for r in after["route"]] == ["hello"]
    # and it is served again
    wait_for(lambda: flintd.api("GET", "/v1/functions/hello").json()["status"]["build"] == "ok",
             what="the function's build to be found again")
    r = http("GET", flintd.router_url + "/hello")
    assert (r.status, r.text) == (200, "hello")


def test_a_second_daemon_on_the_same_directory_is_refused(flintd, flintd_factory):
    import subprocess, os
    from conftest import BIN, free_ports
    ports = free_ports(2)
    r = subprocess.run([os.path.join(BIN, "flintd"), "--data", flintd.data_dir,
                        "--api", f"127.0.0.1:{ports[0]}", "--router", f"127.0.0.1:{ports[1]}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "in use by another flintd" in r.stderr


def test_status_names_the_store(flintd):
    r = flintd.cli("status", "-o", "json", check=True)
    st = json.loads(r.stdout)
    assert st["store"]["backend"].startswith("sqlite ")
    assert st["listeners"]["api"].endswith(str(flintd.api_port))
    assert st["sandbox"]["mode"].startswith("bwrap")  # bubblewrap is installed by install-deps
    assert "msg=\"sandbox\" mode=bwrap" in flintd.log()


def test_apply_is_idempotent_and_prunes(flintd, tmp_path, hello_py):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "hello.py").write_text(hello_py.read_text())
    (specs / "all.yaml").write_text(
        "kind: environment\nname: python\nspec:\n  runtime: python\n  poolsize: 2\n"
        "---\nkind: function\nname: hello\nspec:\n  environment: python\n  code: hello.py\n"
        "  entrypoint: hello.main\n"
        "---\nkind: route\nname: hello\nspec:\n  path: /hello\n  methods: [GET]\n"
        "  target: {function: hello}\n")
    r = flintd.cli("apply", "-f", str(specs), check=True)
    assert r.stdout.splitlines() == ["environment/python created", "function/hello created",
                                     "route/hello created"]
    r = flintd.cli("apply", "-f", str(specs), check=True)
    assert r.stdout.splitlines() == ["environment/python unchanged", "function/hello unchanged",
                                     "route/hello unchanged"]
    (specs / "hello.py").write_text("def main(req):\n    return 'hello again'\n")
    r = flintd.cli("apply", "-f", str(specs), check=True)
    assert "function/hello updated" in r.stdout and "environment/python unchanged" in r.stdout
    flintd.cli("env", "create", "--name", "extra", "--runtime", "node", check=True)
    r = flintd.cli("apply", "-f", str(specs), "--prune", "--dry-run", check=True)
    assert "environment/extra would be deleted" in r.stdout
    r = flintd.cli("apply", "-f", str(specs), "--prune", check=True)
    assert "environment/extra deleted" in r.stdout
    assert "extra" not in flintd.cli("env", "list", check=True).stdout
    # what get -o yaml prints applies back as it is
    saved = tmp_path / "saved.yaml"
    saved.write_text(flintd.cli("fn", "get", "--name", "hello", "-o", "yaml", check=True).stdout)
    r = flintd.cli("apply", "-f", str(saved), check=True)
    assert r.stdout.splitlines() == ["function/hello unchanged"]
    (specs / "all.yaml").write_text("kind: function\nname: broken\nspec: {environment: nope, code: hello.py}\n")
    r = flintd.cli("apply", "-f", str(specs))
    assert r.returncode == 1 and "environment 'nope' does not exist" in r.stderr


def test_the_hello_example_applies(flintd):
    import os
    from conftest import ROOT
    r = flintd.cli("apply", "-f", os.path.join(ROOT, "examples", "hello"), check=True)
    assert r.stdout.count(" created") == 12
    r = flintd.cli("apply", "-f", os.path.join(ROOT, "examples", "hello"), check=True)
    assert r.stdout.count(" unchanged") == 12
