"""Tests for Store.range: live keys of one tenant in name order, paged, read at one revision."""

import threading

import pytest
from hypothesis import given, settings, strategies as st

from badkv.records import Record, prefix_end
from badkv.store import Store

NAMES = ["a", "ab", "abc", "b", "ba", "c", "é", "\U0001f600"]


@pytest.fixture
def store():
    store = Store()
    for revision, name in enumerate(NAMES, 1):
        store.apply(Record("t", name, name.encode(), revision, revision))
    store.apply(Record("other", "aa", b"x", 20, 20))
    store.apply(Record("t", "ab", b"", 30, 30, deleted=True))  # a tombstone is not listed
    return store


def names(page):
    return [record.name for record in page.records]


def test_every_live_key_in_utf8_byte_order(store):
    page = store.range("t")
    assert names(page) == sorted((n for n in NAMES if n != "ab"), key=lambda n: n.encode())
    assert (page.next, page.count, page.revision) == (None, 7, 30)


@pytest.mark.parametrize("query, expected", [
    ({"prefix": "a"}, ["a", "abc"]),
    ({"start": "ab", "end": "ba"}, ["abc", "b"]),
    ({"start": "b"}, ["b", "ba", "c", "é", "\U0001f600"]),
    ({"prefix": "a", "start": "ab"}, ["abc"]),
    ({"prefix": "zz"}, []),
    ({"prefix": "b", "reverse": True}, ["ba", "b"]),
])
def test_prefix_and_half_open_ranges(store, query, expected):
    assert names(store.range("t", **query)) == expected


@pytest.mark.parametrize("reverse", [False, True])
def test_pages_joined_by_next_list_each_key_once(store, reverse):
    seen, bound = [], {}
    while True:
        page = store.range("t", limit=2, reverse=reverse, **bound)
        seen += names(page)
        if page.next is None:
            break
        bound = {"end": page.next} if reverse else {"start": page.next}
    assert seen == names(store.range("t", reverse=reverse)) and len(seen) == 7


def test_count_only_counts_the_whole_range(store):
    page = store.range("t", prefix="a", count_only=True, limit=1)
    assert (page.records, page.count, page.next) == ([], 2, None)


def test_a_dropped_tenant_lists_nothing_and_a_snapshot_load_keeps_the_order(store):
    copy = Store()
    copy.load(store.records(), store.applied_revision, 9)
    assert names(copy.range("t")) == names(store.range("t"))
    store.apply(Record("_dropped", "t", b"", 40, 40))
    assert names(store.range("t")) == [] and names(store.range("other")) == ["aa"]


def test_the_end_of_a_prefix():
    assert prefix_end("ab") == "ac" and prefix_end("") is None
    assert prefix_end("a" + chr(0x10FFFF)) == "b"


# One random step: a put, a delete, or a transaction writing or deleting several names at one revision.
STEPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.lists(st.tuples(st.text(min_size=1, max_size=4), st.booleans()), min_size=1, max_size=1)),
    st.tuples(st.just("txn"), st.lists(st.tuples(st.text(min_size=1, max_size=4), st.booleans()), min_size=1, max_size=6)),
), max_size=25)


def apply_steps(store, steps):
    """Apply ``steps`` to ``store`` at revisions 1, 2, ...; return the model (name -> (value, deleted))."""
    model = {}
    for revision, (_kind, writes) in enumerate(steps, 1):
        records = {name: Record("t", name, b"" if deleted else str(revision).encode(), revision, revision, deleted)
                   for name, deleted in writes}
        store.apply_all(list(records.values()), revision, index=revision)
        model.update((name, (record.value, record.deleted)) for name, record in records.items())
    return model


@settings(max_examples=60, deadline=None, database=None)
@given(STEPS, st.text(max_size=2), st.integers(1, 5))
def test_range_matches_a_sorted_model(steps, prefix, limit):
    store = Store()
    model = apply_steps(store, steps)
    live = sorted((n for n, (_, deleted) in model.items() if not deleted and n.startswith(prefix)), key=lambda n: n.encode())
    seen, start = [], ""
    while True:
        page = store.range("t", prefix=prefix, start=start, limit=limit)
        seen += [(record.name, record.value) for record in page.records]
        if page.next is None:
            break
        start = page.next
    assert seen == [(name, model[name][0]) for name in live]


@settings(max_examples=60, deadline=None, database=None)
@given(STEPS, st.integers(1, 4))
def test_a_transaction_is_all_or_nothing_in_take_pages_and_copies(steps, limit):
    """Every revision's records come in one take page, whatever the page size, and a copy made page by
    page (as take sync does) holds each transaction whole: the same records as the source."""
    source, copy = Store(), Store()
    apply_steps(source, steps)
    cursor, pages = 0, []
    while True:
        records, cursor = source.take(cursor, limit)
        pages.append(records)
        if len(records) < limit:
            break
    for page in pages:
        for revision in {record.revision for record in page}:
            whole = [r for r in source.records() if r.revision == revision]
            assert [r for r in page if r.revision == revision] == whole
        copy.apply_all_if_newer(page)
    assert copy.records() == source.records()


def test_readers_never_see_half_of_a_transaction():
    """A writer applies transactions setting a and b to one value; range pages read meanwhile always show
    the two equal. (Applying them one at a time instead fails this within a few hundred rounds.)"""
    store, stop, seen = Store(), threading.Event(), []

    def write():
        for revision in range(1, 3001):
            store.apply_all([Record("t", "a", b"%d" % revision, revision, revision),
                             Record("t", "b", b"%d" % revision, revision, revision)], revision, revision)
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not stop.is_set():
        values = {record.value for record in store.range("t").records}
        seen.append(len(values))
    writer.join()
    assert set(seen) <= {0, 1} and len(seen) > 10
