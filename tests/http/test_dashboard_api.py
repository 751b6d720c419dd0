"""Tests for badkv/http/dashboard.py: the overview JSON (leader, follower, relayed, auth) and the page.

(Not test_dashboard.py: tests/process/test_dashboard.py has that name, and test files need unique names.)
"""

import base64
import configparser
import fnmatch
import hashlib
import re
from pathlib import Path

import pytest

import badkv
from badkv.cluster.transport import FORWARDED_BY
from badkv.http.dashboard import request_totals
from badkv.testing.drive import hear_from

ADMIN = "the-admin-token-for-dashboard-tests"
# A follower whose leader n1 listens nowhere (port 1): relaying to it fails at once.
FOLLOWER = {"name": "n2", "cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "leader_wait": 0.3}
PACKAGE = Path(badkv.__file__).parent


def overview(client, **headers) -> dict:
    response = client.get("/admin/overview", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_leader_answers_its_own_view_with_every_member_field(client):
    body = overview(client)
    assert (body["node"], body["served_by"], body["view"], body["role"], body["leader"]) == (
        "t1", "t1", "leader", "leader", "t1")
    assert body["relay_error"] is None and "here" not in body
    (member,) = body["members"]
    assert (member["name"], member["role"], member["term"], member["lag"], member["in_sync"]) == (
        "t1", "leader", body["term"], 0, True)
    assert member["applied_index"] == body["applied_index"] and member["last_contact_ms"] == 0
    assert body["elections_won"] == 1 and body["leader_changes"] == 1


def test_writes_and_reads_are_counted_and_tenants_ranked(client):
    before = overview(client)
    for name in ("a", "b", "c"):
        assert client.post(f"/api/v1/keys/big/{name}", data=b"v").status_code == 202
    assert client.post("/api/v1/keys/small/a", data=b"vv").status_code == 202
    for _ in range(4):
        assert client.get("/api/v1/keys/small/a").status_code == 200
    assert client.get("/api/v1/keys/small/missing").status_code == 404  # not answered with 2xx: not counted
    after = overview(client)
    assert after["writes_total"] - before["writes_total"] == 4
    assert after["reads_total"] - before["reads_total"] == 4
    assert after["uptime_seconds"] >= before["uptime_seconds"]
    assert after["tenants_by_keys"] == [{"tenant": "big", "keys": 3, "bytes": 6},
                                        {"tenant": "small", "keys": 1, "bytes": 3}]
    assert [t["tenant"] for t in after["tenants_by_requests"]] == ["small", "big"]
    assert after["tenants_by_requests"][0] == {"tenant": "small", "requests": 6, "refusals": 0}


def test_request_totals_count_2xx_key_writes_and_reads_only():
    counts = {"POST /api/v1/keys/<tenant>/<name>": {"202": 5, "409": 2},
              "DELETE /api/v1/keys/<tenant>/<name>/<timestamp>": {"202": 1},
              "GET /api/v1/keys/<tenant>/<name>": {"200": 7, "404": 3},
              "GET /api/v1/keys/<tenant>": {"200": 2},
              "GET /api/v1/take/<timestamp>": {"200": 9},
              "POST /admin/tenants/<tenant>": {"201": 1}}
    assert request_totals(counts) == {"writes_total": 6, "reads_total": 9}


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_a_follower_that_knows_no_leader_answers_its_own_view(client, config_values):
    body = overview(client)
    assert (body["node"], body["view"], body["role"], body["leader"], body["relay_error"]) == (
        "n2", "local", "follower", None, None)
    assert [(m["name"], m["term"], m["lag"]) for m in body["members"]] == [
        ("n1", None, None), ("n2", 0, None), ("n3", None, None)]


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_a_follower_whose_leader_does_not_answer_shows_its_own_view_and_why(app, client, config_values):
    hear_from(app.extensions["badkv_node"], "n1", term=3)
    body = overview(client)
    assert (body["node"], body["served_by"], body["view"], body["leader"]) == ("n2", "n2", "local", "n1")
    assert "leader" in body["relay_error"]
    assert [(m["name"], m["role"], m["term"]) for m in body["members"]] == [
        ("n1", "leader", 3), ("n2", "follower", 3), ("n3", "follower", None)]


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_a_relayed_overview_is_answered_here_and_never_passed_on(app, client, config_values):
    hear_from(app.extensions["badkv_node"], "n1", term=3)
    body = overview(client, **{FORWARDED_BY: "n3"})
    assert (body["node"], body["view"], body["relay_error"]) == ("n2", "local", None)


@pytest.fixture
def auth_config(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    return {"auth": True, "admin_token_file": str(token_file)}


def test_with_auth_on_the_overview_needs_the_admin_token_and_the_page_holds_none(tmp_path, auth_config):
    from badkv.app import create_app
    from badkv.config import Config

    app = create_app(Config.from_sources({"name": "t1", "in_memory": True, **auth_config}))
    try:
        client = app.test_client()
        assert client.get("/admin/overview").status_code == 401
        assert client.get("/admin/overview", headers={"Authorization": "Bearer wrong"}).status_code == 401
        created = client.post("/admin/tenants/acme", headers={"Authorization": f"Bearer {ADMIN}"})
        tenant_token = created.get_json()["token"]
        assert client.get("/admin/overview", headers={"Authorization": f"Bearer {tenant_token}"}).status_code == 403
        assert overview(client, Authorization=f"Bearer {ADMIN}")["node"] == "t1"
        page = client.get("/admin/dashboard")
        assert page.status_code == 200 and ADMIN not in page.get_data(as_text=True)
    finally:
        app.extensions["badkv_node"].stop()


def test_the_page_is_self_contained_and_its_policy_allows_exactly_its_inline_blocks(client):
    response = client.get("/admin/dashboard")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'id="members"' in html and "/*STYLE*/" not in html and "/*SCRIPT*/" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "nothing loads from another host"
    blocks = re.findall(r"<style>(.*?)</style>", html, re.S) + re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(blocks) == 2 and all(block.strip() for block in blocks)
    policy = response.headers["Content-Security-Policy"]
    for block in blocks:
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "connect-src 'self'" in policy and "unsafe-inline" not in policy


def test_the_page_files_are_package_data():
    """A wheel built from setup.cfg carries every file the page is made of."""
    parser = configparser.ConfigParser()
    parser.read(PACKAGE.parent / "setup.cfg")
    patterns = [p.strip() for p in parser["options.package_data"]["badkv.http"].split(",")]
    files = sorted(path.relative_to(PACKAGE / "http").as_posix() for path in (PACKAGE / "http" / "dashboard").iterdir())
    assert files == ["dashboard/dashboard.css", "dashboard/dashboard.html", "dashboard/dashboard.js"]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)
