"""The log of an ``-in-memory`` node: the write-ahead log's interface, with nothing on disk.

A node calls the same methods whether it keeps its log on disk or not; this class
answers them at once: an appended entry is durable as soon as it is appended, a
flush has nothing to wait for, and a snapshot writes nothing but moves the log's
start as the file log's does. The same bad calls raise the same errors.
"""

import collections.abc
import threading
import time

from badkv.storage.snapshot_files import SnapshotMeta
from badkv.storage.log_contract import (
    Recovery,
    check_after_snapshot,
    check_consecutive,
    check_continues,
    check_not_older,
    check_within,
)


class MemoryWal:
    """A ``WriteAheadLog`` without a disk; thread-safe once opened.

    What it was told (entries, term and vote, the newest snapshot's description, not its
    records) outlives a close, so opening it again returns that, as the file log would.
    """

    in_memory = True
    data_dir = None  # no data id: a restart is always a new node with no state, which peers cannot check

    def __init__(self):
        self.fsync_observer = None  # never called: nothing is ever synced
        self.record_factory = None  # never called: nothing is read back from a disk
        self.entry_factory = None
        self._lock = threading.Lock()
        self._entries: list[dict] = []  # base index + 1 .. last_index
        self._snapshot: SnapshotMeta | None = None
        self._term, self._voted_for = 0, None
        self._node = self._cluster_id = None
        self._open = False

    def open(self, *, node: str, cluster_id: str, repair: bool = False) -> Recovery:
        """Start using the log; returns what it holds (nothing, the first time). ``repair`` has nothing to do."""
        with self._lock:
            if self._open:
                raise RuntimeError("the in-memory log is already open")
            self._node, self._cluster_id, self._open = node, cluster_id, True
            return Recovery(self._snapshot, [], list(self._entries), self._term, self._voted_for, [], [])

    @property
    def durable_index(self) -> int:
        return self.last_index

    @property
    def last_index(self) -> int:
        return self._base_index() + len(self._entries)

    def append(self, entries: list[dict]) -> None:
        """Keep entries, durable at once; their indexes must continue the log without a gap."""
        if not entries:
            return
        first = check_consecutive(entries)
        with self._lock:
            self._check_usable()
            check_continues(first, self.last_index)
            self._entries.extend(entries)

    def flush_through(self, index: int) -> None:
        """Return at once: every entry is durable. An ``index`` beyond the log is refused, as on disk."""
        with self._lock:
            if index > self.last_index:
                self._check_usable()
                check_within(index, self.last_index)

    def truncate_from(self, index: int) -> None:
        """Drop the entries from ``index`` on (a follower's conflicting suffix)."""
        with self._lock:
            self._check_usable()
            check_after_snapshot(index, self._base_index())
            del self._entries[index - self._base_index() - 1 :]

    def save_state(self, term: int, voted_for: str | None) -> None:
        """Keep the current term and vote (until the process ends)."""
        with self._lock:
            self._term, self._voted_for = term, voted_for

    def write_snapshot(self, *, index: int, term: int, revision: int, records, horizon: int = 0,
                       membership: dict | None = None) -> SnapshotMeta:
        """Describe a snapshot at ``index`` and drop the entries it covers; the records are not kept.

        An ``index`` beyond the end of the log empties it; the next entry appended must then
        be ``index + 1``.
        """
        with self._lock:
            self._check_usable()
            check_not_older(index, self._base_index())
            if not isinstance(records, collections.abc.Sized):
                records = list(records)  # counted for the description, as the file log counts them
            meta = SnapshotMeta(index, term, revision, self._node, self._cluster_id, time.time(), len(records),
                                horizon=horizon, membership=membership)
            del self._entries[: min(index, self.last_index) - self._base_index()]
            self._snapshot = meta
        return meta

    def stats(self) -> dict:
        """The file log's stats, with no bytes, segments or fsyncs."""
        with self._lock:
            snapshot, last = self._snapshot, self.last_index
        return {
            "wal_bytes": 0,
            "segments": 0,
            "last_snapshot_index": snapshot.index if snapshot else 0,
            "last_snapshot_time": snapshot.created if snapshot else None,
            "fsyncs": 0,
            "fsync_seconds_total": 0.0,
            "durable_index": last,
            "last_index": last,
        }

    def close(self) -> None:
        with self._lock:
            self._open = False

    def _base_index(self) -> int:
        return self._snapshot.index if self._snapshot else 0

    def _check_usable(self) -> None:
        if not self._open:
            raise RuntimeError("the in-memory log is not open")
