import time
from types import SimpleNamespace

import pytest
import requests

from bench.config import REPO_ROOT, default_venv_bin
from bench.perf_servers import start_syncobj, syncobj_specs
from bench.servers import ServerPool


def test_members_know_each_other_by_their_raft_addresses(tmp_path):
    specs = syncobj_specs(SimpleNamespace(venv_bin=default_venv_bin()), tmp_path)
    raft = [spec.argv[spec.argv.index("--self") + 1] for spec in specs]
    assert len(set(raft)) == 3 and len({spec.port for spec in specs} | set(raft)) == 6
    for spec, address in zip(specs, raft):
        partners = spec.argv[spec.argv.index("--partners") + 1].split(",")
        assert sorted(partners + [address]) == sorted(raft)
        assert spec.argv[spec.argv.index("--journal") + 1].startswith(str(tmp_path))


def read_until(url, deadline_s=10.0):
    """GET `url` until it answers 200 (a follower applies a commit a little after the leader), or the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = requests.get(url, timeout=5)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


@pytest.mark.process
def test_a_pysyncobj_cluster_starts_elects_and_replicates_a_write(tmp_path):
    config = SimpleNamespace(venv_bin=default_venv_bin())
    with ServerPool(tmp_path / "logs", cwd=REPO_ROOT, ready_timeout=30) as pool:
        (tmp_path / "logs").mkdir()
        leader, follower = start_syncobj(pool, config, tmp_path / "data")
        leader_stats = requests.get(leader.base_url + "/admin/stats", timeout=5).json()
        follower_stats = requests.get(follower.base_url + "/admin/stats", timeout=5).json()
        assert leader_stats["role"] == "leader" and follower_stats["role"] == "follower"
        assert follower_stats["leader"] == leader_stats["name"]
        answer = requests.post(leader.base_url + "/api/v1/keys/bench/k1", data=b"x" * 100, timeout=10)
        assert answer.status_code == 202
        follower_url = follower.base_url
        assert read_until(follower_url + "/api/v1/keys/bench/k1").content == b"x" * 100
        assert requests.get(follower_url + "/api/v1/keys/bench/missing", timeout=5).status_code == 404
        assert requests.get(follower_url + "/api/v1/nothing", timeout=5).status_code == 404
    assert sorted(path.name for path in (tmp_path / "data").iterdir() if path.suffix == ".journal") == [
        "s1.journal", "s2.journal", "s3.journal"]
