"""Transactions: what one is (compares, then a success or a failure list of puts, deletes and gets), how
it is judged against a key's record, and the one log entry its writes travel in.

A transaction is decided on the leader, against applied state, under the node lock, at the moment its
entry is appended (no write to any of its keys is in flight then, so that state is exactly the state at
the entry's place in the log). The entry carries the outcome, the writes of the branch that ran, so every
node applies the same records whatever else it holds (take sync can bring a follower records newer than
its log, and compares judged again there could pick the other branch). No state and no I/O here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Callable

from badkv.errors import Stale
from badkv.records import Record

MAX_OPERATIONS = 128  # compares and both branches' operations together
MAX_BODY_BYTES = 3 * 2 ** 19  # 1.5 MiB
TARGETS = ("value", "revision", "exists")
COMPARE_OPS = ("==", "!=", "<", ">")
OPERATIONS = ("put", "delete", "get")


@dataclass(frozen=True, slots=True)
class Compare:
    """One condition on a key: its value (bytes), its revision (0 while it has no live record) or whether
    it exists. A value compare on a key without a live record is false whatever the op."""

    name: str
    target: str
    op: str
    value: bytes = b""
    revision: int = 0
    exists: bool = True

    def holds(self, record: Record | None) -> bool:
        live = record is not None and not record.deleted
        if self.target == "exists":
            return (live == self.exists) == (self.op == "==")
        if self.target == "revision":
            return _compare(record.revision if live else 0, self.op, self.revision)
        return live and _compare(record.value, self.op, self.value)


def _compare(left, op: str, right) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    return left < right if op == "<" else left > right


@dataclass(frozen=True, slots=True)
class Operation:
    """A put (with its value), a delete, or a get of one key of the transaction's tenant."""

    op: str
    name: str
    value: bytes = b""


@dataclass(frozen=True, slots=True)
class Transaction:
    compares: tuple[Compare, ...] = ()
    success: tuple[Operation, ...] = ()
    failure: tuple[Operation, ...] = ()

    def names(self) -> set[str]:
        """Every key the transaction compares, reads or writes (a write to any of them must wait for it)."""
        return {item.name for part in (self.compares, self.success, self.failure) for item in part}


@dataclass(slots=True)
class Outcome:
    """What a decided transaction does: which branch ran, the records it writes (one per key, all at
    ``revision``), each operation's result as the answer shows it, and the records they replace."""

    succeeded: bool
    revision: int
    writes: list[Record] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    replaced: dict[str, Record | None] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"succeeded": self.succeeded, "revision": self.revision if self.writes else None,
                "results": self.results}


def decide(txn: Transaction, tenant: str, lookup: Callable[[str], Record | None], revision: int) -> Outcome:
    """Judge the compares against ``lookup`` (the applied record of a name), then run the chosen branch's
    operations in order over a private view: a get sees the branch's earlier puts and deletes. A delete of a
    missing key writes nothing. Raises Stale, changing nothing, if a put or delete would lose to a stored
    record's newer timestamp (last-writer-wins would keep half of the transaction)."""
    succeeded = all(compare.holds(lookup(compare.name)) for compare in txn.compares)
    outcome = Outcome(succeeded, revision)
    view: dict[str, Record | None] = {}
    for operation in txn.success if succeeded else txn.failure:
        name = operation.name
        if name not in view:
            view[name] = outcome.replaced[name] = lookup(name)
        current = view[name]
        live = current is not None and not current.deleted
        if operation.op == "get":
            outcome.results.append(_get_result(name, current if live else None))
            continue
        if operation.op == "delete" and not live:
            outcome.results.append({"op": "delete", "name": name, "found": False, "revision": None})
            continue
        stored = outcome.replaced[name]
        if stored is not None and stored.timestamp > revision:
            raise Stale(f"key {name} has a timestamp newer than this transaction's revision; nothing was written",
                        stored_timestamp=stored.timestamp, name=name)
        view[name] = Record.build(tenant, name, operation.value if operation.op == "put" else b"", revision,
                                  revision, operation.op == "delete")
        outcome.results.append({"op": operation.op, "name": name, "found": live, "revision": revision})
    outcome.writes = [record for name, record in view.items()
                      if record is not None and record is not outcome.replaced[name]]
    return outcome


def _get_result(name: str, record: Record | None) -> dict:
    if record is None:
        return {"op": "get", "name": name, "found": False, "revision": None}
    return {"op": "get", "name": name, "found": True, "value": base64.b64encode(record.value).decode("ascii"),
            "revision": record.revision}


def txn_entry(tenant: str, revision: int, writes: list[Record]) -> dict:
    """The log entry of a decided transaction: the common fields every entry has (the WAL's reader keys
    on ``tenant``), and its writes as [name, value, deleted]; each record's timestamp is the revision."""
    return {"op": "txn", "tenant": tenant, "name": "", "value": b"", "timestamp": revision, "revision": revision,
            "writes": [[record.name, record.value, record.deleted] for record in writes]}


def records_of_entry(entry: dict) -> list[Record]:
    """The records a txn entry writes (the inverse of ``txn_entry``)."""
    tenant, revision = entry["tenant"], entry["revision"]
    return [Record.build(tenant, name, b"" if deleted else bytes(value), revision, revision, bool(deleted))
            for name, value, deleted in entry["writes"]]
