"""Tests for badkv.sync: a follower's take sync against a leader's take feed, without sockets."""

import threading

import pytest

from badkv.records import Record
from badkv.store import Store
from badkv.cluster.take_sync import TakeSync

TENANT = "acme"


def leader_store(count: int) -> Store:
    store = Store()
    for revision in range(1, count + 1):
        store.apply(Record(TENANT, f"k{revision}", f"v{revision}".encode(), revision, revision, False),
                    index=revision)
    return store


def feed_of(store: Store, calls: list | None = None):
    """The leader's ``GET /api/v1/take/{cursor}`` answer, as the follower receives it."""
    def fetch_page(cursor: int, limit: int) -> dict:
        if calls is not None:
            calls.append(cursor)
        records, next_cursor = store.take(cursor, limit)
        return {"records": [r.to_json() for r in records], "next": next_cursor,
                "revision": store.applied_revision}
    return fetch_page


def resetting_sync(leader: Store, follower: Store, resets: int) -> TakeSync:
    """A sync whose feed empties ``follower`` and resets the sync after each of the first ``resets``
    pages past the first, as a concurrent "the leader rewrote history" would."""
    feed, left = feed_of(leader), [resets]

    def fetch_page(cursor, limit):
        page = feed(cursor, limit)
        if cursor > 0 and left[0]:
            left[0] -= 1
            follower.load([], 0, 0)
            sync.reset()
        return page

    sync = TakeSync(follower, fetch_page, page_limit=10)
    return sync


def test_record_json_round_trip_keeps_binary_values_and_tombstones():
    for original in (Record(TENANT, "k", bytes(range(256)), 5, 7, False), Record(TENANT, "k", b"", 5, 8, True)):
        assert Record.from_json(original.to_json()) == original


def test_a_pass_pages_through_the_whole_feed_and_copies_it():
    leader, follower = leader_store(25), Store()
    calls = []
    sync = TakeSync(follower, feed_of(leader, calls), page_limit=10)
    assert sync.sync_once() == 25
    assert calls == [0, 11, 21]
    assert follower.records() == leader.records()
    assert sync.stats() == {"runs": 1, "records_seen": 25, "records_applied": 25, "errors": 0, "cursor": 26,
                            "expired": 0}


def test_the_next_pass_resumes_at_the_cursor_and_applies_only_what_is_newer():
    leader, follower = leader_store(5), Store()
    calls = []
    sync = TakeSync(follower, feed_of(leader, calls), page_limit=10)
    sync.sync_once()
    follower.apply(Record(TENANT, "k6", b"already here", 6, 6, False), index=6)
    leader.apply(Record(TENANT, "k6", b"v6", 6, 6, False), index=6)
    leader.apply(Record(TENANT, "k7", b"v7", 7, 7, False), index=7)
    calls.clear()
    assert sync.sync_once() == 1, "k6 is not newer than the follower's copy; only k7 is applied"
    assert calls == [6]
    assert follower.get(TENANT, "k6").value == b"already here"
    assert follower.get(TENANT, "k7").value == b"v7"


def test_a_failed_page_is_counted_and_the_next_pass_resumes_after_the_last_applied_page():
    leader = leader_store(25)
    feed, failures = feed_of(leader), iter([False, True])

    def flaky(cursor, limit):
        if cursor > 0 and next(failures, False):
            raise ConnectionError("leader went away")
        return feed(cursor, limit)

    sync = TakeSync(Store(), flaky, page_limit=10)
    with pytest.raises(ConnectionError):
        sync.sync_once()
    assert sync.errors == 1 and sync.runs == 0
    assert sync.cursor == 21 and sync.records_applied == 20, "two pages were applied before the failure"
    assert sync.sync_once() == 5
    assert sync.stats()["runs"] == 1 and sync.cursor == 26


def test_a_reset_during_a_pass_leaves_the_cursor_at_zero():
    """The store is emptied (the leader rewrote history) while a page is in flight: the pass must not
    move the cursor past records the store no longer holds."""
    leader, follower = leader_store(25), Store()
    sync = resetting_sync(leader, follower, resets=1)
    sync.sync_once()
    assert sync.cursor == 0
    sync.sync_once()
    assert sync.cursor == 26 and follower.records() == leader.records()


def test_two_threads_never_run_a_pass_at_the_same_time():
    leader = leader_store(30)
    feed = feed_of(leader)
    inside, overlapped, entered = [0], [False], threading.Event()
    guard = threading.Lock()

    def slow_feed(cursor, limit):
        with guard:
            inside[0] += 1
            overlapped[0] |= inside[0] > 1
        entered.set()
        threading.Event().wait(0.01)
        with guard:
            inside[0] -= 1
        return feed(cursor, limit)

    sync = TakeSync(Store(), slow_feed, page_limit=5)
    threads = [threading.Thread(target=sync.sync_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert entered.is_set() and not overlapped[0]
    assert sync.runs == 3 and sync.records_applied == 30


def test_a_transaction_is_never_split_across_pages_nor_applied_in_part():
    leader = leader_store(3)
    txn = [Record(TENANT, f"t{i}", b"x", 10, 10) for i in range(5)]  # one revision, as a transaction's
    leader.apply_all(txn, 10, index=4)
    leader.apply(Record(TENANT, "after", b"y", 11, 11), index=5)
    follower, applied_together = Store(), []
    original = follower.apply_all_if_newer
    follower.apply_all_if_newer = lambda records: applied_together.append(len(records)) or original(records)
    sync = TakeSync(follower, feed_of(leader), page_limit=2)
    assert sync.sync_once() == 9
    assert follower.records() == leader.records()
    assert 5 in applied_together  # the transaction's five records went into the store in one step
