"""Tests for tenant drop in badkv/store.py: the ``_dropped`` marker, chunked pruning, take sync and snapshots.

(Apart from tests/test_store.py to keep that file about records and last-writer-wins.)
"""

from badkv.records import Record
from badkv.store import DROPPED_TENANT, Store


def filled(keys=50, tenants=("acme", "beta")) -> Store:
    store = Store()
    revision = 0
    for tenant in tenants:
        for i in range(keys):
            revision += 1
            store.apply(Record(tenant, f"k{i}", b"v" * 3, revision, revision, deleted=(i % 10 == 9)))
    return store


def drop(store, tenant, revision):
    store.apply(Record(DROPPED_TENANT, tenant, b"", revision, revision))


def tenants_in(records):
    return {record.tenant for record in records}


def test_a_drop_removes_the_tenant_at_once_and_leaves_the_others():
    store = filled()
    drop(store, "acme", 1000)
    assert store.get("acme", "k0") is None
    assert store.get("beta", "k0").value == b"vvv"
    assert tenants_in(store.take(0, 10_000)[0]) == {"beta", DROPPED_TENANT}
    assert tenants_in(store.records()) == {"beta", DROPPED_TENANT}
    stats = store.stats()
    assert (stats["keys"], stats["tombstones"]) == (45 + 1, 5)  # beta's live keys and the marker
    assert "acme" not in stats["tenant_bytes"] and store.usage("acme") == (0, 0)
    assert len(store) == 51


def test_pruning_goes_in_chunks_and_empties_the_index_of_the_tenant():
    store = filled()
    drop(store, "acme", 1000)
    assert store.prune_wanted.is_set()
    chunks = 1
    while store.prune_some(limit=7):
        chunks += 1
    assert chunks == 8  # 50 records, 7 at a time
    assert not store.prune_wanted.is_set()
    assert len(store.take(0, 10_000)[0]) == len(store) == 51
    assert tenants_in(store.take(0, 10_000)[0]) == {"beta", DROPPED_TENANT}


def test_a_tenant_written_again_after_its_drop_keeps_the_new_keys_through_pruning():
    store = filled()
    drop(store, "acme", 1000)
    store.apply(Record("acme", "k0", b"new", 1001, 1001))
    while store.prune_some(limit=10):
        pass
    assert store.get("acme", "k0").value == b"new" and store.get("acme", "k1") is None
    assert [r.name for r in store.take(0, 10_000, tenant="acme")[0]] == ["k0"]
    assert store.usage("acme") == (1, 5)  # its value and its name


def test_take_sync_cannot_bring_dropped_records_back():
    store = filled()
    old = store.get("acme", "k0")
    drop(store, "acme", 1000)
    assert store.apply_if_newer(Record("acme", "k0", old.value, old.timestamp, old.revision)) is False
    assert store.get("acme", "k0") is None
    assert store.apply_if_newer(Record("acme", "k0", b"later", 1001, 1001)) is True


def test_a_marker_from_take_sync_drops_what_a_lagging_follower_still_holds():
    follower = filled()
    follower.apply_if_newer(Record("acme", "late", b"x", 2000, 2000))  # written after the drop
    assert follower.apply_if_newer(Record(DROPPED_TENANT, "acme", b"", 1000, 1000)) is True
    assert follower.get("acme", "k0") is None
    while follower.prune_some():
        pass
    follower.mark_applied(0, 2000)  # (take shows records once the applied revision reaches them)
    assert [r.name for r in follower.take(0, 10_000, tenant="acme")[0]] == ["late"]
    assert follower.get("acme", "late").value == b"x"


def test_a_snapshot_after_a_drop_keeps_the_tenant_dropped():
    store = filled()
    drop(store, "acme", 1000)
    restored = Store()
    restored.load(store.records(), 1000, 7)  # a snapshot taken before pruning finished
    assert restored.get("acme", "k0") is None
    assert tenants_in(restored.records()) == {"beta", DROPPED_TENANT}
    assert restored.apply_if_newer(Record("acme", "k0", b"vvv", 1, 1)) is False


def test_dropping_a_tenant_without_records_only_leaves_the_marker():
    store = filled(tenants=("beta",))
    drop(store, "acme", 1000)
    assert not store.prune_wanted.is_set()
    assert tenants_in(store.records()) == {"beta", DROPPED_TENANT}
