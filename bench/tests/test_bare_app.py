import pytest

from bench.bare_app import create_app


@pytest.fixture
def client():
    return create_app().test_client()


def test_missing_key_is_404(client):
    assert client.get("/api/v1/keys/t/absent").status_code == 404


def test_post_then_get_returns_the_stored_bytes(client):
    posted = client.post("/api/v1/keys/t/k1", data=b"\x00value")
    assert posted.status_code == 202
    assert posted.get_json()["accepted"] is True
    fetched = client.get("/api/v1/keys/t/k1")
    assert fetched.status_code == 200
    assert fetched.data == b"\x00value"


def test_tenants_do_not_share_keys(client):
    client.post("/api/v1/keys/a/k", data=b"1")
    assert client.get("/api/v1/keys/b/k").status_code == 404


def test_health_is_200(client):
    assert client.get("/admin/health").status_code == 200
