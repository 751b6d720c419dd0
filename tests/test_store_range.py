"""Tests for Store.range: live keys of one tenant in name order, paged, read at one revision."""

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


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=4), st.booleans()), max_size=30),
       st.text(max_size=2), st.integers(1, 5))
def test_range_matches_a_sorted_model(writes, prefix, limit):
    store, model = Store(), {}
    for revision, (name, deleted) in enumerate(writes, 1):
        store.apply(Record("t", name, b"v", revision, revision, deleted))
        model[name] = deleted
    live = sorted((n for n, deleted in model.items() if not deleted and n.startswith(prefix)), key=lambda n: n.encode())
    seen, start = [], ""
    while True:
        page = store.range("t", prefix=prefix, start=start, limit=limit)
        seen += names(page)
        if page.next is None:
            break
        start = page.next
    assert seen == live
