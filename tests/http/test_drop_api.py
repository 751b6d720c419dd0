"""Tests for DELETE /admin/tenants/{tenant}: one replicated entry drops every key, also after a restart."""

import pytest

from badkv.app import create_app
from badkv.cluster.node import Node
from badkv.config import Config


def fill(client, tenant, count):
    for i in range(count):
        assert client.post(f"/api/v1/keys/{tenant}/k{i}", data=b"value").status_code == 202


def test_drop_answers_202_and_every_key_of_the_tenant_is_gone(app, client):
    fill(client, "acme", 20)
    fill(client, "beta", 3)
    node = app.extensions["badkv_node"]
    before = node.store.applied_index
    response = client.delete("/admin/tenants/acme")
    assert response.status_code == 202 and response.get_json() == {"tenant": "acme", "dropped": True}
    assert node.store.applied_index == before + 1  # one log entry for the whole tenant
    assert client.get("/api/v1/keys/acme/k0").status_code == 404
    assert client.get("/api/v1/take/0", query_string={"tenant": "acme"}).get_json()["records"] == []
    assert client.get("/api/v1/keys/beta/k0").data == b"value"
    tenants = {t["tenant"]: t for t in client.get("/admin/tenants").get_json()["tenants"]}
    assert (tenants["acme"]["keys"], tenants["acme"]["bytes"]) == (0, 0)  # listed still: it has request counts
    assert tenants["beta"]["keys"] == 3


def test_a_dropped_tenant_can_be_written_again(client):
    fill(client, "acme", 2)
    client.delete("/admin/tenants/acme")
    assert client.post("/api/v1/keys/acme/k1", data=b"again").status_code == 202
    assert client.get("/api/v1/keys/acme/k1").data == b"again"
    assert client.get("/api/v1/keys/acme/k0").status_code == 404


@pytest.mark.parametrize("tenant, status", [("_auth", 403), ("a b", 400)])
def test_dropping_a_reserved_or_bad_tenant_is_refused(client, tenant, status):
    assert client.delete(f"/admin/tenants/{tenant}").status_code == status


@pytest.mark.parametrize("snapshot", [False, True])
def test_a_dropped_tenant_stays_dropped_after_a_restart(tmp_path, snapshot):
    config = Config.from_sources({"name": "t1", "data_dir": str(tmp_path / "t1")})
    node = Node(config)
    app = create_app(config, node)
    client = app.test_client()
    fill(client, "acme", 5)
    fill(client, "beta", 1)
    assert client.delete("/admin/tenants/acme").status_code == 202
    if snapshot:
        node.snapshots.take()
    node.stop()
    restarted = Node(config)
    try:
        restarted.advance(lambda: None)
        assert restarted.store.wait_for_index(node.store.applied_index, 5)
        assert restarted.store.get("acme", "k0") is None
        assert restarted.store.get("beta", "k0").value == b"value"
        assert {r.tenant for r in restarted.store.records()} == {"beta", "_dropped"}
    finally:
        restarted.stop()
