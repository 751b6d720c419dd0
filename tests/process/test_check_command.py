"""``badkvctl check`` against real 3-node clusters: linearizable, its tenant cleaned up, auth off and on."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from badkv.testing.processes import LocalCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]
ADMIN = "admin-token-of-the-self-check-cluster"


def badkvctl_check(cluster, *extra: str) -> subprocess.CompletedProcess:
    endpoints = ",".join(node.url for node in cluster.nodes.values())
    return subprocess.run([sys.executable, "-m", "badkv.ctl", "check", "--endpoints", endpoints, "--seconds", "3",
                           "--clients", "3", *extra], capture_output=True, text=True, timeout=150)


def live_keys(cluster, tenant: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    node = cluster.nodes["n1"]  # (a leader read: forwarded; /admin/stats would need the token)
    answer = requests.get(f"{node.url}/api/v1/keys/{tenant}", params={"count_only": "true", "consistency": "leader"},
                          headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["count"]


def checked(result: subprocess.CompletedProcess) -> tuple[str, int]:
    """The check's tenant and how many operations it judged, from its output."""
    tenant = re.search(r"tenant (check-[0-9a-f]+)", result.stdout).group(1)
    count = int(re.search(r"^linearizable: (\d+) operations checked", result.stdout, flags=re.M).group(1))
    return tenant, count


def test_check_passes_on_a_healthy_cluster_and_deletes_its_keys(tmp_path):
    with LocalCluster(3, tmp_path, extra_args=["-in-memory"]) as cluster:
        cluster.wait_ready()
        result = badkvctl_check(cluster)
        print(result.stdout)
        assert result.returncode == 0, result.stdout + result.stderr
        tenant, count = checked(result)
        assert count > 50, result.stdout
        assert f"deleted the keys of tenant {tenant}" in result.stdout
        assert live_keys(cluster, tenant) == 0


def test_check_with_auth_on_needs_the_admin_token_and_drops_its_tenant(tmp_path):
    (tmp_path / "admin-token").write_text(ADMIN + "\n")
    extra = ["-in-memory", "-auth", "on", "-admin-token-file", str(tmp_path / "admin-token")]
    with LocalCluster(3, tmp_path, extra_args=extra) as cluster:
        cluster.wait_ready()
        refused = badkvctl_check(cluster)
        assert refused.returncode == 2 and "unauthenticated" in refused.stdout, refused.stdout
        result = badkvctl_check(cluster, "--admin-token", ADMIN)
        assert result.returncode == 0, result.stdout + result.stderr
        tenant, count = checked(result)
        assert count > 50 and f"tenant {tenant} dropped" in result.stdout
        assert live_keys(cluster, tenant, ADMIN) == 0
