"""Tests for badkv/txn.py: compares, the branch that runs, its operations in order, and the txn log entry."""

import msgpack
import pytest

from badkv.errors import Stale
from badkv.records import Record
from badkv.txn import Compare, Operation, Transaction, decide, records_of_entry, txn_entry

STATE = {"a": Record("t", "a", b"apple", 10, 10), "gone": Record("t", "gone", b"", 11, 11, deleted=True)}


def run(txn, state=STATE, revision=100):
    return decide(txn, "t", state.get, revision)


@pytest.mark.parametrize("compare, holds", [
    (Compare("a", "exists", "=="), True),
    (Compare("a", "exists", "==", exists=False), False),
    (Compare("gone", "exists", "=="), False),  # a tombstone does not exist
    (Compare("nobody", "exists", "!="), True),
    (Compare("a", "value", "==", value=b"apple"), True),
    (Compare("a", "value", "!=", value=b"apple"), False),
    (Compare("a", "value", "<", value=b"banana"), True),
    (Compare("a", "value", ">", value=b"banana"), False),
    (Compare("nobody", "value", "!=", value=b"x"), False),  # no live record: every value compare is false
    (Compare("a", "revision", "==", revision=10), True),
    (Compare("a", "revision", ">", revision=10), False),
    (Compare("gone", "revision", "==", revision=0), True),  # revision 0: no live record
    (Compare("nobody", "revision", "<", revision=1), True),
])
def test_each_compare(compare, holds):
    assert compare.holds(STATE.get(compare.name)) is holds
    outcome = run(Transaction((compare,), (Operation("get", "a"),), ()))
    assert outcome.succeeded is holds and len(outcome.results) == (1 if holds else 0)


def test_the_success_branch_writes_every_key_at_one_revision():
    txn = Transaction((Compare("a", "value", "==", value=b"apple"),),
                      (Operation("put", "a", b"pear"), Operation("put", "b", b"plum"), Operation("delete", "a"),
                       Operation("put", "a", b"fig"), Operation("get", "a"), Operation("delete", "nobody")),
                      (Operation("put", "never", b"x"),))
    outcome = run(txn)
    assert outcome.succeeded and outcome.revision == 100
    assert [(r.name, r.value, r.revision, r.timestamp, r.deleted) for r in outcome.writes] == [
        ("a", b"fig", 100, 100, False), ("b", b"plum", 100, 100, False)]  # one record per key: the last
    assert outcome.results[4] == {"op": "get", "name": "a", "found": True, "value": "Zmln", "revision": 100}
    assert outcome.results[5] == {"op": "delete", "name": "nobody", "found": False, "revision": None}
    assert [r["found"] for r in outcome.results[:3]] == [True, False, True]


def test_the_failure_branch_runs_when_any_compare_fails_and_reads_write_nothing():
    txn = Transaction((Compare("a", "exists", "=="), Compare("b", "exists", "==")), (Operation("put", "a", b"x"),),
                      (Operation("get", "a"), Operation("get", "b")))
    outcome = run(txn)
    assert not outcome.succeeded and outcome.writes == []
    assert outcome.to_json() == {"succeeded": False, "revision": None, "results": [
        {"op": "get", "name": "a", "found": True, "value": "YXBwbGU=", "revision": 10},
        {"op": "get", "name": "b", "found": False, "revision": None}]}


def test_a_write_that_would_lose_to_a_newer_timestamp_refuses_the_whole_transaction():
    state = {**STATE, "future": Record("t", "future", b"v", 10 ** 18, 12)}
    with pytest.raises(Stale):
        run(Transaction((), (Operation("put", "a", b"x"), Operation("put", "future", b"y")), ()), state)
    assert run(Transaction((), (Operation("get", "future"),), ()), state).results[0]["found"]  # reading it is fine


def test_the_entry_carries_the_writes_through_the_wire_form():
    outcome = run(Transaction((), (Operation("put", "a", b"\x00\xff"), Operation("delete", "a"),
                                   Operation("put", "b", b"")), ()))
    entry = msgpack.unpackb(msgpack.packb(txn_entry("t", 100, outcome.writes), use_bin_type=True))
    assert entry["op"] == "txn" and entry["tenant"] == "t"
    assert records_of_entry(entry) == outcome.writes
    assert [r.deleted for r in records_of_entry(entry)] == [True, False]


def test_names_are_every_key_the_transaction_touches():
    txn = Transaction((Compare("c", "exists", "=="),), (Operation("put", "s", b""),), (Operation("get", "f"),))
    assert txn.names() == {"c", "s", "f"}
