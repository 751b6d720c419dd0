"""A real 3-node cluster with ``-auth on``: tenant tokens, cross-tenant refusals, rotation, quotas and drop
seen through every node, and a dropped tenant still gone after a node restarts."""

from __future__ import annotations

import time

import pytest
import requests

from badkv.testing.processes import LocalCluster

pytestmark = pytest.mark.process

ADMIN = "admin-token-of-the-tenant-test-cluster"
FAST = ["-auth", "on", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
        "-sync-interval", "1", "-peer-timeout", "0.5"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def eventually(check, timeout=5.0):
    """Poll ``check`` until it returns a true value (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"not true within {timeout}s"
            return result
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tenants")
    (directory / "admin-token").write_text(ADMIN + "\n")
    running = LocalCluster(3, directory, extra_args=FAST + ["-admin-token-file", str(directory / "admin-token")])
    for name, node in running.nodes.items():
        node.extra_args += ["-data-dir", str(directory / "data" / name)]
    with running:
        running.wait_ready()
        yield running


def urls(cluster):
    return [node.url for node in cluster.nodes.values()]


def leader_url(cluster):
    def find():
        for url in urls(cluster):
            try:
                if requests.get(url + "/admin/stats", headers=bearer(ADMIN), timeout=1).json()["role"] == "leader":
                    return url
            except (requests.RequestException, ValueError, KeyError):
                continue
        return None
    return eventually(find, timeout=10)


def follower_urls(cluster):
    leader = leader_url(cluster)
    return [url for url in urls(cluster) if url != leader]


def create(url, tenant):
    response = requests.post(f"{url}/admin/tenants/{tenant}", headers=bearer(ADMIN), timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def status_everywhere(cluster, method, path, token, **kwargs):
    return [requests.request(method, url + path, headers=bearer(token), timeout=5, **kwargs).status_code
            for url in urls(cluster)]


def test_tokens_open_only_their_tenant_on_every_node(cluster):
    acme = create(follower_urls(cluster)[0], "acme")  # created through a follower: relayed to the leader
    beta = create(leader_url(cluster), "beta")
    for i, url in enumerate(urls(cluster)):
        assert requests.post(f"{url}/api/v1/keys/acme/k{i}", data=b"v", headers=bearer(acme)).status_code == 202
        assert requests.post(f"{url}/api/v1/keys/beta/k{i}", data=b"v", headers=bearer(beta)).status_code == 202
    assert eventually(lambda: status_everywhere(cluster, "GET", "/api/v1/keys/acme/k2", acme) == [200] * 3)
    assert status_everywhere(cluster, "GET", "/api/v1/keys/beta/k0", acme) == [403] * 3
    assert status_everywhere(cluster, "POST", "/api/v1/keys/beta/k0", acme, data=b"x") == [403] * 3
    assert status_everywhere(cluster, "GET", "/api/v1/take/0?tenant=beta", acme) == [403] * 3
    assert status_everywhere(cluster, "GET", "/api/v1/take/0", acme) == [403] * 3
    for url in urls(cluster):
        refused = requests.get(f"{url}/api/v1/keys/acme/k0", timeout=5)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        page = requests.get(f"{url}/api/v1/take/0?tenant=acme", headers=bearer(acme), timeout=5).json()
        assert {record["tenant"] for record in page["records"]} == {"acme"}


def test_rotation_makes_the_old_token_fail_on_every_node(cluster):
    old = create(leader_url(cluster), "rotating")
    assert eventually(lambda: status_everywhere(cluster, "GET", "/api/v1/keys/rotating/k", old) == [404] * 3)
    response = requests.post(f"{follower_urls(cluster)[1]}/admin/tenants/rotating/rotate", headers=bearer(ADMIN))
    assert response.status_code == 200
    new = response.json()["token"]
    # Acknowledged means applied by every in-sync member: the old token fails everywhere at once.
    assert status_everywhere(cluster, "GET", "/api/v1/keys/rotating/k", old) == [401] * 3
    assert status_everywhere(cluster, "GET", "/api/v1/keys/rotating/k", new) == [404] * 3


def test_quotas_refuse_at_exactly_the_limit_through_any_node(cluster):
    token = create(leader_url(cluster), "small")
    follower = follower_urls(cluster)[0]
    answer = requests.put(f"{follower}/admin/tenants/small/quota", json={"keys": 3}, headers=bearer(ADMIN))
    assert answer.status_code == 200 and answer.json()["quota"]["keys"] == 3
    statuses = [requests.post(f"{url}/api/v1/keys/small/k{i}", data=b"v", headers=bearer(token)).status_code
                for i, url in enumerate(urls(cluster) + [follower])]
    assert statuses == [202, 202, 202, 507]
    assert status_everywhere(cluster, "GET", "/api/v1/keys/small/k3", token) == [404] * 3


def test_a_dropped_tenant_is_gone_on_every_node_and_after_a_restart(cluster):
    token = create(leader_url(cluster), "doomed")
    for i in range(20):
        assert requests.post(f"{leader_url(cluster)}/api/v1/keys/doomed/k{i}", data=b"v",
                             headers=bearer(token)).status_code == 202
    dropped = requests.delete(f"{follower_urls(cluster)[0]}/admin/tenants/doomed", headers=bearer(ADMIN))
    assert dropped.status_code == 202
    assert status_everywhere(cluster, "GET", "/api/v1/keys/doomed/k0", ADMIN) == [404] * 3
    for url in urls(cluster):
        assert requests.get(f"{url}/api/v1/take/0?tenant=doomed", headers=bearer(ADMIN)).json()["records"] == []
    restarted = next(node for node in cluster.nodes.values() if node.url in follower_urls(cluster))
    restarted.stop()
    restarted.start()
    cluster.wait_ready()
    take = requests.get(f"{restarted.url}/api/v1/take/0?tenant=doomed", headers=bearer(ADMIN)).json()
    assert take["records"] == []
    assert requests.get(f"{restarted.url}/api/v1/keys/doomed/k0", headers=bearer(ADMIN)).status_code == 404
    assert requests.get(f"{restarted.url}/api/v1/keys/acme/k0", headers=bearer(ADMIN)).status_code == 200


def test_take_sync_runs_with_the_admin_token(cluster):
    def synced():
        stats = [requests.get(url + "/admin/stats", headers=bearer(ADMIN)).json() for url in follower_urls(cluster)]
        return all(s["take_sync"]["runs"] >= 1 for s in stats) and stats
    for stats in eventually(synced, timeout=10):
        assert stats["take_sync"]["errors"] == 0
