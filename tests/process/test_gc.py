"""Tombstone gc on real 3-node clusters with a 1 s retention: one gc entry removes a transaction's tombstones on
every node; a take cursor older than the horizon gets 410 with the horizon while a newer one resumes; a follower
stopped (SIGSTOP) across a gc holds back only the tombstones it has not applied and comes back without a deleted
key; a follower restored from an old backup, behind the horizon and the leader's compacted log, copies the
leader's state instead of keeping keys whose tombstones are gone."""

from __future__ import annotations

import shutil
import time

import pytest

from badkv.client import Client, ClientError
from badkv.testing.processes import LocalCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]

FAST = ["-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2", "-sync-interval", "1",
        "-peer-timeout", "0.5", "-tombstone-retention", "1s"]
RETENTION = 1.0
BOUND = 15.0  # seconds any wait below may take at most


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(3, tmp_path_factory.mktemp("gc"), extra_args=["-in-memory", *FAST]) as running:
        running.wait_ready()
        yield running


def wait_for(condition, what: str, bound: float = BOUND):
    """Poll ``condition()`` until it returns something true; its value, or fail naming ``what``."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {bound:g}s")


def delete_all(client: Client, tenant: str, names: list[str]) -> int:
    """Delete ``names`` in one transaction (one revision); its revision."""
    return client.txn(tenant, success=[{"op": "delete", "name": name} for name in names])["revision"]


def put_all(client: Client, tenant: str, names: list[str]) -> int:
    return max(client.put(tenant, name, b"v")["revision"] for name in names)


def absent(client: Client, tenant: str, name: str) -> bool:
    try:
        client.get(tenant, name)
    except ClientError as error:
        if error.status == 404:
            return True
        raise
    return False


def all_stats(clients):
    return [client.stats() for client in clients]


def test_one_gc_entry_removes_the_tombstones_on_every_node_and_old_cursors_get_410(cluster):
    leader = Client(cluster.leader.url, timeout=5)
    clients = [Client(node.url, timeout=5) for node in cluster.nodes.values()]
    before = all_stats(clients)
    proposed = leader.stats()["gc_entries_proposed"]
    names = [f"k{i}" for i in range(5)]
    first = put_all(leader, "one", names + ["stays"])
    deleted = delete_all(leader, "one", names)
    for client in clients:  # every node applied the deletes: they are tombstones there now
        client.get("one", "stays", min_revision=deleted, timeout=5)
    watcher = leader.take(0)["next"]  # a watcher up to date right after the deletes
    horizons = wait_for(lambda: (lambda stats: [s["horizon"] for s in stats]
                                 if all(s["horizon"] > deleted for s in stats) else None)(all_stats(clients)),
                        "the gc entry applied on every node")
    assert len(set(horizons)) == 1, f"one entry, one horizon everywhere: {horizons}"
    after = all_stats(clients)
    for old, new in zip(before, after):
        assert new["tombstones_removed"] - old["tombstones_removed"] == 5
        assert new["tombstones"] == 0
    assert leader.stats()["gc_entries_proposed"] == proposed + 1
    for client in clients:
        with pytest.raises(ClientError) as expired:
            client.take(first)
        assert expired.value.status == 410 and expired.value.code == "cursor_expired"
        assert expired.value.body["horizon"] == horizons[0]
        assert all(absent(client, "one", name) for name in names)
        assert [r["name"] for r in client.take_all(tenant="one")] == ["stays"]
    resumed = leader.take(watcher)  # within the retention of its cursor: no full re-read
    assert resumed["records"] == []


def test_a_follower_stopped_across_a_gc_comes_back_without_the_deleted_keys(cluster):
    leader_process = cluster.leader
    leader = Client(leader_process.url, timeout=5)
    stopped_process = cluster.followers[0]
    stopped = Client(stopped_process.url, timeout=5)
    early, late = [f"e{i}" for i in range(5)], [f"l{i}" for i in range(5)]
    put_all(leader, "away", early + late + ["stays"])
    early_deleted = delete_all(leader, "away", early)
    stopped.get("away", "stays", min_revision=early_deleted, timeout=5)  # it applied the early deletes
    stopped_process.pause()
    try:
        late_deleted = delete_all(leader, "away", late)
        wait_for(lambda: leader.stats()["horizon"] > early_deleted, "the gc of the tombstones it applied")
        held_since = time.monotonic()
        while time.monotonic() < held_since + 2 * RETENTION:  # past the retention of the late deletes
            stats = leader.stats()
            assert stats["horizon"] <= late_deleted and stats["tombstones"] == 5, "the paused member holds them"
            time.sleep(0.1)
    finally:
        stopped_process.resume()
    wait_for(lambda: leader.stats()["horizon"] > late_deleted, "the gc once the member applied the late deletes")
    stopped.get("away", "stays", min_revision=late_deleted, timeout=5)
    wait_for(lambda: stopped.stats()["horizon"] > late_deleted, "the returned member applying the gc")
    for client in (leader, stopped):
        assert all(absent(client, "away", name) for name in early + late)
        assert [r["name"] for r in client.take_all(tenant="away")] == ["stays"]
    assert stopped.stats()["tombstones"] == 0


def test_a_member_back_from_an_old_copy_of_its_data_dir_copies_the_leaders_state(tmp_path):
    """(A copy of its own dir: a backup restored into a member's dir draws a new data id, and the cluster
    refuses such a member until it is removed and added again: tests/process/test_data_dir_identity.py.)"""
    cluster = LocalCluster(3, tmp_path, extra_args=[*FAST, "-snapshot-entries", "20"])
    for node in cluster.nodes.values():
        node.extra_args.extend(["-data-dir", str(tmp_path / "data" / node.name)])
    try:
        cluster.start()
        cluster.wait_ready()
        leader = Client(cluster.leader.url, timeout=5)
        behind_process = cluster.followers[0]
        doomed = [f"d{i}" for i in range(5)]
        written = put_all(leader, "old", doomed + ["stays"])
        behind = Client(behind_process.url, timeout=5)
        behind.get("old", "stays", min_revision=written, timeout=5)
        data_dir = tmp_path / "data" / behind_process.name
        behind_process.stop()
        shutil.copytree(data_dir, tmp_path / "behind-copy")  # the keys live in it
        behind_process.start()
        deleted = delete_all(leader, "old", doomed)
        for i in range(120):  # enough entries for the leader to snapshot and compact its log past the backup
            leader.put("new", f"n{i}", b"x")
        wait_for(lambda: all(Client(n.url).stats()["horizon"] > deleted for n in cluster.nodes.values()),
                 "the gc on every node")
        behind_process.stop()
        shutil.rmtree(data_dir)
        shutil.copytree(tmp_path / "behind-copy", data_dir)
        behind_process.start()
        last = leader.put("new", "last", b"x")["revision"]
        behind.get("new", "last", min_revision=last, timeout=10)
        assert all(absent(behind, "old", name) for name in doomed), "the member back from its copy kept deleted keys"
        assert [r["name"] for r in behind.take_all(tenant="old")] == ["stays"]
        assert len(behind.take_all(tenant="new")) == 121
        log = behind_process.log_path.read_text()
        assert "installed the leader's state" in log
    finally:
        cluster.stop()

