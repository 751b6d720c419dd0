"""A data dir written by an earlier release still opens, with every record as it was.

The fixture in ``tests/fixtures/old-datadir/old1/`` and the state it held,
``tests/fixtures/old_datadir_expected.json``, were written by
``tests/fixtures/make_old_datadir.py`` (its docstring names the release).
Each test opens a copy, never the fixture itself, through the public entry
points only: a Config and the Flask app, as a node process builds them.
"""

import base64
import json
import shutil
from pathlib import Path

import pytest

from badkv.app import create_app
from badkv.config import Config

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "old_datadir_expected.json").read_text())


def _key(record: dict) -> tuple[str, str]:
    return record["tenant"], record["name"]


@pytest.fixture
def client(tmp_path):
    """The test client of a node opened on a copy of the fixture data dir."""
    data_dir = tmp_path / EXPECTED["node"]
    shutil.copytree(FIXTURES / "old-datadir" / EXPECTED["node"], data_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    cluster = ",".join(f"{name}={address}" for name, address in EXPECTED["cluster"])
    config = Config.from_sources({"name": meta["node"], "listen": EXPECTED["cluster"][0][1], "cluster": cluster,
                                  "cluster_id": meta["cluster_id"], "data_dir": str(data_dir)})
    app = create_app(config)
    try:
        yield app.test_client()
    finally:
        app.extensions["badkv_node"].stop()


def test_fixture_holds_live_keys_and_tombstones():
    """The expected state covers what the test means to check (a regenerated fixture must too)."""
    records = EXPECTED["records"]
    assert {"acme", "globex"} <= {record["tenant"] for record in records}
    assert any(record["deleted"] for record in records) and any(not record["deleted"] for record in records)
    assert len({_key(record) for record in records}) == len(records)
    assert list((FIXTURES / "old-datadir" / EXPECTED["node"] / "snap").glob("*.snap"))
    assert list((FIXTURES / "old-datadir" / EXPECTED["node"] / "wal").glob("*.wal"))


def test_every_key_reads_back_as_written(client):
    for record in EXPECTED["records"]:
        response = client.get(f"/api/v1/keys/{record['tenant']}/{record['name']}")
        if record["deleted"]:
            assert response.status_code == 404, record
            continue
        assert response.status_code == 200, record
        assert response.data == record["value"].encode("utf-8"), record
        assert response.headers["X-Badkv-Timestamp"] == str(record["timestamp"]), record
        assert response.headers["X-Badkv-Revision"] == str(record["revision"]), record


def test_stats_count_the_recovered_state(client):
    stats = client.get("/admin/stats").get_json()
    assert stats["applied_index"] >= EXPECTED["applied_index"]
    assert stats["applied_revision"] >= EXPECTED["applied_revision"]
    assert stats["term"] > EXPECTED["term"]  # a restarted leader never reuses a term
    tombstones = sum(record["deleted"] for record in EXPECTED["records"])
    assert stats["tombstones"] == tombstones
    assert stats["keys"] == len(EXPECTED["records"]) - tombstones
    assert stats["storage"]["in_memory"] is False


def test_take_feed_holds_every_record_tombstones_included(client):
    response = client.get("/api/v1/take/0", query_string={"limit": 10000})
    assert response.status_code == 200
    taken = {_key(record): {**record, "value": base64.b64decode(record["value"]).decode("utf-8")}
             for record in response.get_json()["records"]}
    assert taken == {_key(record): record for record in EXPECTED["records"]}


def test_a_new_write_gets_a_later_revision(client):
    response = client.post("/api/v1/keys/acme/written-after-reopening", data=b"new")
    assert response.status_code == 202
    revision = int(response.headers["X-Badkv-Revision"])
    assert revision > EXPECTED["applied_revision"]
    assert revision > max(record["revision"] for record in EXPECTED["records"])
    response = client.get("/api/v1/keys/acme/written-after-reopening")
    assert (response.status_code, response.data) == (200, b"new")
    assert int(response.headers["X-Badkv-Revision"]) == revision
