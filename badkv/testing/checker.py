"""Judges a recorded client history against the promises badkv makes.

check_linearizable asks, key by key, whether a single register could have
produced the answers in an order that respects real time; the search itself
lives in badkv.testing.linearizability. A failing key is explained by the
shortest prefix of its history that already fails.

check_local_reads and check_no_lost_writes cover the weaker promises: what
a local read may return, and which state the cluster may settle on.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from badkv.testing.history import Operation
from badkv.testing.linearizability import INFINITY, RegisterSearch

logger = logging.getLogger(__name__)

# The name tests/testing/test_checker.py imports the search under.
_RegisterSearch = RegisterSearch


@dataclass
class CheckResult:
    """The verdict: ok is None when the deadline passed before a verdict was reached."""

    ok: bool | None
    key: str | None = None
    failing_history: list[Operation] = field(default_factory=list)
    reason: str = ""
    ops_checked: int = 0
    keys_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "key": self.key,
            "failing_history": [op.to_dict() for op in self.failing_history],
            "reason": self.reason,
            "ops_checked": self.ops_checked,
            "keys_checked": self.keys_checked,
        }


def check_linearizable(
    ops: Iterable[Operation], deadline_s: float = 30.0, *, clock: Callable[[], float] = time.monotonic
) -> CheckResult:
    """Whether every key's history could come from one register; the first failing key is explained.

    Raises ValueError when two requests on a key write the same value: the
    search relies on a value naming the one request that wrote it.
    """
    deadline = clock() + deadline_s
    by_key = _group_by_key(ops)
    ops_checked = keys_checked = 0
    for key in sorted(by_key):
        key_ops = by_key[key]
        _require_unique_values(key, key_ops)
        search = RegisterSearch(key_ops)
        finding = _obvious_violation(key_ops)
        verdict = False if finding else search.run(deadline, clock)
        logger.debug("key %r: %s after %d configurations", key, verdict, search.explored)
        if verdict is None:
            reason = f"deadline of {deadline_s:g} s passed while checking key {key!r}; no verdict"
            return CheckResult(None, key, [], reason, ops_checked, keys_checked)
        ops_checked += search.size
        keys_checked += 1
        if not verdict:
            known = finding[0].return_ if finding else INFINITY
            prefix, last = _shortest_failing_prefix(key_ops, known, deadline, clock)
            why = f" ({finding[1]})" if finding and last is finding[0] else ""
            reason = (
                f"key {key!r}: no register order explains the first {len(prefix)} operations; "
                f"the answer that breaks it is {_describe(last)}{why}"
            )
            return CheckResult(False, key, prefix, reason, ops_checked, keys_checked)
    reason = f"all {keys_checked} keys are linearizable"
    return CheckResult(True, None, [], reason, ops_checked, keys_checked)


def _require_unique_values(key: str, ops: list[Operation]) -> None:
    values = [op.value for op in ops if op.kind in ("write", "cas")]
    if len(values) != len(set(values)):
        raise ValueError(f"key {key!r}: a value is written twice; every write must write a value of its own")


def _obvious_violation(ops: list[Operation]) -> tuple[Operation, str] | None:
    """The earliest answer that no order of operations can explain, found without a search.

    It catches the common failures (stale reads, lost writes, reads from the
    future, two CAS won on one value) in one pass, whatever the concurrency,
    where proving them by search would have to rule out every order first.
    """
    changes = [op for op in ops if op.kind != "read" and op.status != "fail" and op.outcome is None]
    writer_of = {op.value: op for op in changes if op.kind != "delete"}
    acknowledged = sorted((op for op in changes if not op.is_open), key=lambda op: op.call)
    ack_calls = [op.call for op in acknowledged]
    # replaced_by[i]: the earliest return among acknowledged[i:], the changes sent at ack_calls[i] or later.
    returns = reversed([op.return_ for op in acknowledged])
    replaced_by = list(itertools.accumulate(returns, min, initial=INFINITY))[::-1]
    findings = []
    answered = [op for op in ops if op.status == "ok" and not op.is_open and op.outcome is None]
    for op in answered:
        needed = {"read": op.value, "cas": op.expected}.get(op.kind)
        if (op.kind == "read" and op.consistency != "linearizable") or needed is None:
            continue
        writer = writer_of.get(needed)
        if writer is None:
            findings.append((op, f"no request that may have taken effect wrote {needed!r}"))
        elif writer.call > op.return_:
            findings.append((op, f"{needed!r} was written only after it returned"))
        elif replaced_by[bisect.bisect_right(ack_calls, writer.effective_return)] < op.call:
            findings.append((op, f"{needed!r} had surely been replaced before it was sent"))
    winners: dict[str, Operation] = {}
    cas_wins = [op for op in answered if op.kind == "cas" and op.expected is not None]
    for op in sorted(cas_wins, key=lambda op: op.return_):
        if op.expected in winners:
            findings.append((op, f"op {winners[op.expected].id} had already won a CAS on {op.expected!r}"))
        winners.setdefault(op.expected, op)
    return min(findings, key=lambda finding: finding[0].return_, default=None)


def _shortest_failing_prefix(
    ops: list[Operation], known: float, deadline: float, clock: Callable[[], float]
) -> tuple[list[Operation], Operation | None]:
    """Bisect on return time for the earliest moment the history is already broken.

    A history cut at time T keeps what was known by then; if it cannot be
    explained, neither can any later cut, which is what makes bisection sound.
    known is a cut already shown to fail. Past the deadline the shortest
    prefix found so far is returned.
    """
    cutoffs = sorted({op.return_ for op in ops if not op.is_open and op.return_ <= known})
    low, high = 0, len(cutoffs) if known == INFINITY else len(cutoffs) - 1
    while low < high:
        middle = (low + high) // 2
        verdict = RegisterSearch(ops, cutoffs[middle]).run(deadline, clock)
        if verdict is None:
            break
        if verdict:
            low = middle + 1
        else:
            high = middle
    cutoff = cutoffs[high] if high < len(cutoffs) else INFINITY
    prefix = sorted((op for op in ops if op.call <= cutoff), key=lambda op: (op.call, op.id))
    last = max(prefix, key=lambda op: (op.effective_return == cutoff, op.call), default=None)
    return prefix, last


def _describe(op: Operation | None) -> str:
    if op is None:
        return "unknown"
    if op.kind == "read":
        answer = "not found" if op.value is None else f"value {op.value!r}"
    else:
        answer = op.outcome or op.status
    written = f" of {op.value!r}" if op.kind in ("write", "cas") else ""
    expected = f" expecting {op.expected!r}" if op.kind == "cas" else ""
    return f"op {op.id}, a {op.kind}{written}{expected} by process {op.process} via {op.node} that got {answer}"


def check_local_reads(ops: Iterable[Operation]) -> list[str]:
    """Violations of the local-read promise: only written values, and no going back on one node."""
    ops = list(ops)
    written: dict[str, set[str]] = defaultdict(set)
    for op in ops:
        if op.kind in ("write", "cas") and op.status != "fail" and op.outcome is None:
            written[op.key].add(op.value)
    reads = [op for op in ops if op.kind == "read" and op.consistency == "local" and op.status == "ok"]
    newest: dict[tuple[int, str, str], Operation] = {}
    problems = []
    for read in sorted(reads, key=lambda op: (op.call, op.id)):
        if read.value is not None and read.value not in written[read.key]:
            problems.append(f"local read op {read.id} of key {read.key!r} returned {read.value!r}, "
                            "which no request that may have taken effect wrote")
        if read.revision is None:
            continue
        where = (read.process, read.node, read.key)
        before = newest.get(where)
        if before is not None and read.revision < before.revision:
            problems.append(
                f"local read op {read.id} of key {read.key!r} on {read.node} saw revision {read.revision} "
                f"after op {before.id} of the same process had seen revision {before.revision}"
            )
        else:
            newest[where] = read
    return problems


def check_no_lost_writes(ops: Iterable[Operation], final_reads: dict[str, dict[str, str | None]]) -> list[str]:
    """Violations of the final state: nodes disagree, or settled on a value that was overwritten.

    final_reads maps node -> key -> value (None: not found); a key a node did
    not report is not judged for it. A value is acceptable when the request
    that produced it was not strictly followed by an acknowledged change.
    """
    by_key = _group_by_key(ops)
    problems = []
    for key in sorted(set(by_key) | {key for values in final_reads.values() for key in values}):
        finals = {node: values[key] for node, values in sorted(final_reads.items()) if key in values}
        if len(set(finals.values())) > 1:
            problems.append(f"nodes disagree on key {key!r}: {finals}")
        key_ops = by_key.get(key, [])
        acceptable = _possible_final_values(key_ops)
        written = {op.value for op in key_ops if op.kind in ("write", "cas")}
        for node, value in finals.items():
            if value not in acceptable:
                why = "a later acknowledged change replaced" if value in written else "no request wrote"
                problems.append(f"{node} ended with key {key!r} = {value!r}, which {why}")
    return problems


def _possible_final_values(ops: list[Operation]) -> set[str | None]:
    changes = [op for op in ops if op.kind != "read" and op.status != "fail" and op.outcome is None]
    acknowledged_calls = [op.call for op in changes if not op.is_open]
    last_call = max(acknowledged_calls, default=-INFINITY)
    possible = {op.value if op.kind != "delete" else None for op in changes if op.effective_return >= last_call}
    if not acknowledged_calls:
        possible.add(None)
    return possible


def _group_by_key(ops: Iterable[Operation]) -> dict[str, list[Operation]]:
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    return by_key
