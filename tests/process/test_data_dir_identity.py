"""A member started again on an empty data dir under its old name is refused by its peers, with a line on
both sides, and counts for nothing until it is removed and added again (badkv/security/data_ids.py)."""

from __future__ import annotations

import shutil

import pytest

from badkv.client import Client
from badkv.testing.processes import LocalCluster, NodeProcess, wait_until

pytestmark = pytest.mark.process

ON_DISK = ["-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "3", "-sync-interval", "1",
           "-peer-timeout", "0.5"]


def logged(node: NodeProcess, text: str) -> bool:
    return text in node.log_path.read_text()


def test_a_member_back_on_an_empty_data_dir_is_refused_until_removed_and_added_again(tmp_path):
    cluster = LocalCluster(3, tmp_path, extra_args=ON_DISK)
    for name, node in cluster.nodes.items():
        node.extra_args += ["-data-dir", str(tmp_path / "data" / name)]
    with cluster:
        cluster.wait_ready()
        leader = cluster.leader
        client = Client(leader.url, timeout=10)
        client.put("t", "before", b"1")
        wiped = cluster.followers[-1]
        wiped.stop()
        shutil.rmtree(tmp_path / "data" / wiped.name)
        wiped.start()
        # The leader ignores what the wiped node answers; the wiped node's own calls are refused.
        assert wait_until(lambda: logged(leader, f"ignoring the answers of {wiped.name}"), 10), \
            leader.log_path.read_text()[-2000:]
        assert wait_until(lambda: logged(wiped, "n1 knew this node with another data dir"), 10), \
            wiped.log_path.read_text()[-2000:]
        assert "now runs on another data dir" in leader.log_path.read_text()
        assert wait_until(lambda: not {m["name"]: m for m in client.members()}[wiped.name]["in_sync"], 5)
        client.put("t", "during", b"2")  # two of three voters still commit
        # What the leader counts for the wiped node stays what its old data dir had acknowledged.
        assert {m["name"]: m for m in client.members()}[wiped.name]["match_index"] < client.stats()["commit_index"]

        # The way back: remove it, add it again, start it with -join on an empty dir.
        client.member_remove(wiped.name)
        wiped.stop()
        shutil.rmtree(tmp_path / "data" / wiped.name)
        token = client.member_add(wiped.name, wiped.address)["join_token"]
        wiped.cluster = None
        wiped.extra_args += ["-join", leader.url, "-join-token", token]
        wiped.start(timeout=20)
        assert wait_until(lambda: {m["name"]: m for m in client.members()}[wiped.name]["voter"], 20)
        written = client.put("t", "after", b"3")
        assert wait_until(lambda: Client(wiped.url, timeout=5).stats()["applied_revision"] >= written["revision"], 10)
        assert Client(wiped.url, timeout=5).get("t", "before").value == b"1"
