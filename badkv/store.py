"""The state machine: a lock-guarded dict of records with last-writer-wins apply.

A key is a tenant and a name, never one joined string. Records are indexed
by revision (one sorted list) so ``take`` costs O(records returned), not O(all
keys); a take filtered by tenant walks the same index and skips other tenants'
records, which keeps the write path to one index update. Tombstones are
indexed by revision too (``badkv/tombstones.py``), so a gc entry removes the
oldest in O(removed x log n) and a take older than its horizon is refused.
The records by key, in name order, and the per-tenant counts live in the key
table (``badkv/key_table.py``). Nothing here does I/O or knows about HTTP.
"""

from __future__ import annotations

import threading
from typing import Iterable

from sortedcontainers import SortedKeyList

from badkv.conditions import QuietCondition
from badkv.key_table import KeyTable
from badkv.records import KeyPage, Record
from badkv.tombstones import Tombstones
from badkv.watchers import Watcher, WatcherRegistry


# A record of this reserved tenant named T drops tenant T: every record of T older than the marker goes
# (tenant drop: one replicated entry). The marker stays, so take sync cannot bring older records back.
DROPPED_TENANT = "_dropped"


def _revision_of(record: Record) -> int:
    return record.revision


class Store:
    """Thread-safe map of (tenant, name) -> Record, with a revision index for take.

    Memory per key matters (a million keys must fit well under 500 MB), so records
    sit in one dict per tenant (the key table: no (tenant, name) tuple per key) and
    the revision index is a sorted list of the records themselves, keyed by their revision.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._applied = QuietCondition(self._lock)
        self._keys = KeyTable()
        self._by_revision = SortedKeyList(key=_revision_of)
        self.tombstones = Tombstones()  # by revision, and the gc horizon
        # Bumped on every change to a reserved tenant's records (tokens, quotas): caches of them
        # (badkv.security) rebuild when it moves, whichever path the change came by.
        self.system_version = 0
        # Dropped tenants' records wait here to leave the revision index a chunk at a time (prune_some),
        # so a drop holds the lock for a moment, not for its whole tenant; until then take skips them.
        self._unpruned: list[tuple[list[Record], int]] = []  # (records, drop revision)
        self._unpruned_count = 0
        self.prune_wanted = threading.Event()
        self.watchers = WatcherRegistry()  # takes waiting for a change (watch); woken under the lock
        self.applied_revision = 0
        self.applied_index = 0

    def __len__(self) -> int:
        """Records held, tombstones included."""
        return len(self._by_revision) - self._unpruned_count

    def get(self, tenant: str, name: str) -> Record | None:
        """The key's record, tombstones included; None if never written."""
        return self._keys.get(tenant, name)

    def apply(self, record: Record, *, index: int | None = None) -> bool:
        """Store ``record`` if it wins by last-writer-wins; return whether it did."""
        with self._lock:
            changed = self._apply_locked(record, record.wins_over(self._keys.get(record.tenant, record.name)))
            self._advance(record.revision, index)
            return changed

    def apply_all(self, records: list[Record], revision: int, index: int | None = None) -> int:
        """Store a transaction's records (each by last-writer-wins) in one hold of the lock, so no reader
        sees some of them without the others; return how many were stored."""
        with self._lock:
            changed = sum(self._apply_locked(record, record.wins_over(self._keys.get(record.tenant, record.name)))
                          for record in records)
            self._advance(revision, index)
            return changed

    def apply_noop(self, revision: int, index: int) -> None:
        with self._lock:
            self._advance(revision, index)

    def apply_if_newer(self, record: Record) -> bool:
        """Take sync: store ``record`` if its revision is newer than the stored one."""
        return self.apply_all_if_newer([record]) == 1

    def apply_all_if_newer(self, records: list[Record]) -> int:
        """Take sync: ``apply_if_newer`` for each of ``records`` (one revision's: a transaction's) in one
        hold of the lock; return how many were stored."""
        with self._lock:
            return sum(self._apply_if_newer_locked(record) for record in records)

    def _apply_if_newer_locked(self, record: Record) -> bool:
        if record.revision < self.tombstones.horizon:
            # This store applied every entry below its horizon: it holds such a record already, or the key
            # was deleted and its tombstone collected (a source behind it, e.g. a new leader that has not
            # applied everything yet, must not bring the key back).
            return False
        current = self._keys.get(record.tenant, record.name)
        dropped = self._keys.get(DROPPED_TENANT, record.tenant)
        if dropped is not None and not dropped.deleted and record.revision < dropped.revision:
            return False  # read from the leader before the drop applied here: it stays dropped
        return self._apply_locked(record, current is None or record.revision > current.revision)

    def _apply_locked(self, record: Record, wins: bool) -> bool:
        if not wins:
            return False
        old = self._replace(record)
        if old is not None:
            self._by_revision.remove(old)
        self._by_revision.add(record)
        self.tombstones.replaced(old, record)
        if self.watchers.count:
            self.watchers.changed((record,))
        if record.tenant == DROPPED_TENANT and not record.deleted:
            self._drop_locked(record.name, record.revision)
        return True

    def _drop_locked(self, tenant: str, revision: int) -> None:
        """Drop the tenant's records older than ``revision`` in one step: its dict and counters go now,
        its records leave the revision index later, in chunks (``prune_some``)."""
        records = self._keys.drop(tenant)
        if records is None:
            return
        for record in records:
            self.tombstones.replaced(record, None)
        self._unpruned.append((records, revision))
        self._unpruned_count += len(records)
        self.prune_wanted.set()

    def prune_some(self, limit: int = 1000) -> bool:
        """Take up to ``limit`` dropped records out of the revision index (a record newer than its drop,
        which only take sync can bring, goes back in); return whether more are left."""
        with self._lock:
            while self._unpruned and limit > 0:
                records, revision = self._unpruned[-1]
                chunk, records[-limit:] = records[-limit:], []
                limit -= len(chunk)
                self._unpruned_count -= len(chunk)
                for record in chunk:
                    self._by_revision.remove(record)
                    if record.revision > revision:
                        current = self._keys.get(record.tenant, record.name)
                        self._apply_locked(record, current is None or record.revision > current.revision)
                if not records:
                    self._unpruned.pop()
            if not self._unpruned:
                self.prune_wanted.clear()
            return bool(self._unpruned)

    def _replace(self, record: Record, *, in_order: bool = True) -> Record | None:
        """Put ``record`` in the key table (lock held, revision index untouched); return the record it replaced."""
        old = self._keys.put(record, in_order=in_order)
        if record.tenant[0] == "_":
            self.system_version += 1
        return old

    def _advance(self, revision: int, index: int | None) -> None:
        if revision > self.applied_revision:
            self.applied_revision = revision
            if self.watchers.count:
                self.watchers.applied(revision)
        if index is not None and index > self.applied_index:
            self.applied_index = index
        self._applied.notify_all()

    def mark_applied(self, index: int, revision: int) -> None:
        """State copied from elsewhere counts as applied through ``index`` and ``revision``."""
        with self._lock:
            self.applied_index = max(self.applied_index, index)
            self._advance(revision, None)

    def wait_for_revision(self, revision: int, timeout: float) -> bool:
        """Block until this store has applied ``revision`` (read-your-writes); False on timeout."""
        with self._lock:
            return self._applied.wait_for(lambda: self.applied_revision >= revision, timeout)

    def wait_for_index(self, index: int, timeout: float) -> bool:
        with self._lock:
            return self._applied.wait_for(lambda: self.applied_index >= index, timeout)

    def take(self, since: int, limit: int, tenant: str | None = None, prefix: str = "",
             watcher: Watcher | None = None) -> tuple[list[Record], int]:
        """Records with revision >= ``since``, oldest first, at most ``limit``, of ``tenant`` (and names starting
        with ``prefix``) if given; and the next cursor. With ``watcher``, a take that finds nothing registers
        it in the same hold of the lock, so no change can fall between the look and the wait.

        Only applied revisions show (a record take sync stored ahead of the log waits for it, as the log may
        still apply older ones), so whatever can still appear is at or above the next cursor: past the last
        record of a full page, else past the applied revision. A page never ends inside a revision. A cursor
        older than the gc horizon (but 0, the full copy) is refused: deletes after it may be gone."""
        with self._lock:
            self.tombstones.check_cursor(since)
            records, applied, ahead = [], self.applied_revision, None
            for record in self._by_revision.irange_key(min_key=since):
                if record.revision > applied:
                    ahead = record.revision
                    break
                if len(records) >= limit and record.revision != records[-1].revision:
                    break
                if ((tenant is None or record.tenant == tenant) and record.name.startswith(prefix)
                        and (not self._unpruned or self._keys.is_current(record))):
                    records.append(record)
            if len(records) >= limit:
                return records, records[-1].revision + 1
            if watcher is not None and not records:
                self.watchers.add(watcher, due_at=ahead)
            return records, max(since, applied + 1)

    def unwatch(self, watcher: Watcher) -> bool:
        """End a watcher's wait (its deadline passed, or its client left); False if it was already woken."""
        with self._lock:
            return self.watchers.remove(watcher)

    def wake_watchers(self) -> int:
        with self._lock:
            return self.watchers.wake_all()

    def records(self) -> list[Record]:
        """A consistent copy of every record (snapshots and backups)."""
        with self._lock:
            if self._unpruned:
                return [record for record in self._by_revision if self._keys.is_current(record)]
            return list(self._by_revision)

    def load(self, records: Iterable[Record], revision: int, index: int, horizon: int = 0) -> None:
        """Replace the whole content (restore from a snapshot, install a copy) and the gc horizon it was
        taken at; later duplicates of a key win."""
        with self._lock:
            self._keys.clear()
            self.system_version += 1
            self._unpruned, self._unpruned_count = [], 0
            for record in records:  # one pass of dict stores, then one sort: far cheaper than inserting
                self._replace(record, in_order=False)
            self._by_revision = SortedKeyList(self._keys.records(), key=_revision_of)
            self._keys.order_names()
            self.tombstones = Tombstones(self._by_revision, horizon)
            self.applied_revision = revision
            self.applied_index = index
            self._applied.notify_all()
            self.watchers.wake_all()

    def gc_horizon(self, below: int, most: int) -> int | None:
        """``Tombstones.horizon_below``: where a gc entry removing the oldest tombstones older than ``below``
        (at most about ``most``) puts the horizon; None if there are none."""
        with self._lock:
            return self.tombstones.horizon_below(below, most)

    def collect_tombstones(self, horizon: int, revision: int, index: int | None = None) -> int:
        """Apply a gc entry: remove every tombstone older than ``horizon`` and keep the horizon; returns how
        many went."""
        with self._lock:
            removed = 0
            for record in self.tombstones.expire(horizon):  # (each its key's current record: a tombstone)
                self._keys.forget(record)
                self._by_revision.remove(record)
                self.system_version += record.tenant[0] == "_"
                removed += 1
            self._advance(revision, index)
            return removed

    def range(self, tenant: str, *, start: str = "", end: str | None = None, prefix: str = "",
              limit: int = 1000, reverse: bool = False, count_only: bool = False) -> KeyPage:
        """The tenant's live keys in ``[start, end)`` that begin with ``prefix``, in name order (descending with
        ``reverse``), at most ``limit`` (or only their count), read at one applied revision: a page costs
        O(log n + what it skips and returns)."""
        with self._lock:
            page, count, next_name = self._keys.range(tenant, start, end, prefix, limit, reverse, count_only)
            return KeyPage(page, next_name, count, self.applied_revision)

    def live_records(self, tenant: str) -> list[Record]:
        """A copy of the tenant's live records (reserved tenants are small: tokens, quotas)."""
        with self._lock:
            return self._keys.live_records(tenant)

    def usage(self, tenant: str) -> tuple[int, int]:
        """The tenant's live keys and the bytes quotas count: values, and live keys' names (``stored_size``)."""
        return self._keys.usage(tenant)

    def usage_by_tenant(self) -> dict[str, tuple[int, int]]:
        """``usage`` of every tenant that has records."""
        with self._lock:
            return self._keys.usage_by_tenant()

    def stats(self) -> dict:
        with self._lock:
            tombstones, tenant_bytes = self._keys.tombstones, self._keys.value_bytes()
            return {"keys": len(self._by_revision) - self._unpruned_count - tombstones, "tombstones": tombstones,
                    "bytes": sum(tenant_bytes.values()), "tenant_bytes": tenant_bytes,
                    "tenants": len(tenant_bytes), "applied_revision": self.applied_revision,
                    "applied_index": self.applied_index, "horizon": self.tombstones.horizon,
                    "tombstones_removed": self.tombstones.removed}
