"""Spec and status apart, through a real flintd: what Flint observes of a
resource (a build finishing, instances starting) is never a new revision of
it, and a status sent back in a PUT changes nothing Flint runs."""
import json

from conftest import wait_for

SPECS = """
kind: environment
name: python
spec: {runtime: python, poolsize: 1}
---
kind: function
name: steady
spec: {environment: python, code: steady.py, entrypoint: steady.main}
"""


def deploy(flintd, tmp_path):
    d = tmp_path / "app"
    d.mkdir()
    (d / "steady.py").write_text("def main(req):\n    return 'steady'\n")
    (d / "app.yaml").write_text(SPECS)
    flintd.cli("apply", "-f", str(d / "app.yaml"), check=True)


def get(flintd):
    r = flintd.api("GET", "/v1/functions/steady")
    assert r.status == 200, r.text
    return r.json()


def invoke(flintd):
    r = flintd.api("POST", "/v1/functions/steady/invoke", "")
    assert (r.status, r.text) == (200, "steady")


def running(status):
    """The ids of the instances serving, none of them draining."""
    assert not any(i.get("draining") for i in status["instances"]), status
    return sorted(i["id"] for i in status["instances"])


def test_status_changes_make_no_revision_and_restart_nothing(flintd, tmp_path):
    deploy(flintd, tmp_path)
    first = get(flintd)
    revision = first["revision"]
    # the build finishes and an instance starts: the status moves, the
    # resource stays at the revision the user made
    wait_for(lambda: get(flintd)["status"].get("build") == "ok", what="the build")
    invoke(flintd)
    fn = get(flintd)
    assert fn["revision"] == revision and fn["updatedAt"] == first["updatedAt"]
    assert fn["status"]["instanceStarts"] >= 1
    instances, starts = running(fn["status"]), fn["status"]["instanceStarts"]
    assert instances
    for _ in range(3):
        invoke(flintd)
    fn = get(flintd)
    assert fn["revision"] == revision
    assert running(fn["status"]) == instances
    assert fn["status"]["instanceStarts"] == starts
    assert fn["status"]["invocations"] >= 4


def test_a_put_carrying_a_status_changes_nothing_flint_observes(flintd, tmp_path):
    deploy(flintd, tmp_path)
    wait_for(lambda: get(flintd)["status"].get("build") == "ok", what="the build")
    invoke(flintd)
    fn = get(flintd)
    instances, starts = running(fn["status"]), fn["status"]["instanceStarts"]
    # what a GET answered goes back as it is, then with a status of its own
    for status in (fn["status"], {"build": "failed", "instances": [], "instanceStarts": 0}):
        r = flintd.api("PUT", "/v1/functions/steady", body=dict(fn, status=status))
        assert r.status == 200, r.text
        assert r.json()["revision"] == fn["revision"]
        invoke(flintd)
        now = get(flintd)
        assert now["revision"] == fn["revision"] and now["updatedAt"] == fn["updatedAt"]
        assert now["status"]["build"] == "ok"
        assert running(now["status"]) == instances
        assert now["status"]["instanceStarts"] == starts
    # `flint fn update` with what is there already writes nothing either
    r = flintd.cli("fn", "update", "--name", "steady", "--entrypoint", "steady.main", check=True)
    assert "function 'steady' updated" in r.stdout
    assert get(flintd)["revision"] == fn["revision"]
    # the store holds no status: a restart answers the same spec at the same revision
    before = {k: v for k, v in get(flintd).items() if k != "status"}
    flintd.kill()
    flintd.start()
    assert {k: v for k, v in get(flintd).items() if k != "status"} == before


def test_the_status_of_every_kind_is_computed_not_stored(flintd, tmp_path):
    deploy(flintd, tmp_path)
    r = flintd.api("POST", "/v1/routes",
                   body={"name": "steady", "spec": {"path": "/steady",
                                                    "target": {"function": "steady"}}})
    assert r.status == 201, r.text
    for plural in ("environments", "routes"):
        items = flintd.api("GET", f"/v1/{plural}").json()["items"]
        assert items and all(item["status"] == {} for item in items)
    # a status posted with a new resource is not kept either
    r = flintd.api("POST", "/v1/environments",
                   body={"name": "other", "spec": {"runtime": "node"}, "status": {"x": 1}})
    assert r.status == 201 and r.json()["status"] == {}
    assert flintd.api("GET", "/v1/environments/other").json()["status"] == {}
