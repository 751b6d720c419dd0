"""Tests for badkv.key_table: records by key, name order and the per-tenant counts as records come and go."""

from badkv.key_table import KeyTable
from badkv.records import Record


def live(tenant, name, value, revision):
    return Record(tenant, name, value, revision, revision)


def tombstone(tenant, name, revision):
    return Record(tenant, name, b"", revision, revision, deleted=True)


def test_put_counts_live_keys_value_and_name_bytes_and_tombstones():
    table = KeyTable()
    first = live("t", "ab", b"xyz", 1)
    assert table.put(first) is None
    table.put(live("t", "c", b"", 2))
    assert table.usage("t") == (2, 3 + 2 + 1)
    assert table.put(tombstone("t", "ab", 3)) is first  # a tombstone's name counts for nothing
    assert (table.usage("t"), table.tombstones, table.value_bytes()) == ((1, 1), 1, {"t": 0})
    assert table.usage("nobody") == (0, 0)


def test_range_lists_live_names_in_order_with_the_next_page_start():
    table = KeyTable()
    for revision, name in enumerate(["b", "a", "ab", "c", "d"], 1):
        table.put(live("t", name, b"v", revision))
    table.put(tombstone("t", "c", 9))
    page, count, next_name = table.range("t", "", None, "", 2, False, False)
    assert ([r.name for r in page], count, next_name) == (["a", "ab"], 2, "b")
    page, count, next_name = table.range("t", "", None, "a", 10, False, False)
    assert ([r.name for r in page], next_name) == (["a", "ab"], None)
    page, count, next_name = table.range("t", "b", None, "", 10, True, False)
    assert [r.name for r in page] == ["d", "b"]
    assert table.range("t", "", None, "", 1, False, True) == ([], 4, None)


def test_forgetting_the_last_tombstone_of_a_tenant_removes_the_tenant():
    table = KeyTable()
    gone = tombstone("t", "a", 1)
    table.put(gone)
    table.put(live("u", "a", b"1", 2))
    table.forget(gone)
    assert table.get("t", "a") is None and table.tombstones == 0
    assert table.usage_by_tenant() == {"u": (1, 2)}
    assert table.range("t", "", None, "", 10, False, False) == ([], 0, None)


def test_drop_takes_the_tenant_out_and_order_names_sorts_after_unordered_puts():
    table = KeyTable()
    records = [live("t", name, b"v", revision) for revision, name in enumerate(["c", "a", "b"], 1)]
    for record in records:
        table.put(record, in_order=False)
    table.put(tombstone("t", "z", 4), in_order=False)
    table.order_names()
    assert [r.name for r in table.range("t", "", None, "", 10, False, False)[0]] == ["a", "b", "c"]
    assert table.is_current(records[0])
    assert sorted(r.name for r in table.drop("t")) == ["a", "b", "c", "z"]
    assert (table.drop("t"), table.tombstones, table.usage_by_tenant()) == (None, 0, {})
    assert not table.is_current(records[0])
    assert list(table.records()) == [] and table.live_records("t") == []
