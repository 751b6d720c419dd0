"""Tests for badkv/cluster/snapshotter.py's copy of the leader's state: it replaces the follower's store, so a
key whose tombstone the leader's gc removed does not survive on the follower."""

from __future__ import annotations

from badkv.cluster.node import Node
from badkv.config import Config
from badkv.records import Record
from badkv.store import Store

FOLLOWER = {"name": "n2", "cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", "in_memory": True}


def feed_of(store: Store):
    def fetch_page(cursor: int, limit: int) -> dict:
        records, next_cursor = store.take(cursor, limit)
        return {"records": [r.to_json() for r in records], "next": next_cursor, "revision": store.applied_revision}
    return fetch_page


def test_installing_the_leaders_state_drops_keys_whose_tombstones_it_collected():
    leader = Store()
    leader.apply(Record("acme", "gone", b"old", 1, 1), index=1)
    leader.apply(Record("acme", "kept", b"v", 2, 2), index=2)
    leader.apply(Record("acme", "gone", b"", 3, 3, True), index=3)
    leader.collect_tombstones(4, revision=4, index=4)
    leader.apply(Record("acme", "new", b"n", 5, 5), index=5)
    node = Node(Config.from_sources(FOLLOWER))
    try:
        node.store.apply(Record("acme", "gone", b"old", 1, 1), index=1)  # it was away before the delete
        node.take_sync.fetch_page = feed_of(leader)
        node.snapshots.install_from_leader(5, 2)
        assert node.store.get("acme", "gone") is None
        assert {r.name for r in node.store.records()} == {"kept", "new"}
        assert node.store.tombstones.horizon == 4 and node.store.applied_index == 5
        assert node.core.log.base_index == 5 and node.snapshots.last_index == 5
        assert node.take_sync.cursor == 6
    finally:
        node.stop()
