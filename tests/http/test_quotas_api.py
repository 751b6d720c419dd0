"""Tests for PUT /admin/tenants/{tenant}/quota and the refusals it makes: 507 quota_exceeded, 429 rate_limited.

Quotas hold with auth on or off; these run with auth off (no tokens), the token tests cover auth on.
"""

import pytest

from badkv.app import create_app
from badkv.cluster.node import Node
from badkv.config import Config
from badkv.errors import QuotaExceeded
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
def app(config, clock):
    app = create_app(config, Node(config, monotonic=clock))
    yield app
    app.extensions["badkv_node"].stop()


def set_quota(client, tenant="acme", **quota):
    return client.put(f"/admin/tenants/{tenant}/quota", json=quota)


def put(client, name, value=b"v", tenant="acme"):
    return client.post(f"/api/v1/keys/{tenant}/{name}", data=value)


def test_set_quota_answers_200_with_the_quota_in_force(client):
    response = set_quota(client, keys=3)
    assert response.status_code == 200
    assert response.get_json() == {"tenant": "acme", "quota": {"keys": 3, "bytes": 0, "writes_per_second": 0}}


@pytest.mark.parametrize("body", [{"keys": -1}, {"keys": 1.5}, {"keys": True}, {"bytes": "10"},
                                  {"writes_per_second": -2}, {"other": 1}, [1]])
def test_a_bad_quota_body_is_400(client, body):
    response = client.put("/admin/tenants/acme/quota", json=body)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_parameter"


def test_a_quota_for_a_reserved_tenant_is_403(client):
    assert set_quota(client, tenant="_auth", keys=1).status_code == 403


def test_keys_are_refused_at_exactly_the_limit_and_nothing_is_stored(client):
    set_quota(client, keys=3)
    assert [put(client, f"k{i}").status_code for i in range(3)] == [202, 202, 202]
    refused = put(client, "k3")
    assert refused.status_code == 507 and refused.get_json()["error"] == "quota_exceeded"
    assert client.get("/api/v1/keys/acme/k3").status_code == 404
    assert put(client, "k0", b"overwrite").status_code == 202  # no new key: allowed at the limit
    assert client.delete("/api/v1/keys/acme/k0").status_code == 202
    assert put(client, "k3").status_code == 202  # the delete freed a slot
    assert put(client, "other", tenant="beta").status_code == 202  # another tenant is not limited


def test_bytes_are_refused_past_the_limit(client):
    """A live key counts its name's bytes and its value's."""
    set_quota(client, bytes=12)
    assert put(client, "a", b"x" * 6).status_code == 202  # 7
    assert put(client, "b", b"x" * 4).status_code == 202  # exactly 12
    assert put(client, "c", b"").status_code == 507  # an empty value still stores its name
    assert put(client, "a", b"x" * 7).status_code == 507  # growing a value counts its growth
    assert put(client, "a", b"x" * 5).status_code == 202  # shrinking is always allowed
    assert client.get("/api/v1/keys/acme/a").data == b"x" * 5


def test_long_names_count_against_the_bytes_quota(client):
    set_quota(client, bytes=100)
    name = "n" * 60
    assert put(client, name + "1", b"").status_code == 202
    assert put(client, name + "2", b"").status_code == 507  # 122 bytes of names: over the quota


@pytest.mark.parametrize("config_values", [{"tenant_max_keys": 2}])
def test_defaults_come_from_the_settings_and_a_quota_of_zero_lifts_them(client):
    assert [put(client, f"k{i}").status_code for i in range(3)] == [202, 202, 507]
    set_quota(client, keys=0)
    assert put(client, "k2").status_code == 202


def test_the_write_rate_is_a_token_bucket_with_retry_after(client, clock):
    set_quota(client, writes_per_second=2)
    assert [put(client, f"k{i}").status_code for i in range(3)] == [202, 202, 429]
    refused = put(client, "k9")
    assert refused.get_json()["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    assert client.get("/api/v1/keys/acme/k9").status_code == 404
    clock.now += 0.5  # one token back
    assert [put(client, "k3").status_code, put(client, "k4").status_code] == [202, 429]
    assert put(client, "k5", tenant="beta").status_code == 202


def test_writes_in_flight_count_against_the_quota(app, client):
    set_quota(client, keys=2)
    assert put(client, "k0").status_code == 202
    node = app.extensions["badkv_node"]
    with node.lock:  # a write to k1 admitted but not applied yet holds the last slot
        node.applier.pending[("acme", "k1")] = Record("acme", "k1", b"v", 1, 1)
        with pytest.raises(QuotaExceeded):
            node.tenants.admit_write("acme", "k2", None, b"v", "put")
        del node.applier.pending[("acme", "k1")]
        node.tenants.admit_write("acme", "k2", None, b"v", "put")


@pytest.mark.parametrize("config_values", [{"tenant_max_keys": 5}])
def test_the_list_shows_each_quota(client):
    set_quota(client, tenant="acme", bytes=100)
    put(client, "k", tenant="beta")
    tenants = {t["tenant"]: t for t in client.get("/admin/tenants").get_json()["tenants"]}
    assert tenants["acme"]["quota"] == {"keys": 5, "bytes": 100, "writes_per_second": 0}
    assert tenants["beta"]["quota"] == {"keys": 5, "bytes": 0, "writes_per_second": 0}


@pytest.mark.parametrize("rate, status", [(5e-324, 400), (1 / 86400, 200), (0, 200)])
def test_a_write_rate_slower_than_one_a_day_is_refused(client, rate, status):
    """A denormal rate made the wait of a refused write infinite: a 500 once the bucket was empty."""
    answer = client.put("/admin/tenants/acme/quota", json={"writes_per_second": rate})
    assert answer.status_code == status
    if status == 200 and rate:
        assert put(client, "a").status_code == 202
        refused = put(client, "b")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= 86400
