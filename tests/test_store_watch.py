"""Watch on the store (``Store.take`` with a watcher): a watcher that passes ``next`` back never skips or
repeats a change, whatever writes, deletes, transactions and take-sync records come in between, and a
watcher registered by an empty take is woken by the first change it can see."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from badkv.records import Record
from badkv.store import Store
from badkv.watchers import Watcher

TENANTS = ("t1", "t2")
NAMES = ("a", "ab", "b", "ba")
KEYS = st.tuples(st.sampled_from(TENANTS), st.sampled_from(NAMES))
# One log entry: a write or delete of one key, or a transaction of a few keys (one revision for all).
ENTRY = st.lists(st.tuples(KEYS, st.booleans(), st.integers(0, 3)), min_size=1, max_size=3,
                 unique_by=lambda change: change[0])
STEP = st.one_of(st.tuples(st.just("apply"), st.integers(1, 3)),
                 st.tuples(st.just("sync_ahead"), st.integers(0, 4)),  # take sync brings a later entry early
                 st.tuples(st.just("watch"), st.integers(1, 4)))
FILTER = st.sampled_from([(None, ""), ("t1", ""), ("t1", "a"), ("t2", "b")])


def log_of(entries) -> list[list[Record]]:
    """Each entry's records at its revision; a timestamp offset makes some writes lose last-writer-wins."""
    log = []
    for index, changes in enumerate(entries):
        revision = 10 * (index + 1)
        log.append([Record(tenant, name, b"" if deleted else b"v%d" % revision, revision - 5 * lag, revision,
                           deleted) for (tenant, name), deleted, lag in changes])
    return log


def apply_entry(store: Store, records: list[Record]) -> None:
    if len(records) == 1:
        store.apply(records[0])
    else:
        store.apply_all(records, records[0].revision)


def visible(store: Store, cursor: int, tenant, prefix) -> bool:
    return bool(store.take(cursor, 1, tenant, prefix)[0])


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(ENTRY, min_size=1, max_size=25), steps=st.lists(STEP, max_size=60), where=FILTER)
def test_a_watcher_never_skips_or_repeats_a_change_and_is_always_woken(entries, steps, where):
    tenant, prefix = where
    store, log = Store(), log_of(entries)
    applied, cursor, seen, waiting = 0, 0, [], None

    def look(limit: int):
        nonlocal cursor, waiting
        watcher = Watcher(tenant, prefix)
        page, next_cursor = store.take(cursor, limit, tenant, prefix, watcher)
        assert next_cursor >= cursor and all(record.revision >= cursor for record in page)
        assert all(record.revision < next_cursor for record in page)
        for record in page:  # every record shown is its key's state at that moment
            assert store.get(record.tenant, record.name) is record
        seen.extend(page)
        cursor = next_cursor
        waiting = None if page else watcher

    for step, amount in steps:
        if step == "apply":
            for records in log[applied:applied + amount]:
                apply_entry(store, records)
            applied = min(len(log), applied + amount)
        elif step == "sync_ahead" and applied + amount < len(log):
            store.apply_all_if_newer(log[applied + amount])
        elif step == "watch":
            look(amount)
        if waiting is not None and visible(store, cursor, tenant, prefix):
            assert waiting.woken, "a change the watcher could see did not wake it"
    for records in log[applied:]:
        apply_entry(store, records)
    for _ in range(len(log) + 2):  # drain: the last look finds nothing
        look(1000)
        if waiting is not None:
            break

    shown = [(record.key, record.revision) for record in seen]
    assert len(shown) == len(set(shown)), "a change was shown twice"
    assert [revision for _, revision in shown] == sorted(revision for _, revision in shown)
    final = {key: store.get(*key) for key in {(t, n) for t in TENANTS for n in NAMES} if store.get(*key)}
    wanted = {key: record for key, record in final.items()
              if tenant in (None, key[0]) and key[1].startswith(prefix)}
    last_seen = {record.key: record for record in seen}
    assert last_seen == wanted, "the watcher's last view of a key is not the key's final state"


def test_a_record_take_sync_stored_ahead_shows_once_the_log_reaches_it_and_older_ones_are_not_skipped():
    store = Store()
    store.apply(Record("t1", "a", b"1", 10, 10))
    store.apply_if_newer(Record("t1", "c", b"3", 30, 30))  # ahead of the log
    page, cursor = store.take(0, 10)
    assert [r.revision for r in page] == [10] and cursor == 11
    watcher = Watcher(None)
    assert store.take(cursor, 10, watcher=watcher) == ([], 11)
    store.apply(Record("t1", "b", b"2", 20, 20))
    assert watcher.woken
    page, cursor = store.take(cursor, 10)
    assert [r.revision for r in page] == [20] and cursor == 21
    later = Watcher(None)
    assert store.take(cursor, 10, watcher=later) == ([], 21)
    store.apply(Record("t1", "c", b"3", 30, 30))  # the log applies what take sync already stored: no change
    assert later.woken, "reaching a record stored ahead wakes its watchers"
    assert [r.revision for r in store.take(cursor, 10)[0]] == [30]


def test_a_filtered_take_moves_its_cursor_past_other_tenants_changes():
    store = Store()
    for revision in range(1, 6):
        store.apply(Record("t2", f"k{revision}", b"x", revision, revision))
    page, cursor = store.take(0, 10, "t1")
    assert page == [] and cursor == 6


def test_a_full_page_ends_after_its_last_revision_and_never_inside_a_transaction():
    store = Store()
    store.apply(Record("t1", "a", b"1", 1, 1))
    store.apply_all([Record("t1", "b", b"2", 2, 2), Record("t1", "c", b"2", 2, 2)], 2)
    store.apply(Record("t1", "d", b"3", 3, 3))
    page, cursor = store.take(0, 2)
    assert [r.name for r in page] == ["a", "b", "c"] and cursor == 3


def test_replacing_the_whole_store_wakes_every_watcher():
    store = Store()
    watchers = [Watcher(None), Watcher("t1", "a")]
    for watcher in watchers:
        store.take(0, 10, watcher.tenant, watcher.prefix, watcher)
    store.load([Record("t2", "z", b"", 5, 5)], 5, 1)
    assert all(watcher.woken for watcher in watchers) and not store.watchers


def test_unwatch_ends_a_registration_and_says_whether_it_was_still_waiting():
    store = Store()
    watcher = Watcher("t1")
    store.take(0, 10, "t1", "", watcher)
    assert store.unwatch(watcher) is True and store.unwatch(watcher) is False
    store.apply(Record("t1", "a", b"1", 1, 1))
    assert not watcher.woken
