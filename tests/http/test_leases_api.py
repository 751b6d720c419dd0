"""Tests for /api/v1/leases and ``?lease=`` on a key POST (badkv/http/leases.py, badkv/cluster/leases.py):
grant, keepalive, show, revoke, expiry by the leader's count (one entry deleting every attached key),
checkpoints, every refusal, auth and quotas, and a lease's time left surviving a restart (WAL replay and
snapshot) instead of starting again."""

import pytest

from badkv.app import create_app
from badkv.cluster.node import Node
from badkv.config import Config
from badkv.leases import LEASE_TENANT
from badkv.records import Record


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def node(config, clock):
    node = Node(config, monotonic=clock)
    yield node
    node.stop()


@pytest.fixture
def client(node, config):
    return create_app(config, node).test_client()


def grant(client, ttl=10, tenant="acme", **kwargs):
    answer = client.post(f"/api/v1/leases/{tenant}", json={"ttl": ttl}, **kwargs)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_grant_attach_show(client):
    lease = grant(client, 10)
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"1").status_code == 202
    assert client.post(f"/api/v1/keys/acme/b?lease={lease}", data=b"2").status_code == 202
    assert client.get(f"/api/v1/leases/acme/{lease}").get_json() == {"id": lease, "ttl": 10, "remaining": 10.0,
                                                                     "keys": ["a", "b"]}
    assert client.post("/api/v1/keys/acme/b", data=b"3").status_code == 202  # written again without: detached
    assert client.get(f"/api/v1/leases/acme/{lease}").get_json()["keys"] == ["a"]


def test_expiry_is_one_entry_deleting_every_attached_key_when_the_time_is_up(node, client, clock):
    lease = grant(client, 5)
    for name in ("a", "b"):
        assert client.post(f"/api/v1/keys/acme/{name}?lease={lease}", data=b"v").status_code == 202
    assert client.post("/api/v1/keys/acme/other", data=b"v").status_code == 202
    clock.now += 4.9
    node.leases.tick()
    assert client.get("/api/v1/keys/acme/a").status_code == 200
    before = node.store.applied_index
    clock.now += 0.2
    node.leases.tick()
    assert node.store.applied_index == before + 1  # one entry
    assert [client.get(f"/api/v1/keys/acme/{name}").status_code for name in ("a", "b", "other")] == [404, 404, 200]
    assert client.get(f"/api/v1/leases/acme/{lease}").status_code == 404
    assert node.store.get(LEASE_TENANT, lease).deleted


def test_keepalive_starts_the_full_ttl_again(node, client, clock):
    lease = grant(client, 5)
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").status_code == 202
    clock.now += 4
    answer = client.post(f"/api/v1/leases/acme/{lease}/keepalive")
    assert answer.status_code == 200 and answer.get_json() == {"id": lease, "ttl": 5, "remaining": 5.0}
    clock.now += 4
    node.leases.tick()
    assert client.get("/api/v1/keys/acme/a").status_code == 200
    clock.now += 1.1
    node.leases.tick()
    assert client.get("/api/v1/keys/acme/a").status_code == 404
    assert client.post(f"/api/v1/leases/acme/{lease}/keepalive").get_json()["error"] == "not_found"


def test_a_lease_whose_time_is_up_is_gone_even_before_the_expiry_entry(client, clock):
    lease = grant(client, 2)
    clock.now += 2
    assert client.post(f"/api/v1/leases/acme/{lease}/keepalive").status_code == 404
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").get_json()["error"] == "lease_not_found"


def test_revoke_deletes_the_keys_at_once(client):
    lease = grant(client)
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").status_code == 202
    answer = client.delete(f"/api/v1/leases/acme/{lease}")
    assert answer.status_code == 202 and answer.get_json() == {"id": lease, "revoked": True}
    assert client.get("/api/v1/keys/acme/a").status_code == 404
    assert client.delete(f"/api/v1/leases/acme/{lease}").status_code == 404


def test_the_leader_checkpoints_the_time_left_into_replicated_state(node, client, clock):
    lease = grant(client, 10)
    clock.now += 0.5
    node.leases.tick()
    assert node.store.get(LEASE_TENANT, lease).value.count(b'"remaining_ms": 10000') == 1  # within the slack
    clock.now += 3
    node.leases.tick()
    assert b'"remaining_ms": 6500' in node.store.get(LEASE_TENANT, lease).value


def test_the_lock_recipe_one_holder_at_a_time(client):
    first, second = grant(client), grant(client)
    lock = {"If-None-Match": "*"}
    assert client.post(f"/api/v1/keys/acme/lock?lease={first}", data=b"me", headers=lock).status_code == 202
    taken = client.post(f"/api/v1/keys/acme/lock?lease={second}", data=b"you", headers=lock)
    assert taken.status_code == 412
    assert client.delete(f"/api/v1/leases/acme/{first}").status_code == 202
    assert client.post(f"/api/v1/keys/acme/lock?lease={second}", data=b"you", headers=lock).status_code == 202


@pytest.mark.parametrize("body", [{}, {"ttl": 0}, {"ttl": 86401}, {"ttl": "5"}, {"ttl": 1.5}, {"ttl": 5, "x": 1},
                                  [5], "x"])
def test_a_bad_grant_body_is_400(client, body):
    answer = client.post("/api/v1/leases/acme", json=body)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_parameter"


@pytest.mark.parametrize("lease, status", [("abc", 400), ("-1", 400), ("99999999999999999999", 400),
                                           ("0", 404), ("9999999999999999999", 404)])
def test_a_lease_id_not_of_digits_is_400_and_one_never_granted_404(client, lease, status):
    path = f"/api/v1/leases/acme/{lease}"
    assert client.get(path).status_code == status
    assert client.delete(path).status_code == status
    assert client.post(f"{path}/keepalive").status_code == status
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").status_code == status


@pytest.mark.parametrize("query", ["lease=abc", "lease=-5", "lease="])
def test_a_bad_lease_on_a_key_write_is_400_and_stores_nothing(client, query):
    answer = client.post(f"/api/v1/keys/acme/a?{query}", data=b"v")
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_parameter"
    assert client.get("/api/v1/keys/acme/a").status_code == 404


def test_a_delete_cannot_name_a_lease(client):
    lease = grant(client)
    assert client.post("/api/v1/keys/acme/a", data=b"v").status_code == 202
    assert client.delete(f"/api/v1/keys/acme/a?lease={lease}").status_code == 400


@pytest.mark.parametrize("tenant, status", [("_auth", 403), ("a b", 400)])
def test_a_reserved_or_bad_tenant_is_refused(client, tenant, status):
    assert client.post(f"/api/v1/leases/{tenant}", json={"ttl": 5}).status_code == status
    assert client.get(f"/api/v1/leases/{tenant}/5").status_code == status


def test_another_tenants_lease_is_not_found(client):
    lease = grant(client, tenant="beta")
    assert client.get(f"/api/v1/leases/acme/{lease}").status_code == 404
    assert client.post(f"/api/v1/leases/acme/{lease}/keepalive").status_code == 404
    assert client.delete(f"/api/v1/leases/acme/{lease}").status_code == 404
    answer = client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v")
    assert answer.status_code == 404 and answer.get_json()["error"] == "lease_not_found"
    assert client.get(f"/api/v1/leases/beta/{lease}").status_code == 200


def test_a_write_with_a_lease_keeps_the_preconditions_and_the_stale_rule(client):
    lease = grant(client)
    assert client.post(f"/api/v1/keys/acme/f/{2 ** 62}", data=b"v").status_code == 202
    for path in ("f", "f/5"):  # its own revision, or a timestamp given, older than the stored one
        answer = client.post(f"/api/v1/keys/acme/{path}?lease={lease}", data=b"w")
        assert answer.status_code == 409 and answer.get_json()["error"] == "stale"
    assert client.get(f"/api/v1/leases/acme/{lease}").get_json()["keys"] == []
    answer = client.post(f"/api/v1/keys/acme/f?lease={lease}", data=b"w", headers={"If-Match": '"1"'})
    assert answer.status_code == 412
    assert client.post(f"/api/v1/keys/acme/big?lease={lease}", data=b"x" * (2 ** 20 + 1)).status_code == 413


def test_a_write_with_a_lease_counts_against_the_quota(client):
    lease = grant(client)
    assert client.put("/admin/tenants/acme/quota", json={"keys": 1}).status_code == 200
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").status_code == 202
    answer = client.post(f"/api/v1/keys/acme/b?lease={lease}", data=b"v")
    assert answer.status_code == 507 and answer.get_json()["error"] == "quota_exceeded"
    assert client.delete(f"/api/v1/leases/acme/{lease}").status_code == 202  # the deleted key frees its place
    assert client.post("/api/v1/keys/acme/b", data=b"v").status_code == 202


@pytest.mark.parametrize("config_values", [{"write_timeout": 0.2}])
def test_a_lease_change_waits_for_a_write_in_flight_to_the_lease(node, client):
    lease = grant(client)
    with node.lock:
        node.applier.pending[(LEASE_TENANT, lease)] = Record(LEASE_TENANT, lease, b"", 1, 1)
    answer = client.post(f"/api/v1/leases/acme/{lease}/keepalive")
    assert answer.status_code == 503 and "still being replicated" in answer.get_json()["message"]
    with node.lock:
        del node.applier.pending[(LEASE_TENANT, lease)]
    assert client.post(f"/api/v1/leases/acme/{lease}/keepalive").status_code == 200


def test_with_auth_a_token_opens_only_its_own_tenants_leases(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text("the-admin-token-for-lease-tests")
    app = create_app(Config.from_sources({"name": "t1", "in_memory": True, "auth": True,
                                          "admin_token_file": str(token_file)}))
    client = app.test_client()
    try:
        admin = {"Authorization": "Bearer the-admin-token-for-lease-tests"}
        mine = {"Authorization": f"Bearer {client.post('/admin/tenants/acme', headers=admin).get_json()['token']}"}
        lease = grant(client, headers=mine)
        assert client.get(f"/api/v1/leases/acme/{lease}", headers=mine).status_code == 200
        assert client.get(f"/api/v1/leases/acme/{lease}").status_code == 401
        assert client.post("/api/v1/leases/beta", json={"ttl": 5}, headers=mine).status_code == 403
        assert client.get(f"/api/v1/leases/beta/{lease}", headers=mine).status_code == 403
        assert client.get(f"/api/v1/leases/acme/{lease}", headers=admin).status_code == 200
    finally:
        app.extensions["badkv_node"].stop()


@pytest.mark.parametrize("snapshot", [False, True])
def test_the_time_left_survives_a_restart_instead_of_starting_again(tmp_path, snapshot):
    """The restarted node counts the checkpointed 4 s on, not the full 10 s TTL."""
    config = Config.from_sources({"name": "t1", "data_dir": str(tmp_path / "t1")})
    clock = FakeClock()
    node = Node(config, monotonic=clock)
    client = create_app(config, node).test_client()
    lease = grant(client, 10)
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").status_code == 202
    clock.now += 6
    node.leases.tick()  # the checkpoint: 4 s left
    if snapshot:
        node.snapshots.take()
    node.stop()
    later = FakeClock()
    later.now = 5.0
    restarted = Node(config, monotonic=later)
    client = create_app(config, restarted).test_client()
    try:
        restarted.advance(lambda: None)
        assert restarted.store.wait_for_index(node.store.applied_index, 5)
        shown = client.get(f"/api/v1/leases/acme/{lease}").get_json()
        assert shown["keys"] == ["a"] and shown["remaining"] == 4.0
        later.now += 4.1
        restarted.leases.tick()
        assert client.get("/api/v1/keys/acme/a").status_code == 404
    finally:
        restarted.stop()


def test_range_listing_shows_the_lease_each_key_is_attached_to(client):
    lease = grant(client)
    assert client.post(f"/api/v1/keys/acme/a?lease={lease}", data=b"v").status_code == 202
    assert client.post(f"/api/v1/keys/acme/b?lease={lease}", data=b"v").status_code == 202
    assert client.post("/api/v1/keys/acme/c", data=b"v").status_code == 202
    shown = {r["name"]: r["lease"] for r in client.get("/api/v1/keys/acme").get_json()["records"]}
    assert shown == {"a": lease, "b": lease, "c": None}
    assert client.post("/api/v1/keys/acme/b", data=b"w").status_code == 202  # detached by a plain write
    shown = {r["name"]: r["lease"] for r in client.get("/api/v1/keys/acme?keys_only=true").get_json()["records"]}
    assert shown == {"a": lease, "b": None, "c": None}
