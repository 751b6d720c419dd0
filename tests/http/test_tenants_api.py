"""Tests for badkv/http/tenants.py and badkv/http/auth.py: tenant tokens and every status code of them.

(Not test_tenants.py: tests/process/test_tenants.py has that name, and test files need unique names.)
"""

import pytest

from badkv.app import create_app
from badkv.config import Config
from badkv.security.tokens import AUTH_TENANT, token_hash

ADMIN = "the-admin-token-for-tests"


@pytest.fixture
def config_values(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")  # the newline an editor adds is not part of the token
    return {"auth": True, "admin_token_file": str(token_file)}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def create(client, tenant):
    response = client.post(f"/admin/tenants/{tenant}", headers=bearer(ADMIN))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]


def test_create_answers_201_with_a_256_bit_token_stored_only_as_its_hash(client, app):
    response = client.post("/admin/tenants/acme", headers=bearer(ADMIN))
    assert response.status_code == 201
    body = response.get_json()
    assert body["tenant"] == "acme" and len(body["token"]) >= 43  # 32 bytes in URL-safe base64
    stored = app.extensions["badkv_node"].store.get(AUTH_TENANT, "acme")
    assert body["token"].encode() not in stored.value
    assert token_hash(body["token"]).encode() in stored.value


def test_a_tenant_token_opens_its_own_keys_and_take(client):
    token = create(client, "acme")
    assert client.post("/api/v1/keys/acme/k", data=b"v", headers=bearer(token)).status_code == 202
    assert client.get("/api/v1/keys/acme/k", headers=bearer(token)).data == b"v"
    assert client.delete("/api/v1/keys/acme/k", headers=bearer(token)).status_code == 202
    page = client.get("/api/v1/take/0?tenant=acme", headers=bearer(token))
    assert page.status_code == 200
    assert {r["tenant"] for r in page.get_json()["records"]} == {"acme"}


@pytest.mark.parametrize("method, url", [
    ("get", "/api/v1/keys/other/k"), ("post", "/api/v1/keys/other/k"), ("delete", "/api/v1/keys/other/k"),
    ("get", "/api/v1/take/0?tenant=other"), ("get", "/api/v1/take/0"), ("get", "/api/v1/take/0?tenant=_auth"),
    ("get", "/admin/stats"), ("get", "/admin/tenants"), ("post", "/admin/tenants/acme/rotate"),
    ("get", "/api/v1/keys/_auth/acme"),
])
def test_a_tenant_token_is_forbidden_elsewhere(client, method, url):
    token = create(client, "acme")
    response = getattr(client, method)(url, headers=bearer(token))
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.get_json()["error"] == "forbidden"


@pytest.mark.parametrize("headers", [{}, bearer("not-a-token"), {"Authorization": "Basic YTpi"},
                                     {"Authorization": "Bearer"}, bearer(ADMIN + "x"), bearer(ADMIN[:-1])])
@pytest.mark.parametrize("url", ["/api/v1/keys/acme/k", "/api/v1/take/0", "/admin/stats", "/admin/tenants"])
def test_no_valid_token_is_401_with_www_authenticate(client, headers, url):
    response = client.get(url, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("url", ["/admin/health", "/admin/ready", "/api/v1/openapi.json"])
def test_health_ready_and_the_api_document_stay_open(client, url):
    assert client.get(url).status_code in (200, 503)
    assert client.get(url).status_code != 401


def test_the_admin_token_opens_every_tenant_and_the_whole_take(client):
    assert client.post("/api/v1/keys/acme/k", data=b"v", headers=bearer(ADMIN)).status_code == 202
    assert client.get("/api/v1/keys/acme/k", headers=bearer(ADMIN)).status_code == 200
    assert client.get("/api/v1/take/0", headers=bearer(ADMIN)).status_code == 200
    assert client.get("/admin/stats", headers=bearer(ADMIN)).status_code == 200


def test_rotation_answers_a_new_token_and_the_old_one_stops_working(client):
    old = create(client, "acme")
    response = client.post("/admin/tenants/acme/rotate", headers=bearer(ADMIN))
    assert response.status_code == 200
    new = response.get_json()["token"]
    assert new != old
    assert client.get("/api/v1/keys/acme/k", headers=bearer(old)).status_code == 401
    assert client.get("/api/v1/keys/acme/k", headers=bearer(new)).status_code == 404


def test_revoke_answers_202_and_the_token_stops_working(client):
    token = create(client, "acme")
    assert client.delete("/admin/tenants/acme/token", headers=bearer(ADMIN)).status_code == 202
    assert client.get("/api/v1/keys/acme/k", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("method, url", [("post", "/admin/tenants/acme/rotate"),
                                         ("delete", "/admin/tenants/acme/token")])
def test_rotate_or_revoke_without_a_token_is_404(client, method, url):
    response = getattr(client, method)(url, headers=bearer(ADMIN))
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_a_second_create_is_409_and_keeps_the_first_token(client):
    token = create(client, "acme")
    response = client.post("/admin/tenants/acme", headers=bearer(ADMIN))
    assert response.status_code == 409 and response.get_json()["error"] == "tenant_exists"
    assert client.get("/api/v1/keys/acme/k", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize("tenant, status, code", [("_auth", 403, "reserved_tenant"), ("a b", 400, "invalid_tenant")])
def test_tokens_for_reserved_or_bad_tenant_names_are_refused(client, tenant, status, code):
    response = client.post(f"/admin/tenants/{tenant}", headers=bearer(ADMIN))
    assert response.status_code == status and response.get_json()["error"] == code


def test_client_writes_to_reserved_tenants_are_refused_even_for_the_admin(client, app):
    response = client.post("/api/v1/keys/_auth/acme", data=b'{"sha256": "00"}', headers=bearer(ADMIN))
    assert response.status_code == 403 and response.get_json()["error"] == "reserved_tenant"
    assert app.extensions["badkv_node"].store.get(AUTH_TENANT, "acme") is None


def test_the_list_shows_every_tenant_with_keys_token_and_counters(client):
    token = create(client, "acme")
    client.post("/api/v1/keys/acme/k", data=b"12345", headers=bearer(token))
    for name in ("other", "made-up-1", "made-up-2"):  # 403 and 401: not counted, or anyone could fill the list
        client.get(f"/api/v1/keys/{name}/k", headers=bearer(token))
        client.get(f"/api/v1/keys/{name}/k")
    client.post("/api/v1/keys/beta/k", data=b"1", headers=bearer(ADMIN))
    response = client.get("/admin/tenants", headers=bearer(ADMIN))
    assert response.status_code == 200
    tenants = {t["tenant"]: t for t in response.get_json()["tenants"]}
    assert set(tenants) == {"acme", "beta"}
    assert (tenants["acme"]["keys"], tenants["acme"]["bytes"], tenants["acme"]["token"]) == (1, 6, True)
    assert tenants["beta"]["token"] is False
    assert tenants["acme"]["requests"] == 1 and tenants["acme"]["refusals"] == 0


def test_transfer_leader_sent_to_a_follower_relays_the_admin_token(config_values):
    """The follower relays the request to the leader, which checks the admin token again."""
    follower_app = create_app(Config.from_sources({"name": "t2", "in_memory": True, **config_values,
                                                   "cluster": "t1=127.0.0.1:1,t2=127.0.0.1:2,t3=127.0.0.1:3"}))
    relayed = {}

    def forward(method, path, query, body, headers, *, leader_wait, avoid=frozenset()):
        relayed.update(headers)
        return 202, {"Content-Type": "application/json"}, b'{"leader": "t3", "term": 2}'

    node = follower_app.extensions["badkv_node"]
    node.forward = forward
    try:
        answer = follower_app.test_client().post("/admin/transfer-leader", json={"to": None}, headers=bearer(ADMIN))
        assert answer.status_code == 202
        assert relayed.get("Authorization") == f"Bearer {ADMIN}"
    finally:
        node.stop()
