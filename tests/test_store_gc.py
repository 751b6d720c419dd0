"""Tests for tombstone gc in badkv/store.py (and the index of badkv/tombstones.py): which tombstones a gc entry
removes, the horizon and the 410 for older take cursors, take sync across it, snapshots, and a property test
that gc never brings a deleted key back, whatever mix of log replay, take sync and state copies a follower
goes through.

(Apart from tests/test_store.py to keep that file about records and last-writer-wins.)
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from badkv.cluster.take_sync import TakeSync
from badkv.errors import CursorExpired
from badkv.records import Record
from badkv.store import DROPPED_TENANT, Store

TENANT = "acme"


def put(store: Store, name: str, revision: int, tenant: str = TENANT) -> Record:
    record = Record(tenant, name, f"v{revision}".encode(), revision, revision)
    store.apply(record, index=revision)
    return record


def delete(store: Store, name: str, revision: int, tenant: str = TENANT) -> Record:
    record = Record(tenant, name, b"", revision, revision, True)
    store.apply(record, index=revision)
    return record


def history() -> Store:
    """k1..k5 written at 1..5; k1 deleted at 6, k2 at 7, k3 at 9; k4 written again at 8."""
    store = Store()
    for revision in range(1, 6):
        put(store, f"k{revision}", revision)
    delete(store, "k1", 6)
    delete(store, "k2", 7)
    put(store, "k4", 8)
    delete(store, "k3", 9)
    return store


def feed_of(store: Store):
    def fetch_page(cursor: int, limit: int) -> dict:
        records, next_cursor = store.take(cursor, limit)
        return {"records": [r.to_json() for r in records], "next": next_cursor, "revision": store.applied_revision}
    return fetch_page


def test_a_gc_removes_exactly_the_tombstones_older_than_its_horizon():
    store = history()
    assert store.collect_tombstones(8, revision=10, index=10) == 2
    assert store.get(TENANT, "k1") is None and store.get(TENANT, "k2") is None
    assert store.get(TENANT, "k3").deleted, "deleted at 9: not older than the horizon"
    assert [r.name for r in store.range(TENANT).records] == ["k4", "k5"]
    stats = store.stats()
    assert (stats["keys"], stats["tombstones"], stats["horizon"], stats["tombstones_removed"]) == (2, 1, 8, 2)
    assert (stats["applied_revision"], stats["applied_index"]) == (10, 10)
    assert len(store) == 3


def test_the_horizon_never_moves_back_and_a_second_gc_removes_only_what_is_left():
    store = history()
    store.collect_tombstones(10, revision=10)
    assert store.collect_tombstones(5, revision=11) == 0
    assert store.tombstones.horizon == 10 and store.stats()["tombstones"] == 0


def test_a_take_from_a_cursor_older_than_the_horizon_is_refused_with_the_horizon():
    store = history()
    store.collect_tombstones(8, revision=10)
    with pytest.raises(CursorExpired) as expired:
        store.take(7, 100)
    assert expired.value.horizon == 8 and expired.value.status == 410
    assert expired.value.to_dict()["error"] == "cursor_expired" and expired.value.to_dict()["horizon"] == 8
    assert [r.name for r in store.take(8, 100)[0]] == ["k4", "k3"]
    full, _ = store.take(0, 100)
    assert {r.name: r.deleted for r in full} == {"k3": True, "k4": False, "k5": False}


def test_gc_horizon_takes_the_oldest_tombstones_never_splitting_a_revision():
    store = history()
    assert store.gc_horizon(6, 100) is None, "no tombstone is older than 6"
    assert store.gc_horizon(8, 100) == 8
    assert store.gc_horizon(100, 1) == 7, "one tombstone at most: the oldest, at 6"
    store.apply_all([Record(TENANT, f"t{i}", b"", 20, 20, True) for i in range(3)], 20, index=20)
    store.collect_tombstones(10, revision=21)
    assert store.gc_horizon(100, 1) == 21, "the transaction's three tombstones go together"


def test_a_tenant_whose_every_record_was_collected_is_gone_from_the_counts():
    store = Store()
    put(store, "only", 1, tenant="beta")
    delete(store, "only", 2, tenant="beta")
    put(store, "k", 3)
    store.collect_tombstones(3, revision=4)
    assert "beta" not in store.usage_by_tenant() and store.stats()["tenants"] == 1
    assert store.range("beta").records == [] and store.get("beta", "only") is None
    put(store, "only", 5, tenant="beta")
    assert store.get("beta", "only").value == b"v5"


def test_collected_reserved_tombstones_move_the_system_version():
    store = Store()
    put(store, "acme", 1, tenant="_auth")
    delete(store, "acme", 2, tenant="_auth")
    version = store.system_version
    store.collect_tombstones(3, revision=3)
    assert store.system_version > version


def test_a_dropped_tenants_tombstones_leave_the_index_with_it():
    store = history()
    store.apply(Record(DROPPED_TENANT, TENANT, b"", 20, 20))
    assert store.gc_horizon(100, 100) is None
    while store.prune_some(2):
        pass
    assert store.collect_tombstones(100, revision=21) == 0


def test_load_keeps_the_horizon_and_indexes_the_tombstones():
    source = history()
    source.collect_tombstones(8, revision=10)
    copy = Store()
    copy.load(source.records(), source.applied_revision, 10, source.tombstones.horizon)
    assert copy.tombstones.horizon == 8
    with pytest.raises(CursorExpired):
        copy.take(1, 10)
    assert copy.collect_tombstones(100, revision=11) == 1  # k3's tombstone was indexed by load


def test_take_sync_skips_records_below_its_own_horizon():
    """A follower collected k1's tombstone; a source behind it (a new leader still applying its log) still
    has k1 live: the sync must not bring k1 back."""
    behind = Store()
    put(behind, "k1", 1)
    ahead = Store()
    put(ahead, "k1", 1)
    delete(ahead, "k1", 2)
    ahead.collect_tombstones(3, revision=3)
    assert TakeSync(ahead, feed_of(behind)).sync_once() == 0
    assert ahead.get(TENANT, "k1") is None


def test_take_sync_told_410_goes_on_from_the_horizon_once_its_log_passed_it():
    leader, follower = history(), history()
    sync = TakeSync(follower, feed_of(leader), page_limit=2)
    sync.cursor = 3
    leader.collect_tombstones(8, revision=10, index=10)
    put(leader, "k6", 11)
    assert sync.sync_once() == 1, "k6 only: the follower's log brought everything below the horizon"
    assert sync.cursor == 12 and sync.expired == 0 and follower.get(TENANT, "k6").value == b"v11"


def test_take_sync_told_410_while_behind_the_horizon_merges_nothing():
    """The follower has k1 live (it never applied the delete at 6); the leader collected that tombstone. A
    merge from the horizon on would keep k1 live for good, so the sync waits for the log or a copy."""
    leader, follower = history(), Store()
    for revision in range(1, 6):
        put(follower, f"k{revision}", revision)
    sync = TakeSync(follower, feed_of(leader))
    sync.cursor = 2
    leader.collect_tombstones(8, revision=10, index=10)
    assert sync.sync_once() == 0
    assert (sync.cursor, sync.expired) == (2, 1)
    assert follower.get(TENANT, "k1").value == b"v1"  # still stale, to be fixed by the log, not made permanent


def test_copy_whole_replaces_instead_of_merging_and_reads_the_horizon():
    leader = history()
    leader.collect_tombstones(8, revision=10, index=10)
    follower = Store()
    put(follower, "k1", 1)  # live here, deleted and collected on the leader
    copy = TakeSync(follower, feed_of(leader), page_limit=2).copy_whole()
    assert copy.horizon == 8 and copy.revision == 10 and copy.cursor == 11
    follower.load(copy.records, copy.revision, 10, copy.horizon)
    assert follower.get(TENANT, "k1") is None
    assert sorted(r.name for r in follower.records()) == ["k3", "k4", "k5"]


def test_copy_whole_starts_again_when_a_gc_overtakes_it_and_leaves_dropped_tenants_out():
    leader = history()
    put(leader, "b1", 12, tenant="beta")
    calls = []
    feed = feed_of(leader)

    def fetch_page(cursor, limit):
        calls.append(cursor)
        if len(calls) == 2:  # between the first and the second page: a gc, then a drop of beta
            leader.collect_tombstones(9, revision=13, index=13)
            leader.apply(Record(DROPPED_TENANT, "beta", b"", 14, 14), index=14)
        return feed(cursor, limit)

    copy = TakeSync(Store(), fetch_page, page_limit=2).copy_whole()
    assert calls[:3] == [0, 7, 0], "the page at cursor 7 was refused (horizon 9): the copy began again"
    assert copy.horizon == 9
    assert {r.key for r in copy.records} == {(TENANT, "k3"), (TENANT, "k4"), (TENANT, "k5"),
                                             (DROPPED_TENANT, "beta")}


def test_copy_whole_gives_up_when_every_copy_is_overtaken():
    leader = history()

    def fetch_page(cursor, limit):
        leader.collect_tombstones(leader.tombstones.horizon + 1, revision=leader.applied_revision + 1)
        if cursor > 0:
            raise CursorExpired("overtaken", horizon=cursor + 1)
        return feed_of(leader)(cursor, limit)

    with pytest.raises(RuntimeError, match="overtook each of 3 copies"):
        TakeSync(Store(), fetch_page, page_limit=2).copy_whole()


# ---- property: gc never resurrects a deleted key -----------------------------------------------------------

NAMES = ["a", "b"]
STEPS = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from(NAMES)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("gc"), st.sampled_from([0, 50, 100])),  # the horizon, as a percentage of the revisions
    st.tuples(st.just("replay"), st.integers(0, 1), st.sampled_from([1, 3, 100])),
    st.tuples(st.just("sync"), st.integers(0, 1), st.sampled_from(["leader", "other"])),
    st.tuples(st.just("copy"), st.integers(0, 1)),
    st.tuples(st.just("restart"), st.integers(0, 1)),  # its take sync starts again from cursor 0
), min_size=20, max_size=50)


class Cluster:
    """A leader store with its log, and two followers at their own positions in it; writes are entries
    ``("write", record)`` or ``("gc", horizon, revision)``; every write of the leader is recorded per key."""

    def __init__(self):
        self.leader, self.log, self.revision = Store(), [], 0
        self.followers = [Store(), Store()]
        self.positions = [0, 0]
        self.writes: dict[str, list[Record]] = {name: [] for name in NAMES}
        self.sources = [None, None]
        self.syncs = [TakeSync(store, self._feed(i)) for i, store in enumerate(self.followers)]

    def _feed(self, i):
        def fetch_page(cursor, limit):
            return feed_of(self.sources[i])(cursor, limit)
        return fetch_page

    def entry(self, entry):
        self.log.append(entry)
        apply(self.leader, entry, len(self.log))

    def step(self, step):
        kind = step[0]
        if kind in ("put", "delete"):
            current = self.leader.get(TENANT, step[1])
            if kind == "delete" and (current is None or current.deleted):
                return
            self.revision += 1
            record = Record(TENANT, step[1], b"" if kind == "delete" else f"v{self.revision}".encode(),
                            self.revision, self.revision, kind == "delete")
            self.writes[step[1]].append(record)
            self.entry(("write", record))
        elif kind == "gc":  # any horizon at all, even past what the followers applied: a member away too long
            self.revision += 1
            self.entry(("gc", self.revision * step[1] // 100 + 1, self.revision))
        elif kind == "replay":
            i = step[1]
            for _ in range(step[2]):
                if self.positions[i] < len(self.log):
                    self.positions[i] += 1
                    apply(self.followers[i], self.log[self.positions[i] - 1], self.positions[i])
        elif kind == "sync":
            i = step[1]
            self.sources[i] = self.leader if step[2] == "leader" else self.followers[1 - i]
            self.syncs[i].sync_once()
        elif kind == "restart":
            self.syncs[step[1]] = TakeSync(self.followers[step[1]], self._feed(step[1]))
        else:  # a copy of the leader's state, as a snapshot install does
            i = step[1]
            self.sources[i] = self.leader
            copy = self.syncs[i].copy_whole()
            self.followers[i].load(copy.records, copy.revision, len(self.log), copy.horizon)
            self.syncs[i].resume_from(copy.cursor)
            self.positions[i] = len(self.log)

    def check_no_resurrection(self):
        """No store shows a key's record that a later write of it, at or below the revision the store has
        applied, replaced: a deleted (or overwritten) key never comes back."""
        for store in [self.leader] + self.followers:
            for name, writes in self.writes.items():
                shown = store.get(TENANT, name)
                if shown is None or shown.deleted:
                    continue
                assert shown in writes, (name, shown)
                replaced = [w for w in writes if shown.revision < w.revision <= store.applied_revision]
                assert not replaced, f"{name}: shows revision {shown.revision}, replaced by {replaced[0]}"

    def converge(self):
        """Every follower replays the rest of the log: each then shows exactly the leader's live keys."""
        for i in (0, 1):
            self.step(("replay", i, len(self.log)))
        live = {name: record for name, record in
                ((name, self.leader.get(TENANT, name)) for name in NAMES) if record is not None and not record.deleted}
        for store in self.followers:
            shown = {name: store.get(TENANT, name) for name in NAMES}
            assert {name: record for name, record in shown.items() if record is not None and not record.deleted} == live


def apply(store: Store, entry, index: int) -> None:
    if entry[0] == "write":
        store.apply(entry[1], index=index)
    else:
        store.collect_tombstones(entry[1], entry[2], index)


@settings(max_examples=500, deadline=None, database=None)
@given(STEPS)
def test_gc_never_resurrects_a_deleted_key(steps):
    cluster = Cluster()
    for step in steps:
        cluster.step(step)
        cluster.check_no_resurrection()
    cluster.converge()
    cluster.check_no_resurrection()


def test_the_property_catches_a_merge_that_keeps_a_collected_key():
    """The check itself: merging the leader's full copy into a follower that still has a key live, after
    the leader collected that key's tombstone, leaves the key live; the property would fail on it."""
    cluster = Cluster()
    for step in [("put", "a"), ("replay", 0, 1), ("delete", "a"), ("gc", 100)]:
        cluster.step(step)
    follower = cluster.followers[0]
    follower.apply_all_if_newer([Record.from_json(r.to_json()) for r in cluster.leader.take(0, 100)[0]])
    follower.mark_applied(len(cluster.log), cluster.revision)  # as the old install did after its merge
    with pytest.raises(AssertionError, match="replaced by"):
        cluster.check_no_resurrection()
