"""Tests for badkv/cluster/tombstones.py: when the leader proposes a gc entry and what it removes, on real Nodes
driven by hand (a leader of three whose followers answer as the test says; a single node), with the hybrid
clock's time set by the test."""

from __future__ import annotations

import pytest

from badkv.app import create_app
from badkv.clock import HybridClock
from badkv.cluster.node import Node
from badkv.config import Config
from badkv.consensus.messages import AppendRequest, AppendResponse
from badkv.testing.drive import elect

SECOND = 10 ** 9
START = 1_700_000_000 * SECOND
LEADER_OF_THREE = {"name": "n1", "cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "in_memory": True,
                   "heartbeat_interval": 0.01, "election_timeout": 0.05, "isr_timeout": 0.05, "write_timeout": 0.2,
                   "leader_wait": 0.05, "tombstone_retention": "10s"}


class WallClock:
    """The nanoseconds the node's hybrid clock reads; tests move them on."""

    def __init__(self):
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def wall():
    return WallClock()


def answer(node: Node, applied: dict[str, int] | None = None) -> None:
    """Every follower takes every append in the outboxes; each reports having applied what it holds, or at
    most ``applied[peer]``."""
    applied = applied or {}
    for _ in range(2):  # one round carries the entries, the next their commit
        for peer, replicator in node.replicators.items():
            while replicator.outbox:
                request = replicator.outbox.popleft()
                if isinstance(request, AppendRequest):
                    reported = min(request.last_index, applied.get(peer, request.last_index))
                    response = AppendResponse(request.term, True, request.last_index, reported, sender=peer,
                                              reply_to=request)
                    node.advance(lambda: node.core.step(response))


def write(node: Node, op: str, name: str, applied: dict[str, int] | None = None):
    """A put or delete on the hand-driven leader, answered by the followers (not waited for by a writer)."""
    pending = node.writer.begin(op, "acme", name, b"v" if op == "put" else b"", None, None, False)
    answer(node, applied)
    return pending.record


@pytest.fixture
def leader(wall):
    node = Node(Config.from_sources(LEADER_OF_THREE), clock=HybridClock(wall))
    elect(node)
    answer(node)
    yield node
    node.stop()


def due(node: Node) -> int | None:
    with node.lock:
        return node.gc.due_horizon()


def test_a_tombstone_is_due_once_older_than_the_retention_and_applied_everywhere(leader, wall):
    write(leader, "put", "k")
    deleted = write(leader, "delete", "k")
    assert due(leader) is None, "younger than the retention"
    wall.now = deleted.revision + 10 * SECOND  # (its revision is the hybrid clock's time when it was written)
    assert due(leader) is None, "exactly the retention old: not older"
    wall.now += 1
    assert due(leader) == deleted.revision + 1


def test_a_member_that_has_not_applied_the_delete_holds_gc_back(leader, wall):
    write(leader, "put", "k")
    held_at = leader.core.log.last_index
    deleted = write(leader, "delete", "k", applied={"n3": held_at})
    wall.now += 60 * SECOND
    assert due(leader) is None, "n3 has applied only the put"
    write(leader, "put", "other")  # n3 answers again, having applied everything
    assert due(leader) == deleted.revision + 1


def test_a_new_leader_knows_nothing_of_its_followers_and_holds_gc_back(wall):
    node = Node(Config.from_sources(LEADER_OF_THREE), clock=HybridClock(wall))
    try:
        elect(node)  # the no-op is not answered yet: no follower reported what it applied
        wall.now += 60 * SECOND
        with node.lock:
            assert node.gc.applied_everywhere() == node.core.log.entry(1)["revision"], "nothing is below it"
    finally:
        node.stop()


@pytest.fixture
def single(wall):
    config = Config.from_sources({"name": "t1", "in_memory": True, "tombstone_retention": "10s"})
    node = Node(config, clock=HybridClock(wall))
    yield node
    node.stop()


def test_one_gc_entry_removes_the_due_tombstones_and_keeps_the_younger_ones(single, wall):
    client = create_app(single.config, single).test_client()
    for name in ("old1", "old2", "young", "live"):
        assert client.post(f"/api/v1/keys/acme/{name}", data=b"v").status_code == 202
    client.delete("/api/v1/keys/acme/old1")
    old2 = client.delete("/api/v1/keys/acme/old2").get_json()["revision"]
    wall.now += 5 * SECOND
    client.delete("/api/v1/keys/acme/young")
    wall.now += 6 * SECOND
    index = single.store.applied_index
    assert single.gc.tick() is True
    assert single.store.applied_index == index + 1, "one log entry"
    assert single.gc.tick() is False, "nothing else is due"
    assert single.store.get("acme", "old1") is None and single.store.get("acme", "old2") is None
    assert single.store.get("acme", "young").deleted
    stats = client.get("/admin/stats").get_json()
    assert (stats["horizon"], stats["tombstones_removed"], stats["tombstones"]) == (old2 + 1, 2, 1)
    assert stats["gc_entries_proposed"] == 1 and stats["tombstone_retention"] == 10.0
    metrics = client.get("/admin/metrics").get_data(as_text=True)
    assert f"badkv_horizon {float(old2 + 1)}" in metrics or f"badkv_horizon {old2 + 1}" in metrics
    assert "badkv_tombstones_removed_total 2.0" in metrics


def test_the_take_feed_refuses_a_cursor_older_than_the_horizon_and_resumes_a_newer_one(single, wall):
    client = create_app(single.config, single).test_client()
    first = client.post("/api/v1/keys/acme/a", data=b"1").get_json()["revision"]
    client.delete("/api/v1/keys/acme/a")
    wall.now += 11 * SECOND
    watcher = client.get("/api/v1/take/0").get_json()["next"]  # a watcher up to date before the gc
    later = client.post("/api/v1/keys/acme/b", data=b"2").get_json()["revision"]
    single.gc.tick()
    horizon = single.store.tombstones.horizon
    refused = client.get(f"/api/v1/take/{first}")
    assert refused.status_code == 410 and refused.mimetype == "application/json"
    assert refused.get_json()["error"] == "cursor_expired" and refused.get_json()["horizon"] == horizon
    resumed = client.get(f"/api/v1/take/{watcher}").get_json()
    assert [r["name"] for r in resumed["records"]] == ["b"] and resumed["records"][0]["revision"] == later
    full = client.get("/api/v1/take/0").get_json()
    assert [r["name"] for r in full["records"]] == ["b"], "take/0: the whole state, without the collected key"


@pytest.mark.parametrize("snapshot", [False, True])
def test_the_horizon_and_the_removal_survive_a_restart(tmp_path, wall, snapshot):
    config = Config.from_sources({"name": "t1", "data_dir": str(tmp_path / "t1"), "tombstone_retention": "1s"})
    node = Node(config, clock=HybridClock(wall))
    client = create_app(config, node).test_client()
    client.post("/api/v1/keys/acme/a", data=b"1")
    client.delete("/api/v1/keys/acme/a")
    client.post("/api/v1/keys/acme/b", data=b"2")
    wall.now += 2 * SECOND
    assert node.gc.tick()
    horizon = node.store.tombstones.horizon
    if snapshot:
        node.snapshots.take()
    node.stop()
    restarted = Node(config, clock=HybridClock(wall))
    try:
        restarted.advance(lambda: None)
        assert restarted.store.wait_for_index(node.store.applied_index, 5)
        assert restarted.store.tombstones.horizon == horizon
        assert restarted.store.get("acme", "a") is None and restarted.store.get("acme", "b").value == b"2"
    finally:
        restarted.stop()


def test_a_follower_behind_the_compacted_log_holds_everything_back(leader, wall):
    held_at = leader.core.log.last_index
    write(leader, "put", "k", applied={"n3": held_at - 1})
    write(leader, "delete", "k", applied={"n3": held_at - 1})
    with leader.lock:
        leader.core.compact(leader.store.applied_index)  # as a snapshot does: n3 must copy the leader's state
    wall.now += 60 * SECOND
    with leader.lock:
        assert leader.gc.applied_everywhere() == 0
    assert due(leader) is None
