"""Tombstone retention in the store: the tombstones ordered by revision, the horizon a gc entry removed them
below, and the rule that refuses a take cursor older than that horizon. No lock of its own: the store
calls it with its lock held.

A gc entry names a horizon H and removes every tombstone with revision < H. Every node has applied the same
entries before it, so every node removes the same set, whatever its clock says; the leader picks H
(``badkv/cluster/tombstones.py``). After it, a take from a cursor c with 0 < c < H could miss deletes, so it is
refused (``CursorExpired``, 410); take/0 is a full copy, which needs no tombstones older than the copy.
"""

from __future__ import annotations

from sortedcontainers import SortedKeyList

from badkv.errors import CursorExpired
from badkv.records import Record


def _revision_of(record: Record) -> int:
    return record.revision


class Tombstones:
    """The store's current tombstones, oldest first, and what gc did to them."""

    def __init__(self, records=(), horizon: int = 0) -> None:
        self._by_revision = SortedKeyList((record for record in records if record.deleted), key=_revision_of)
        self.horizon = horizon  # every tombstone older than this revision was removed by gc
        self.removed = 0  # by gc entries, since this process started

    def replaced(self, old: Record | None, new: Record | None) -> None:
        """``new`` is its key's current record now, instead of ``old`` (None: no record)."""
        if old is not None and old.deleted:
            self._by_revision.remove(old)
        if new is not None and new.deleted:
            self._by_revision.add(new)

    def check_cursor(self, since: int) -> None:
        """Raise CursorExpired for a take cursor older than the horizon (0, the full copy, is always fine)."""
        if 0 < since < self.horizon:
            raise CursorExpired(f"cursor {since} is older than the tombstone horizon {self.horizon}: deletes after "
                                "it may have been removed; copy again from take/0", horizon=self.horizon)

    def horizon_below(self, below: int, most: int) -> int | None:
        """The horizon that removes the oldest tombstones older than ``below``, at most ``most`` of them but
        never part of one revision (a transaction's): one past the newest removed. None if none is older."""
        tombstones = self._by_revision
        if not tombstones or tombstones[0].revision >= below:
            return None
        last = min(tombstones.bisect_key_left(below), most) - 1
        return tombstones[max(0, last)].revision + 1

    def expire(self, horizon: int):
        """Take the tombstones older than ``horizon`` out, yielding each (the store forgets them), and move the
        horizon up to it."""
        tombstones = self._by_revision
        while tombstones and tombstones[0].revision < horizon:
            self.removed += 1
            yield tombstones.pop(0)
        self.horizon = max(self.horizon, horizon)

    def oldest(self) -> int | None:
        """The revision of the oldest tombstone, or None."""
        return self._by_revision[0].revision if self._by_revision else None
