"""Tests for GET /api/v1/keys/{tenant}: range listing through the API, its parameters and its auth scope."""

import base64

import pytest

NAMES = ["a", "ab", "abc", "b", "ba", "c"]


@pytest.fixture
def filled(client):
    for name in NAMES:
        assert client.post(f"/api/v1/keys/t/{name}", data=name.encode()).status_code == 202
    assert client.delete("/api/v1/keys/t/ab").status_code == 202
    assert client.post("/api/v1/keys/other/a", data=b"x").status_code == 202
    return client


def listed(answer):
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return [record["name"] for record in answer.get_json()["records"]]


def test_a_listing_shows_live_keys_with_values_in_order(filled):
    body = filled.get("/api/v1/keys/t").get_json()
    assert [r["name"] for r in body["records"]] == ["a", "abc", "b", "ba", "c"]
    assert base64.b64decode(body["records"][0]["value"]) == b"a" and body["records"][0]["lease"] is None
    assert body["next"] is None and body["count"] == 5 and body["revision"] > 0


@pytest.mark.parametrize("query, expected", [
    ("prefix=a", ["a", "abc"]),
    ("start=ab&end=ba", ["abc", "b"]),
    ("prefix=b&reverse=true", ["ba", "b"]),
    ("consistency=linearizable&prefix=c", ["c"]),
])
def test_prefix_range_reverse_and_consistency(filled, query, expected):
    assert listed(filled.get(f"/api/v1/keys/t?{query}")) == expected


def test_pages_follow_next_and_keys_only_leaves_values_out(filled):
    first = filled.get("/api/v1/keys/t?limit=2&keys_only=true").get_json()
    assert [r["name"] for r in first["records"]] == ["a", "abc"] and "value" not in first["records"][0]
    second = filled.get(f"/api/v1/keys/t?limit=2&start={first['next']}").get_json()
    assert [r["name"] for r in second["records"]] == ["b", "ba"]
    assert filled.get("/api/v1/keys/t?count_only=true").get_json()["count"] == 5


@pytest.mark.parametrize("query", ["limit=0", "limit=10001", "reverse=yes", "consistency=strong",
                                   "start=%01", "prefix=a/b", "min_revision=x"])
def test_bad_parameters_are_400(client, query):
    answer = client.get(f"/api/v1/keys/t?{query}")
    assert answer.status_code == 400 and answer.get_json()["error"] in ("invalid_parameter",)


def test_a_bad_tenant_is_400(client):
    assert client.get("/api/v1/keys/no%20spaces").get_json()["error"] == "invalid_tenant"


ADMIN = "the-admin-token-for-range-tests"


@pytest.fixture
def auth_client(tmp_path):
    from badkv.app import create_app
    from badkv.config import Config

    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN)
    app = create_app(Config.from_sources({"name": "t1", "in_memory": True, "auth": True,
                                          "admin_token_file": str(token_file)}))
    yield app.test_client()
    app.extensions["badkv_node"].stop()


def test_with_auth_a_tenant_lists_only_its_own_keys(auth_client):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    token = auth_client.post("/admin/tenants/acme", headers=admin).get_json()["token"]
    mine = {"Authorization": f"Bearer {token}"}
    assert auth_client.post("/api/v1/keys/acme/k", data=b"v", headers=mine).status_code == 202
    assert auth_client.post("/api/v1/keys/beta/k", data=b"v", headers=admin).status_code == 202
    assert listed(auth_client.get("/api/v1/keys/acme", headers=mine)) == ["k"]
    assert auth_client.get("/api/v1/keys/beta", headers=mine).status_code == 403
    assert auth_client.get("/api/v1/keys/_auth", headers=mine).status_code == 403  # the token hashes
    assert auth_client.get("/api/v1/keys/acme").status_code == 401
