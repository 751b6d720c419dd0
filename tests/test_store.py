"""Tests for badkv.store: last-writer-wins, the hybrid clock, write checks, the revision index and take."""

import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sortedcontainers import SortedKeyList

from badkv.errors import NotFound, PreconditionFailed, Stale
from badkv.clock import HybridClock
from badkv.records import Record, check_write
from badkv.store import Store

TENANT = "acme"


def record(name="k", value=b"v", timestamp=100, revision=10, *, tenant=TENANT, deleted=False):
    return Record(tenant, name, b"" if deleted else value, timestamp, revision, deleted)


def filled_store(count, *, tenants=(TENANT,)):
    """A store holding ``count`` keys with revisions 1..count, spread round-robin over ``tenants``."""
    store = Store()
    for revision in range(1, count + 1):
        tenant = tenants[revision % len(tenants)]
        store.apply(record(f"k{revision}", b"x", revision, revision, tenant=tenant), index=revision)
    return store


# ---- Record ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mine, theirs, wins", [
    ((101, 1), (100, 9), True),      # greater timestamp wins, whatever the revisions
    ((99, 9), (100, 1), False),      # smaller timestamp loses
    ((100, 11), (100, 10), True),    # tie: the later revision wins
    ((100, 9), (100, 10), False),    # tie: the earlier revision loses
    ((100, 10), (100, 10), False),   # the very same write does not win over itself
])
def test_wins_over_is_last_writer_wins(mine, theirs, wins):
    ours, other = record(timestamp=mine[0], revision=mine[1]), record(timestamp=theirs[0], revision=theirs[1])
    assert ours.wins_over(other) is wins


def test_wins_over_nothing():
    assert record().wins_over(None) is True


def test_tombstone_orders_like_any_write():
    tombstone = record(timestamp=200, revision=20, deleted=True)
    assert tombstone.wins_over(record(timestamp=100, revision=30))
    assert not record(timestamp=150, revision=40).wins_over(tombstone)


def test_record_dict_round_trip():
    original = record("k", b"\x00\xff", 5, 6)
    assert Record.from_dict(original.to_dict()) == original


@pytest.mark.parametrize("op, value, deleted", [("put", b"data", False), ("delete", b"", True)])
def test_record_from_entry(op, value, deleted):
    entry = {"op": op, "tenant": TENANT, "name": "k", "value": b"data", "timestamp": 7, "revision": 8}
    assert Record.from_entry(entry) == Record(TENANT, "k", value, 7, 8, deleted)


# ---- HybridClock ------------------------------------------------------------------------------

def test_clock_follows_the_wall_clock_when_it_moves_forward():
    clock = HybridClock(iter([100, 200, 300]).__next__)
    assert [clock.next() for _ in range(3)] == [100, 200, 300]


@pytest.mark.parametrize("wall, expected", [
    ([100, 100, 100], [100, 101, 102]),          # the wall clock repeats
    ([100, 50, 40, 200], [100, 101, 102, 200]),  # it steps back, then forward past the stamps
    ([1000, 1, 1001], [1000, 1001, 1002]),       # it steps back, then to exactly the last stamp
])
def test_clock_is_strictly_increasing_when_the_wall_clock_misbehaves(wall, expected):
    clock = HybridClock(iter(wall).__next__)
    stamps = [clock.next() for _ in wall]
    assert stamps == expected
    assert clock.last == expected[-1]


def test_observe_pushes_the_clock_past_a_seen_revision():
    clock = HybridClock(lambda: 100)
    clock.observe(5000)
    assert clock.next() == 5001


def test_observe_never_moves_the_clock_back():
    clock = HybridClock(iter([900, 100]).__next__)
    assert clock.next() == 900
    clock.observe(10)
    assert clock.next() == 901


def test_clock_is_unique_across_threads():
    clock = HybridClock(lambda: 1)
    stamps = []
    lock = threading.Lock()

    def stamp_many():
        mine = [clock.next() for _ in range(500)]
        with lock:
            stamps.extend(mine)

    threads = [threading.Thread(target=stamp_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(stamps) == list(range(1, 2001))


# ---- check_write --------------------------------------------------------------------------------

LIVE = record(timestamp=100, revision=10)
DELETED = record(timestamp=100, revision=10, deleted=True)


@pytest.mark.parametrize("current, op, timestamp, if_match, if_none_match", [
    pytest.param(None, "put", None, None, True, id="if-none-match-missing"),
    pytest.param(DELETED, "put", None, None, True, id="if-none-match-deleted"),
    pytest.param(LIVE, "put", None, 10, False, id="if-match-right"),
    pytest.param(LIVE, "delete", None, 10, False, id="delete-if-match-right"),
    pytest.param(LIVE, "delete", None, None, False, id="delete-live"),
    pytest.param(LIVE, "put", 100, None, False, id="equal-timestamp"),
    pytest.param(LIVE, "put", 101, None, False, id="newer-timestamp"),
    pytest.param(DELETED, "put", 100, None, False, id="equal-timestamp-over-tombstone"),
    pytest.param(LIVE, "put", None, None, False, id="no-timestamp"),
    pytest.param(None, "put", 1, None, False, id="first-write"),
])
def test_check_write_allows(current, op, timestamp, if_match, if_none_match):
    assert check_write(current, op, timestamp, if_match, if_none_match) is None


@pytest.mark.parametrize("current, op, timestamp, if_match, if_none_match, error, extra", [
    pytest.param(LIVE, "put", None, None, True, PreconditionFailed, {"revision": 10}, id="if-none-match-live"),
    pytest.param(LIVE, "put", None, 11, False, PreconditionFailed, {"revision": 10}, id="if-match-wrong"),
    pytest.param(None, "put", None, 10, False, PreconditionFailed, {"revision": None}, id="if-match-missing"),
    pytest.param(DELETED, "put", None, 10, False, PreconditionFailed, {"revision": None}, id="if-match-deleted"),
    pytest.param(None, "delete", None, 10, False, PreconditionFailed, {"revision": None},
                 id="if-match-before-not-found"),
    pytest.param(None, "delete", None, None, False, NotFound, {}, id="delete-missing"),
    pytest.param(DELETED, "delete", None, None, False, NotFound, {}, id="delete-deleted"),
    pytest.param(LIVE, "put", 99, None, False, Stale, {"stored_timestamp": 100}, id="older-put"),
    pytest.param(LIVE, "delete", 99, None, False, Stale, {"stored_timestamp": 100}, id="older-delete"),
    pytest.param(DELETED, "put", 99, None, False, Stale, {"stored_timestamp": 100}, id="older-than-tombstone"),
])
def test_check_write_refuses(current, op, timestamp, if_match, if_none_match, error, extra):
    with pytest.raises(error) as raised:
        check_write(current, op, timestamp, if_match, if_none_match)
    assert type(raised.value) is error
    assert raised.value.extra == extra
    assert raised.value.message


# ---- Store.apply ------------------------------------------------------------------------------------

@pytest.mark.parametrize("second, wins", [
    (record(value=b"new", timestamp=101, revision=5), True),
    (record(value=b"new", timestamp=99, revision=50), False),
    (record(value=b"new", timestamp=100, revision=11), True),
    (record(value=b"new", timestamp=100, revision=9), False),
])
def test_apply_is_last_writer_wins(second, wins):
    store = Store()
    first = record(value=b"old", timestamp=100, revision=10)
    assert store.apply(first) is True
    assert store.apply(second) is wins
    assert store.get(TENANT, "k") == (second if wins else first)


def test_apply_advances_applied_revision_and_index_even_when_the_record_loses():
    store = Store()
    store.apply(record(timestamp=100, revision=10), index=1)
    assert store.apply(record(timestamp=50, revision=11), index=2) is False
    assert (store.applied_revision, store.applied_index) == (11, 2)


def test_keys_are_tenant_name_pairs_not_joined_strings():
    store = Store()
    store.apply(Record("a-b", "c", b"first", 1, 1))
    store.apply(Record("a", "b-c", b"second", 2, 2))
    assert store.get("a-b", "c").value == b"first"
    assert store.get("a", "b-c").value == b"second"
    assert store.stats()["keys"] == 2


def test_get_returns_tombstones_and_none_for_unknown_keys():
    store = Store()
    store.apply(record(deleted=True))
    assert store.get(TENANT, "k").deleted is True
    assert store.get(TENANT, "other") is None


def test_tombstones_are_counted_and_uncounted():
    store = Store()
    store.apply(record("a", revision=1, timestamp=1))
    store.apply(record("b", revision=2, timestamp=2))
    store.apply(record("a", revision=3, timestamp=3, deleted=True))
    assert (store.stats()["keys"], store.stats()["tombstones"]) == (1, 1)
    store.apply(record("a", revision=4, timestamp=4))
    assert (store.stats()["keys"], store.stats()["tombstones"]) == (2, 0)


def test_bytes_per_tenant_follow_overwrites_and_deletes():
    store = Store()
    store.apply(record("a", b"12345", 1, 1, tenant="t1"))
    store.apply(record("b", b"123", 2, 2, tenant="t2"))
    assert store.stats()["tenant_bytes"] == {"t1": 5, "t2": 3}
    store.apply(record("a", b"12", 3, 3, tenant="t1"))
    assert store.stats()["tenant_bytes"] == {"t1": 2, "t2": 3}
    store.apply(record("a", b"", 4, 4, tenant="t1", deleted=True))
    stats = store.stats()
    assert stats["tenant_bytes"] == {"t1": 0, "t2": 3}
    assert stats["bytes"] == 3


def test_a_losing_write_changes_no_counters():
    store = Store()
    store.apply(record("a", b"12345", 100, 1))
    before = store.stats()
    store.apply(record("a", b"", 50, 2, deleted=True))
    after = store.stats()
    assert {k: after[k] for k in ("keys", "tombstones", "bytes", "tenant_bytes")} == \
        {k: before[k] for k in ("keys", "tombstones", "bytes", "tenant_bytes")}


@pytest.mark.parametrize("candidate, applied", [
    (record(value=b"new", timestamp=1, revision=11), True),      # newer revision wins even with an older timestamp
    (record(value=b"new", timestamp=999, revision=10), False),   # same revision: already there
    (record(value=b"new", timestamp=999, revision=9), False),    # older revision loses even with a newer timestamp
])
def test_apply_if_newer_compares_revisions(candidate, applied):
    store = Store()
    stored = record(value=b"old", timestamp=100, revision=10)
    store.apply(stored)
    assert store.apply_if_newer(candidate) is applied
    assert store.get(TENANT, "k") == (candidate if applied else stored)


def test_apply_if_newer_stores_unknown_keys_and_updates_the_index():
    store = Store()
    store.apply(record("k", timestamp=5, revision=5))
    assert store.apply_if_newer(record("k", timestamp=1, revision=6)) is True
    assert store.apply_if_newer(record("new", revision=3)) is True
    records, _ = store.take(0, 10)
    assert [(r.name, r.revision) for r in records] == [("new", 3)], "revision 6 shows once applied"
    store.mark_applied(0, 6)
    records, _ = store.take(0, 10)
    assert [(r.name, r.revision) for r in records] == [("new", 3), ("k", 6)]


# ---- take ---------------------------------------------------------------------------------------

def test_take_returns_records_in_revision_order():
    store = Store()
    for name, revision in (("c", 30), ("a", 10), ("b", 20)):
        store.apply(record(name, timestamp=revision, revision=revision))
    records, next_cursor = store.take(0, 10)
    assert [r.name for r in records] == ["a", "b", "c"]
    assert next_cursor == 31


def test_take_since_is_inclusive():
    store = filled_store(5)
    records, _ = store.take(3, 10)
    assert [r.revision for r in records] == [3, 4, 5]


@pytest.mark.parametrize("limit, revisions, next_cursor", [(1, [2], 3), (3, [2, 3, 4], 5), (10, [2, 3, 4, 5], 6)])
def test_take_limit_and_next_cursor(limit, revisions, next_cursor):
    store = filled_store(5)
    records, cursor = store.take(2, limit)
    assert [r.revision for r in records] == revisions
    assert cursor == next_cursor


@pytest.mark.parametrize("since, tenant, next_cursor", [(6, None, 6), (100, None, 100), (0, "nobody", 6)])
def test_take_past_the_end_returns_nothing_and_a_cursor_past_what_was_applied(since, tenant, next_cursor):
    store = filled_store(5)
    records, cursor = store.take(since, 10, tenant=tenant)
    assert records == []
    assert cursor == next_cursor


def test_take_filters_by_tenant():
    store = filled_store(9, tenants=("t0", "t1", "t2"))
    records, cursor = store.take(0, 100, tenant="t1")
    assert [r.revision for r in records] == [1, 4, 7]
    assert {r.tenant for r in records} == {"t1"}
    assert cursor == 10, "the cursor moves past every record scanned, other tenants' too"
    assert store.take(0, 100, tenant="nobody")[0] == []


def test_take_shows_a_key_once_in_its_latest_state():
    store = Store()
    store.apply(record("a", b"1", 1, 1))
    store.apply(record("b", b"1", 2, 2))
    store.apply(record("a", b"2", 3, 3))
    store.apply(record("b", b"", 4, 4, deleted=True))
    records, _ = store.take(0, 10)
    assert [(r.name, r.value, r.deleted) for r in records] == [("a", b"2", False), ("b", b"", True)]
    assert store.take(0, 10, tenant=TENANT)[0] == records


class _CountingSortedKeyList(SortedKeyList):
    visited = 0

    def irange_key(self, *args, **kwargs):
        for record in super().irange_key(*args, **kwargs):
            self.visited += 1
            yield record


@pytest.mark.parametrize("since, limit, expected", [
    (9_991, 1_000, list(range(9_991, 10_001))),   # a cursor near the end of 10,000 records
    (5_000, 3, [5_000, 5_001, 5_002]),            # a small page in the middle
    (10_001, 1_000, []),                          # past the end
])
def test_take_touches_only_what_it_returns(since, limit, expected):
    store = filled_store(10_000)
    store._by_revision = _CountingSortedKeyList(store._by_revision, key=store._by_revision.key)
    records, _ = store.take(since, limit)
    assert [r.revision for r in records] == expected
    assert store._by_revision.visited <= len(expected) + 1


# ---- wait_for_revision ------------------------------------------------------------------------------

def test_wait_for_revision_returns_once_another_thread_applies():
    store = Store()
    waiting = threading.Event()
    result = {}

    def wait():
        waiting.set()
        result["applied"] = store.wait_for_revision(5, timeout=10)

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiting.wait(5)
    store.apply(record("a", revision=3, timestamp=3))
    store.apply(record("b", revision=5, timestamp=5))
    waiter.join(10)
    assert not waiter.is_alive()
    assert result == {"applied": True}


def test_wait_for_revision_returns_at_once_for_an_applied_revision():
    store = filled_store(3)
    assert store.wait_for_revision(2, timeout=0) is True


def test_wait_for_revision_times_out():
    store = filled_store(3)
    assert store.wait_for_revision(4, timeout=0.05) is False


def test_wait_for_index_follows_noops():
    store = Store()
    store.apply_noop(revision=7, index=1)
    assert store.wait_for_index(1, timeout=0) is True
    assert store.wait_for_revision(7, timeout=0) is True
    assert store.wait_for_index(2, timeout=0.01) is False


# ---- load, records, stats -----------------------------------------------------------------------------

def test_load_replaces_the_whole_content():
    store = Store()
    store.apply(record("old", b"12345", 1, 1, tenant="gone"), index=1)
    store.apply(record("dead", b"", 2, 2, deleted=True), index=2)
    kept = [record("a", b"xy", 10, 10), record("b", b"", 11, 11, deleted=True)]
    store.load(kept, revision=50, index=7)
    assert store.get("gone", "old") is None
    assert store.get(TENANT, "dead") is None
    assert sorted(store.records(), key=lambda r: r.revision) == kept
    assert [r.name for r in store.take(0, 10)[0]] == ["a", "b"]
    assert store.stats() == {"keys": 1, "tombstones": 1, "bytes": 2, "tenant_bytes": {TENANT: 2}, "tenants": 1,
                             "applied_revision": 50, "applied_index": 7, "horizon": 0, "tombstones_removed": 0}


def test_load_wakes_waiters():
    store = Store()
    result = {}
    waiter = threading.Thread(target=lambda: result.update(ok=store.wait_for_revision(40, timeout=10)))
    waiter.start()
    store.load([], revision=50, index=7)
    waiter.join(10)
    assert result == {"ok": True}


def test_stats_of_an_empty_store():
    assert Store().stats() == {"keys": 0, "tombstones": 0, "bytes": 0, "tenant_bytes": {}, "tenants": 0,
                               "applied_revision": 0, "applied_index": 0, "horizon": 0,
                               "tombstones_removed": 0}


def test_stats_counts_tenants_keys_and_applied_position():
    store = filled_store(6, tenants=("t0", "t1"))
    stats = store.stats()
    assert (stats["keys"], stats["tenants"], stats["bytes"]) == (6, 2, 6)
    assert (stats["applied_revision"], stats["applied_index"]) == (6, 6)


# ---- properties -------------------------------------------------------------------------------------

NAMES = st.sampled_from([("t1", "a"), ("t1", "b"), ("t2", "a"), ("t2", "c")])


class StoreMatchesModel(RuleBasedStateMachine):
    """Random puts and deletes with random timestamps: the Store equals a dict applying LWW by hand."""

    def __init__(self):
        super().__init__()
        self.store = Store()
        self.model: dict[tuple[str, str], Record] = {}
        self.revisions = itertools.count(1)

    def _model_apply(self, candidate: Record) -> bool:
        current = self.model.get(candidate.key)
        if current is None or (candidate.timestamp > current.timestamp) or (
                candidate.timestamp == current.timestamp and candidate.revision > current.revision):
            self.model[candidate.key] = candidate
            return True
        return False

    @rule(key=NAMES, value=st.binary(max_size=8), timestamp=st.integers(0, 20), delete=st.booleans())
    def replicate(self, key, value, timestamp, delete):
        """A log entry applied as is (replication): LWW decides."""
        candidate = Record(*key, b"" if delete else value, timestamp, next(self.revisions), delete)
        assert self.store.apply(candidate) is self._model_apply(candidate)

    @rule(key=NAMES, value=st.binary(max_size=8), timestamp=st.none() | st.integers(0, 20), delete=st.booleans())
    def write(self, key, value, timestamp, delete):
        """A client write on the leader: checked first, then applied; refused writes change nothing."""
        revision = next(self.revisions)
        op = "delete" if delete else "put"
        current = self.model.get(key)
        model_refuses = (delete and (current is None or current.deleted)) or (
            timestamp is not None and current is not None and timestamp < current.timestamp)
        try:
            check_write(self.store.get(*key), op, timestamp)
        except (NotFound, Stale):
            assert model_refuses
            return
        assert not model_refuses
        candidate = Record(*key, b"" if delete else value, revision if timestamp is None else timestamp,
                           revision, delete)
        self._model_apply(candidate)
        self.store.apply(candidate)

    @invariant()
    def same_records(self):
        assert {r.key: r for r in self.store.records()} == self.model
        for key, expected in self.model.items():
            assert self.store.get(*key) == expected

    @invariant()
    def same_stats(self):
        stats = self.store.stats()
        assert stats["keys"] == sum(not r.deleted for r in self.model.values())
        assert stats["tombstones"] == sum(r.deleted for r in self.model.values())
        assert stats["bytes"] == sum(len(r.value) for r in self.model.values())

    @invariant()
    def take_is_the_model_in_revision_order(self):
        records, _ = self.store.take(0, 100)
        assert records == sorted(self.model.values(), key=lambda r: r.revision)


StoreMatchesModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestStoreMatchesModel = StoreMatchesModel.TestCase

OPERATIONS = st.lists(st.tuples(NAMES, st.integers(0, 10), st.booleans()), min_size=0, max_size=60)


@settings(max_examples=80, deadline=None)
@given(operations=OPERATIONS, tenant=st.none() | st.sampled_from(["t1", "t2"]), data=st.data())
def test_paging_through_take_returns_each_key_once_in_revision_order(operations, tenant, data):
    store = Store()
    latest: dict[tuple[str, str], Record] = {}
    for revision, (key, timestamp, delete) in enumerate(operations, start=1):
        candidate = Record(*key, b"" if delete else b"v%d" % revision, timestamp, revision, delete)
        if store.apply(candidate):
            latest[key] = candidate
    seen, cursor = [], 0
    for _ in range(len(operations) + 2):
        limit = data.draw(st.integers(1, 7), label="page size")
        page, next_cursor = store.take(cursor, limit, tenant=tenant)
        assert len(page) <= limit
        assert next_cursor > cursor or not page
        seen.extend(page)
        cursor = next_cursor
        if len(page) < limit:
            break
    else:
        pytest.fail("paging did not reach the end")
    expected = sorted((r for r in latest.values() if tenant in (None, r.tenant)), key=lambda r: r.revision)
    assert seen == expected
    assert len({r.key for r in seen}) == len(seen)
