"""The search engine of the linearizability checker: one key's history against one register.

RegisterSearch looks for an order of the answered requests that a single
register could have produced and that respects real time (Wing & Gong's
search, with Lowe's cache of configurations already explored). A request
with no definite answer may take effect at any moment after it was sent, or
never. Such requests are placed lazily: only right before an answer that
cannot be explained without them, and only the chain of them that answer
needs. Placing them any earlier never explains more, so a history with many
timed-out writes costs little more than one without.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator

from badkv.testing.history import Operation

INFINITY = math.inf
# The state after a write whose value no answer mentions: all such states are
# alike to the search, so they share one name and one cache entry.
_UNSEEN = object()
_IMPOSSIBLE = object()
_OBSERVING = frozenset({"read", "absent", "refused"})
_DEADLINE_CHECK_EVERY = 256


class Step:
    """One operation as the register search sees it.

    kind is write, delete or cas for a change; read, absent (a delete
    answered 404) or refused (a CAS answered 412) for an observation.
    bit is the operation's place in the bitset of its class.
    """

    __slots__ = ("op", "kind", "call", "ret", "value", "expected", "bit")

    def __init__(self, op: Operation, kind: str, ret: float, value: Any) -> None:
        self.op, self.kind, self.call, self.ret = op, kind, op.call, ret
        self.value, self.expected, self.bit = value, op.expected, 0


def _after(step: Step, state: Any) -> Any:
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


def split_steps(ops: Iterable[Operation], cutoff: float) -> tuple[list[Step], list[Step]]:
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
            required.append(Step(op, kind, op.return_, op.value))
        elif kind not in _OBSERVING:
            optional.append(Step(op, kind, INFINITY, op.value))
    mentioned = {s.value for s in required if s.kind == "read"}
    mentioned |= {s.expected for s in required + optional if s.kind in ("cas", "refused")}
    for step in required + optional:
        if step.kind in ("write", "cas") and step.value not in mentioned:
            step.value = _UNSEEN
    return required, optional


class RegisterSearch:
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
        required, optional = split_steps(ops, cutoff)
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
        self.cas_by_expected: dict[Any, list[Step]] = defaultdict(list)
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

    def _preludes(self, step: Step, state: Any, used: int, horizon: float) -> Iterator[tuple[int, list, Any]]:
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
    def _next_free(steps: list[Step], mask: int, used: int, horizon: float) -> Step | None:
        # Interchangeable operations are always taken in call order, so the used ones are a prefix.
        taken = (used & mask).bit_count()
        if taken < len(steps) and steps[taken].call <= horizon:
            return steps[taken]
        return None
