"""Raft's safety properties, checked over the nodes of a simulated network (``badkv/testing/sim.py``).

A ``SafetyChecker`` remembers what the network has seen so far: the leader of
each term, every committed entry (and the term it committed in) and the entry
applied at each index. ``check`` raises ``SafetyViolation`` unless there is one
leader per term, logs match, every leader holds every entry committed in its
term or before (leader completeness), and one entry is applied per index.
"""

from __future__ import annotations

import itertools

from badkv.consensus.core import Core
from badkv.consensus.log import Log


class SafetyViolation(AssertionError):
    """A Raft safety property failed on the simulated network."""


class SafetyChecker:
    """What a simulated network's nodes led, committed and applied, and the checks on it."""

    def __init__(self) -> None:
        self.committed: dict[int, tuple[int, int, int]] = {}  # index -> (term, revision, term it committed in)
        self.applied_at: dict[int, tuple[int, int]] = {}
        self.leaders: dict[int, str] = {}

    def applied(self, name: str, entry: dict) -> None:
        """``name`` applied ``entry``: no node applied another entry at its index."""
        identity = (entry["term"], entry["revision"])
        known = self.applied_at.setdefault(entry["index"], identity)
        if known != identity:
            raise SafetyViolation(f"{name} applied {identity} at {entry['index']}, another node {known}")

    def note_commits(self, core: Core) -> None:
        """Remember the entries a leader's ``core`` committed since the last call."""
        for index in range(max(core.log.base_index, max(self.committed, default=0)) + 1, core.commit_index + 1):
            entry = core.log.entry(index)
            self.committed[index] = (entry["term"], entry["revision"], core.current_term)

    def check(self, up: list) -> None:
        """Raise SafetyViolation unless every property holds now for the ``up`` nodes (each a ``name`` and a
        ``core``)."""
        for node in up:
            if node.core.is_leader:
                holder = self.leaders.setdefault(node.core.current_term, node.name)
                if holder != node.name:
                    raise SafetyViolation(f"two leaders in term {node.core.current_term}: {holder}, {node.name}")
                self.check_holds_committed(node.core)
        for first, second in itertools.combinations(up, 2):
            check_logs_match(first.core.log, second.core.log, first.name, second.name)

    def check_holds_committed(self, core: Core) -> None:
        """Leader completeness: a leader of term T holds every entry committed in T or before."""
        for index, (term, revision, commit_term) in self.committed.items():
            if index <= core.log.base_index or commit_term > core.current_term:
                continue
            if index > core.log.last_index:
                raise SafetyViolation(f"leader {core.name} of term {core.current_term} lacks committed entry {index}")
            entry = core.log.entry(index)
            if (entry["term"], entry["revision"]) != (term, revision):
                raise SafetyViolation(f"leader {core.name} holds another entry at committed index {index}")


def check_logs_match(first: Log, second: Log, first_name: str, second_name: str) -> None:
    """Log matching: where two logs hold an entry of the same index and term, all before it is the same."""
    low = max(first.base_index, second.base_index) + 1
    high = min(first.last_index, second.last_index)
    for index in range(high, low - 1, -1):
        if first.term_at(index) == second.term_at(index):
            for earlier in range(low, index + 1):
                if first.entry(earlier) != second.entry(earlier):
                    raise SafetyViolation(f"{first_name} and {second_name} agree on entry {index}'s term but"
                                          f" differ at {earlier}")
            return
