"""What flintd does with a store it cannot trust: a file damaged in the
middle is refused at start (exit 1, the file named, what to do said) instead
of a daemon that answers 503 forever; an empty store beside uploaded code is
a loud warning; a store URI names its backend, and an unknown one is named
back with the ones there are."""
import os
import sqlite3

from conftest import wait_for


def make_store_big(path, rows=3000):
    """Fill the store with valid rows, so that its middle pages hold data."""
    db = sqlite3.connect(path)
    value = '{"spec": {"filler": "' + "x" * 1000 + '"}, "status": {}}'
    with db:
        for i in range(rows):
            db.execute(
                "INSERT INTO resources(kind, name, value, revision, created, updated)"
                " VALUES ('filler', ?, ?, 1, 0, 0)", (f"f{i:05d}", value))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def test_a_store_damaged_in_the_middle_is_refused_at_start(flintd):
    store = os.path.join(flintd.data_dir, "flint.db")
    assert flintd.stop() == 0
    make_store_big(store)
    size = os.path.getsize(store)
    assert size > 2 << 20
    with open(store, "r+b") as f:  # pages in the middle overwritten
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\x5a" * (16 * 4096))
    flintd.start(wait=False)
    code = flintd.proc.wait(timeout=60)
    log = flintd.log()
    assert code == 1, log
    assert store in log and "is corrupt" in log, log
    assert "backup" in log and ".recover" in log, log  # what to do
    assert os.path.getsize(store) == size  # refused untouched


def test_an_empty_store_beside_uploaded_code_is_a_warning(flintd_factory):
    fresh = flintd_factory("fresh")
    assert "THE STORE HOLDS NO FUNCTIONS" not in fresh.log()
    lost = flintd_factory("lost")
    assert lost.stop() == 0
    code = os.path.join(lost.data_dir, "code", "sha256")
    with open(os.path.join(code, "a" * 64), "wb") as f:
        f.write(b"int main(void) { return 0; }\n")
    for name in ("flint.db", "flint.db-wal", "flint.db-shm"):
        try:
            os.unlink(os.path.join(lost.data_dir, name))
        except FileNotFoundError:
            pass
    lost.start()
    wait_for(lambda: "THE STORE HOLDS NO FUNCTIONS" in lost.log(), what="the warning")
    assert "code_blobs=1" in lost.log()
    assert lost.api("GET", "/v1/functions").status == 200  # it still serves


def test_the_store_uri_picks_the_backend(flintd_factory, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    f = flintd_factory("uri", extra_args=("--store", f"sqlite:{elsewhere}"))
    assert os.path.exists(elsewhere / "flint.db")
    assert f"sqlite {elsewhere}/flint.db" in f.api("GET", "/v1/status").text
    assert f.stop() == 0
    f.extra_args = ["--store", "nats://127.0.0.1:1"]
    f.start(wait=False)
    assert f.proc.wait(timeout=60) == 1
    assert "unknown store 'nats://127.0.0.1:1'" in f.log()
    assert "sqlite:PATH" in f.log()
