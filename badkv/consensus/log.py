"""The in-memory Raft log: entries after a compaction point, each a dict with ``index`` and ``term``."""

from __future__ import annotations


class Log:
    """Entries ``base_index+1 .. last_index``; ``base_index`` and ``base_term`` describe the last
    entry compacted into a snapshot."""

    def __init__(self, base_index: int = 0, base_term: int = 0):
        self.base_index = base_index
        self.base_term = base_term
        self.entries: list[dict] = []

    @property
    def last_index(self) -> int:
        return self.base_index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1]["term"] if self.entries else self.base_term

    def term_at(self, index: int) -> int | None:
        """The term of entry ``index``; None when it is beyond the log or compacted away."""
        if index == self.base_index:
            return self.base_term
        if self.base_index < index <= self.last_index:
            return self.entries[index - self.base_index - 1]["term"]
        return None

    def entry(self, index: int) -> dict:
        return self.entries[index - self.base_index - 1]

    def slice(self, start: int, limit: int) -> list[dict]:
        """Entries from ``start`` on, at most ``limit`` of them."""
        offset = start - self.base_index - 1
        return self.entries[offset:offset + limit]

    def append(self, entries: list[dict]) -> None:
        self.entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        del self.entries[index - self.base_index - 1:]

    def compact(self, index: int, term: int) -> None:
        """Forget entries up to ``index`` (they are in a snapshot)."""
        drop = min(index, self.last_index) - self.base_index
        if drop > 0:
            del self.entries[:drop]
        self.base_index, self.base_term = index, term


def noop_entry(revision: int) -> dict:
    """The entry a leader appends at the start of its term (the key order is the wire's)."""
    return {"op": "noop", "tenant": "", "name": "", "value": b"", "timestamp": 0, "revision": revision}
