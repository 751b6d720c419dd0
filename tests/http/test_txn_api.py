"""Tests for POST /api/v1/txn/{tenant}: the answer, one log entry per transaction, every refusal, auth and
quotas, and the txn entry surviving a restart (WAL replay and snapshot)."""

import base64
import json

import pytest

from badkv.app import create_app
from badkv.cluster.node import Node
from badkv.config import Config
from badkv.records import Record
from badkv.txn import MAX_BODY_BYTES, MAX_OPERATIONS


def txn(client, body, tenant="acme", **kwargs):
    return client.post(f"/api/v1/txn/{tenant}", json=body, **kwargs)


def put(name, value="v"):
    return {"op": "put", "name": name, "value": value}


def test_a_transaction_is_one_log_entry_and_one_revision(app, client):
    node = app.extensions["badkv_node"]
    before = node.store.applied_index
    answer = txn(client, {"compare": [{"name": "a", "target": "exists", "exists": False}],
                          "success": [put("a", "1"), put("b", "1"), {"op": "get", "name": "a"}]})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["succeeded"] is True and node.store.applied_index == before + 1
    assert body["results"][2] == {"op": "get", "name": "a", "found": True, "value": "MQ==", "revision": body["revision"]}
    assert {r["revision"] for r in client.get("/api/v1/keys/acme").get_json()["records"]} == {body["revision"]}
    assert client.get("/api/v1/keys/acme/b").headers["X-Badkv-Revision"] == str(body["revision"])


def test_compares_choose_the_branch(client):
    revision = client.post("/api/v1/keys/acme/a", data=b"old").get_json()["revision"]
    cas = {"compare": [{"name": "a", "target": "revision", "op": "==", "revision": revision}],
           "success": [put("a", "new")], "failure": [{"op": "get", "name": "a"}]}
    assert txn(client, cas).get_json()["succeeded"] is True
    again = txn(client, cas).get_json()  # the revision moved on: the failure branch reads the new value
    assert again["succeeded"] is False and again["revision"] is None
    assert base64.b64decode(again["results"][0]["value"]) == b"new"
    by_value = {"compare": [{"name": "a", "target": "value", "op": "==", "value_b64": base64.b64encode(b"new").decode()}],
                "success": [{"op": "delete", "name": "a"}, {"op": "delete", "name": "never"}]}
    deleted = txn(client, by_value).get_json()
    assert [r["found"] for r in deleted["results"]] == [True, False]
    assert client.get("/api/v1/keys/acme/a").status_code == 404


@pytest.mark.parametrize("body", [
    [], "x", {"unknown": []}, {"success": {"op": "put"}}, {"success": [{"op": "rename", "name": "a"}]},
    {"success": [{"op": "put"}]}, {"success": [{"op": "put", "name": "a/b"}]}, {"success": [{"op": "put", "name": ""}]},
    {"success": [{"op": "put", "name": "a", "value": 5}]}, {"success": [{"op": "put", "name": "a", "value_b64": "%%"}]},
    {"success": [{"op": "put", "name": "a", "value": "x", "value_b64": "eA=="}]},
    {"success": [{"op": "get", "name": "a", "value": "x"}]},
    {"compare": [{"name": "a", "target": "size"}]}, {"compare": [{"name": "a", "target": "exists", "op": "<"}]},
    {"compare": [{"name": "a", "target": "exists", "exists": "yes"}]},
    {"compare": [{"name": "a", "target": "revision", "revision": "1"}]},
    {"compare": [{"name": "a", "target": "revision", "revision": True}]},
    {"compare": [{"name": "a", "target": "value"}]}, {"compare": [{"name": "a", "target": "value", "op": "~", "value": ""}]},
])
def test_a_bad_shape_is_400_and_stores_nothing(client, body):
    answer = txn(client, body)
    assert answer.status_code == 400 and answer.get_json()["error"] in ("invalid_txn", "invalid_name")
    assert client.get("/api/v1/keys/acme").get_json()["count"] == 0


def test_a_body_that_is_not_json_is_400(client):
    answer = client.post("/api/v1/txn/acme", data=b"{not json")
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_txn"


def test_too_many_operations_or_bytes_are_413(client):
    at_limit = {"compare": [{"name": "c", "target": "exists"}], "success": [put(f"k{i}") for i in range(MAX_OPERATIONS - 1)]}
    assert txn(client, at_limit).status_code == 200
    over = {**at_limit, "failure": [{"op": "get", "name": "k"}]}
    answer = txn(client, over)
    assert answer.status_code == 413 and answer.get_json()["error"] == "too_large"
    big = json.dumps({"success": [put("a", "x" * 700_000), put("b", "x" * 700_000), put("c", "x" * 300_000)]})
    assert len(big) > MAX_BODY_BYTES
    assert client.post("/api/v1/txn/acme", data=big, content_type="application/json").status_code == 413
    assert txn(client, {"success": [put("a", "x" * (2 ** 20 + 1))]}).status_code == 413  # one value's limit
    assert client.get("/api/v1/keys/acme/a").status_code == 404


@pytest.mark.parametrize("tenant, status", [("_auth", 403), ("a b", 400)])
def test_a_reserved_or_bad_tenant_is_refused(client, tenant, status):
    assert txn(client, {"success": [put("a")]}, tenant=tenant).status_code == status


def test_a_write_older_than_the_stored_timestamp_refuses_the_whole_transaction(client):
    assert client.post(f"/api/v1/keys/acme/future/{2 ** 62}", data=b"f").status_code == 202
    answer = txn(client, {"success": [put("a"), put("future")]})
    assert answer.status_code == 409 and answer.get_json()["error"] == "stale"
    assert client.get("/api/v1/keys/acme/a").status_code == 404


def test_a_transaction_over_the_keys_quota_is_refused_whole(client):
    assert client.put("/admin/tenants/acme/quota", json={"keys": 3}).status_code == 200
    assert client.post("/api/v1/keys/acme/k0", data=b"v").status_code == 202
    answer = txn(client, {"success": [put("k1"), put("k2"), put("k3")]})
    assert answer.status_code == 507 and answer.get_json()["error"] == "quota_exceeded"
    assert client.get("/api/v1/keys/acme").get_json()["count"] == 1
    # a delete in the same transaction makes room: the net change is what counts
    assert txn(client, {"success": [{"op": "delete", "name": "k0"}, put("k1"), put("k2"), put("k3")]}).status_code == 200


def test_a_transaction_spends_one_write_of_the_rate_per_write(client):
    assert client.put("/admin/tenants/acme/quota", json={"writes_per_second": 2}).status_code == 200
    assert txn(client, {"success": [put("a"), put("b"), put("c")]}).status_code == 200  # one token starts it
    answer = client.post("/api/v1/keys/acme/d", data=b"v")  # ... and the debt holds the next write back
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"


def test_with_auth_a_token_opens_only_its_own_tenants_transactions(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text("the-admin-token-for-txn-tests")
    app = create_app(Config.from_sources({"name": "t1", "in_memory": True, "auth": True,
                                          "admin_token_file": str(token_file)}))
    client = app.test_client()
    try:
        admin = {"Authorization": "Bearer the-admin-token-for-txn-tests"}
        mine = {"Authorization": f"Bearer {client.post('/admin/tenants/acme', headers=admin).get_json()['token']}"}
        assert txn(client, {"success": [put("a")]}, headers=mine).status_code == 200
        assert txn(client, {"success": [put("a")]}, tenant="beta", headers=mine).status_code == 403
        assert txn(client, {"success": [put("a")]}).status_code == 401
        assert txn(client, {"success": [put("a")]}, tenant="beta", headers=admin).status_code == 200
    finally:
        app.extensions["badkv_node"].stop()


@pytest.mark.parametrize("snapshot", [False, True])
def test_a_transaction_survives_a_restart(tmp_path, snapshot):
    config = Config.from_sources({"name": "t1", "data_dir": str(tmp_path / "t1")})
    node = Node(config)
    client = create_app(config, node).test_client()
    assert client.post("/api/v1/keys/acme/gone", data=b"v").status_code == 202
    body = txn(client, {"success": [put("a", "1"), put("b", "1"), {"op": "delete", "name": "gone"}]}).get_json()
    if snapshot:
        node.snapshots.take()
    node.stop()
    restarted = Node(config)
    try:
        restarted.advance(lambda: None)
        assert restarted.store.wait_for_index(node.store.applied_index, 5)
        assert [(r.name, r.value, r.revision) for r in restarted.store.range("acme").records] == [
            ("a", b"1", body["revision"]), ("b", b"1", body["revision"])]
        assert restarted.store.get("acme", "gone").deleted
    finally:
        restarted.stop()


def test_transactions_count_as_requests_of_their_tenant(client):
    assert txn(client, {"success": [put("a")]}).status_code == 200
    assert client.put("/admin/tenants/acme/quota", json={"keys": 1}).status_code == 200
    assert txn(client, {"success": [put("b")]}).status_code == 507
    tenants = {t["tenant"]: t for t in client.get("/admin/tenants").get_json()["tenants"]}
    assert (tenants["acme"]["requests"], tenants["acme"]["refusals"]) == (2, 1)


@pytest.mark.parametrize("config_values", [{"write_timeout": 0.2}])
@pytest.mark.parametrize("pending_key", [("acme", "a"), ("_dropped", "acme")])
def test_a_transaction_waits_for_a_write_in_flight_to_its_keys_or_a_drop_of_its_tenant(app, client, pending_key):
    """Judged against applied state, a transaction must not overtake an earlier entry touching its keys (a
    drop touches them all): here that entry never applies, so the transaction gives up with 503."""
    node = app.extensions["badkv_node"]
    with node.lock:
        node.applier.pending[pending_key] = Record(*pending_key, b"", 1, 1)
    answer = txn(client, {"compare": [{"name": "a", "target": "exists"}], "success": [put("b")]})
    assert answer.status_code == 503 and "still being replicated" in answer.get_json()["message"]
    with node.lock:
        del node.applier.pending[pending_key]
    assert txn(client, {"success": [put("b")]}).status_code == 200
