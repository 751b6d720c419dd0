"""Judges a recorded client history against the promises badkv makes.

check_linearizable looks, key by key, for an order of the answered requests
that a single register could have produced and that respects real time
(Wing & Gong's search, with Lowe's cache of configurations already explored).
A request with no definite answer may take effect at any moment after it was
sent, or never. Such requests are placed lazily: only right before an answer
that cannot be explained without them, and only the chain of them that
answer needs. Placing them any earlier never explains more, so a history
with many timed-out writes costs little more than one without.

check_local_reads and check_no_lost_writes cover the weaker promises: what
a local read may return, and which state the cluster may settle on.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from badkv.testing.history import Operation

logger = logging.getLogger(__name__)

INFINITY = math.inf
# The state after a write whose value no answer mentions: all such states are
# alike to the search, so they share one name and one cache entry.
_UNSEEN = object()
_IMPOSSIBLE = object()
_OBSERVING = frozenset({"read", "absent", "refused"})
_DEADLINE_CHECK_EVERY = 256


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


class _Step:
    """One operation as the register search sees it.

    kind is write, delete or cas for a change; read, absent (a delete
    answered 404) or refused (a CAS answered 412) for an observation.
    bit is the operation's place in the bitset of its class.
    """

    __slots__ = ("op", "kind", "call", "ret", "value", "expected", "bit")

    def __init__(self, op: Operation, kind: str, ret: float, value: Any) -> None:
        self.op, self.kind, self.call, self.ret = op, kind, op.call, ret
        self.value, self.expected, self.bit = value, op.expected, 0


def _after(step: _Step, state: Any) -> Any:
    """The register state once step has taken effect, or _IMPOSSIBLE if its answer rules state out."""
    kind = step.kind
    if kind == "write":
        return step.value
    if kind == "read":
        return state if state == step.value else _IMPOSSIBLE
    if kind == "cas":
        return step.value if state == step.expected else _IMPOSSIBLE
    if kind == "refused":
        return state if state != step.expected else _IMPOSSIBLE
    if kind == "delete":
        return None if state is not None else _IMPOSSIBLE
    return state if state is None else _IMPOSSIBLE  # absent


def _step_kind(op: Operation) -> str:
    if op.outcome == "not_found":
        return "absent"
    if op.outcome == "precondition_failed":
        return "refused"
    return op.kind


def _split(ops: Iterable[Operation], cutoff: float) -> tuple[list[_Step], list[_Step]]:
    """Operations the register must explain, and operations that may or may not have happened.

    Only what was known at time cutoff counts: later requests are left out,
    and requests still waiting for an answer then are treated as open.
    """
    required, optional = [], []
    for op in ops:
        kind = _step_kind(op)
        if op.call > cutoff or (op.status == "fail" and kind not in _OBSERVING):
            continue
        if op.kind == "read" and (op.consistency != "linearizable" or op.status != "ok"):
            continue
        if not op.is_open and op.return_ <= cutoff:
            required.append(_Step(op, kind, op.return_, op.value))
        elif kind not in _OBSERVING:
            optional.append(_Step(op, kind, INFINITY, op.value))
    mentioned = {s.value for s in required if s.kind == "read"}
    mentioned |= {s.expected for s in required + optional if s.kind in ("cas", "refused")}
    for step in required + optional:
        if step.kind in ("write", "cas") and step.value not in mentioned:
            step.value = _UNSEEN
    return required, optional


class _RegisterSearch:
    """Depth-first search for one key's order, caching configurations already explored.

    A configuration is (bits of required operations done, bits of open
    operations used, register state). Three rules keep the search small
    without losing any solution: an observation that fits the state goes
    next, alone, since moving it to the front of a solution keeps it valid;
    open operations are placed only as the shortest run before a required
    operation that cannot go without them; and a move that leaves a value
    some pending answer still needs is dropped, since a value never returns.
    """

    def __init__(self, ops: list[Operation], cutoff: float = INFINITY) -> None:
        required, optional = _split(ops, cutoff)
        self.required = sorted(required, key=lambda s: (s.call, s.ret))
        self.calls = [s.call for s in self.required]
        self.rets = [s.ret for s in self.required]
        self.size = len(required) + len(optional)
        optional.sort(key=lambda s: s.call)
        for index, step in enumerate(optional):
            step.bit = 1 << index
        self.writer_of = {s.value: s for s in optional if s.kind in ("write", "cas") and s.value is not _UNSEEN}
        self.seen_writes = [s for s in optional if s.kind == "write" and s.value is not _UNSEEN]
        self.unseen_writes = [s for s in optional if s.kind == "write" and s.value is _UNSEEN]
        self.deletes = [s for s in optional if s.kind == "delete"]
        self.unseen_mask = sum(s.bit for s in self.unseen_writes)
        self.delete_mask = sum(s.bit for s in self.deletes)
        self.cas_by_expected: dict[Any, list[_Step]] = defaultdict(list)
        for step in optional:
            if step.kind == "cas":
                self.cas_by_expected[step.expected].append(step)
        self.needers: dict[Any, int] = defaultdict(int)
        for index, step in enumerate(self.required):
            needed = {"read": step.value, "cas": step.expected}.get(step.kind)
            if needed is not None:
                self.needers[needed] |= 1 << index
        self.explored = 0

    def run(self, deadline: float, clock: Callable[[], float]) -> bool | None:
        """True if a linearization exists, False if none does, None if the deadline passed first."""
        everything = (1 << len(self.required)) - 1
        if everything == 0:
            return True
        visited = set()
        stack = [self._moves(0, 0, None)]
        while stack:
            config = next(stack[-1], None)
            if config is None:
                stack.pop()
                continue
            done, used, state = config
            if done == everything:
                return True
            # Operations before the first one not done are all done: keep only the rest in the cache.
            first = (~done & (done + 1)).bit_length() - 1
            compact = (first, done >> first, used, state)
            if compact in visited:
                continue
            visited.add(compact)
            self.explored += 1
            if self.explored % _DEADLINE_CHECK_EVERY == 0 and clock() > deadline:
                return None
            stack.append(self._moves(done, used, state))
        return False

    def _moves(self, done: int, used: int, state: Any) -> Iterator[tuple[int, int, Any]]:
        candidates, horizon = self._minimal(done)
        for index in candidates:
            # An observation that fits now can go first without losing any solution.
            step = self.required[index]
            if step.kind in _OBSERVING and _after(step, state) is not _IMPOSSIBLE:
                yield done | 1 << index, used, state
                return
        for index in candidates:
            step, now_done = self.required[index], done | 1 << index
            after = _after(step, state)
            if after is not _IMPOSSIBLE:
                if after == state or not self._abandons((state,), now_done):
                    yield now_done, used, after
                continue
            for prelude, passed, reached in self._preludes(step, state, used, horizon):
                after = _after(step, reached)
                left = (state, *passed) if after == reached else (state, *passed, reached)
                if not self._abandons(left, now_done):
                    yield now_done, used | prelude, after

    def _abandons(self, values: Iterable[Any], done: int) -> bool:
        """Whether leaving these values strands an answer that still needs one: values never come back."""
        needers = self.needers
        return any(needers.get(value, 0) & ~done for value in values)

    def _minimal(self, done: int) -> tuple[list[int], float]:
        """Required operations that may come next, and the earliest return among those not done."""
        calls, rets, count = self.calls, self.rets, len(self.calls)
        index = (~done & (done + 1)).bit_length() - 1
        horizon, candidates = INFINITY, []
        while index < count and calls[index] <= horizon:
            if not done >> index & 1:
                candidates.append(index)
                horizon = min(horizon, rets[index])
            index += 1
        return [i for i in candidates if calls[i] <= horizon], horizon

    def _preludes(self, step: _Step, state: Any, used: int, horizon: float) -> Iterator[tuple[int, list, Any]]:
        """Shortest runs of open operations after which step's answer fits.

        Each is given as (their bits, the states passed through on the way, the state reached).
        """
        if step.kind in ("delete", "refused"):
            for bit, reached in self._departures(state, used, horizon):
                yield bit, [], reached
            return
        target = {"cas": step.expected, "read": step.value}.get(step.kind)  # None for absent
        chain = self._chain_to(target, state, used, horizon)
        if chain is not None:
            yield chain[0], chain[1], target

    def _chain_to(self, target: Any, state: Any, used: int, horizon: float) -> tuple[int, list] | None:
        """The open operations that lead from state to target, found backwards from the unique writer."""
        chain, passed = 0, []
        for _ in range(self.size + 1):
            if target == state:
                return chain, passed[:-1]
            if target is None:
                delete = self._next_free(self.deletes, self.delete_mask, used, horizon)
                return None if delete is None else (chain | delete.bit, passed)
            writer = self.writer_of.get(target)
            if writer is None or used & writer.bit or writer.call > horizon:
                return None
            chain |= writer.bit
            if writer.kind == "write":
                return chain, passed
            target = writer.expected
            passed.append(target)
        return None

    def _departures(self, state: Any, used: int, horizon: float) -> Iterator[tuple[int, Any]]:
        """Single open operations that change state; interchangeable ones are offered once."""
        for write in self.seen_writes:
            if write.call > horizon:
                break
            if not used & write.bit:
                yield write.bit, write.value
        write = self._next_free(self.unseen_writes, self.unseen_mask, used, horizon)
        if write is not None:
            yield write.bit, _UNSEEN
        delete = self._next_free(self.deletes, self.delete_mask, used, horizon)
        if delete is not None and state is not None:
            yield delete.bit, None
        offered_unseen = False
        for cas in self.cas_by_expected.get(state, ()):
            if cas.call > horizon:
                break
            if used & cas.bit or (cas.value is _UNSEEN and offered_unseen):
                continue
            offered_unseen = offered_unseen or cas.value is _UNSEEN
            yield cas.bit, cas.value

    @staticmethod
    def _next_free(steps: list[_Step], mask: int, used: int, horizon: float) -> _Step | None:
        # Interchangeable operations are always taken in call order, so the used ones are a prefix.
        taken = (used & mask).bit_count()
        if taken < len(steps) and steps[taken].call <= horizon:
            return steps[taken]
        return None


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
        search = _RegisterSearch(key_ops)
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
        verdict = _RegisterSearch(ops, cutoffs[middle]).run(deadline, clock)
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
