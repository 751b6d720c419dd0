"""Write-ahead log: the node's durable Raft log, its term and vote, and recovery.

The log lives in a data dir (``badkv.storage.datadir``): segment files
(``segments``), the term-and-vote file (``hardstate``) and snapshots
(``snapshot_files``). This module keeps them consistent with each other and with
the entries still in memory.

Writes use group commit: ``append`` only encodes and buffers; ``flush_through``
makes one waiting thread the flusher, which writes everything buffered with one
write and one fsync while the others wait for it.
"""

import collections.abc
import contextlib
import logging
import os
import threading
import time

from badkv.storage.datadir import DataDir
from badkv.storage.frames import CorruptLogError, encode_frame
from badkv.storage.hardstate import HardState
from badkv.storage.log_contract import (
    Recovery,
    check_after_snapshot,
    check_consecutive,
    check_continues,
    check_not_older,
    check_within,
)
from badkv.storage.segments import Segments
from badkv.storage.snapshot_files import (
    SnapshotMeta,
    list_snapshots,
    prune_snapshots,
    read_snapshot_file,
    sync_directory,
    write_snapshot_file,
)

logger = logging.getLogger(__name__)

SNAPSHOTS_KEPT = 2


# etcd warns about a slow fdatasync at 1 s; a heartbeat here is 0.1 s, so a tenth of a second is already
# long enough to matter.
SLOW_FSYNC_SECONDS = 0.1


class WriteAheadLog:
    """The durable log of one node; thread-safe once opened."""

    in_memory = False

    def __init__(self, directory, *, segment_bytes: int = 64 * 2**20, fsync: bool = True):
        self.directory = os.fspath(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_observer = None  # callable(seconds), e.g. a metrics histogram
        self.record_factory = None  # callable(dict) -> object: snapshot records are loaded as these
        self.entry_factory = None  # callable(dict) -> dict: log entries are read back through it
        self._data_dir = DataDir(self.directory, sync_file=self._sync_fd, sync_folder=self._sync_dir)
        self._hard_state = HardState(self._data_dir.state_path, self._sync_fd)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stats_lock = threading.Lock()
        # Guarded by _lock. While nobody is busy, _pending holds exactly the frames of
        # entries _durable_index + 1 .. _last_index.
        self._pending: list[bytes] = []
        self._last_index = 0
        self._durable_index = 0
        self._busy = False  # one thread owns the files: a flush, truncation, compaction or close
        self._owners_waiting = 0  # truncations/compactions waiting: no new flush starts before them
        self._failure: BaseException | None = None
        self._open = False
        # Touched only by the thread that is busy (or during open).
        self._segments = Segments(self._data_dir.wal_dir, segment_bytes=segment_bytes,
                                  sync_file=self._sync_fd, sync_folder=self._sync_dir)
        self._snapshot: SnapshotMeta | None = None
        self._node = self._cluster_id = None
        self._fsyncs = 0
        self._fsync_seconds = 0.0

    # ---- opening and recovery ------------------------------------------------

    def open(self, *, node: str, cluster_id: str, repair: bool = False) -> Recovery:
        """Take the data dir (creating it on first use), load the newest snapshot and the log after it."""
        if self._open:
            raise RuntimeError(f"write-ahead log {self.directory} is already open")
        self._node, self._cluster_id = node, cluster_id
        self._segments.node = node
        try:
            self._data_dir.claim(node, cluster_id)
            recovery = Recovery(None, [], [], 0, None, [], [])
            self._load_snapshot(recovery)
            base = self._base_index()
            loaded = self._segments.load(base, repair=repair, convert=self.entry_factory,
                                         after_skipped_snapshot=bool(recovery.truncated))
            recovery.entries = loaded.entries
            recovery.truncated += loaded.truncated
            recovery.repaired += loaded.repaired
            recovery.term, recovery.voted_for = self._hard_state.load()
        except BaseException:
            self._release_directory()
            raise
        self._last_index = self._durable_index = recovery.entries[-1]["index"] if recovery.entries else base
        self._open = True
        logger.info("%s: opened %s: snapshot at %d, log through %d", node, self.directory, base, self._last_index)
        return recovery

    def _load_snapshot(self, recovery: Recovery) -> None:
        for _index, path in list_snapshots(self._data_dir.snap_dir):
            try:
                meta, records = read_snapshot_file(path, self.record_factory)
            except CorruptLogError as error:
                logger.warning("%s: skipping unreadable snapshot: %s", self._node, error)
                recovery.truncated.append(f"skipped snapshot {path}: {error.reason} at byte offset {error.offset}")
                continue
            self._snapshot = meta
            recovery.snapshot, recovery.snapshot_records = meta, records
            return

    @property
    def data_dir(self) -> DataDir:
        """The dir's identity: its ``data_id`` and the members' (``badkv/security/data_ids.py``)."""
        return self._data_dir

    # ---- the write path ------------------------------------------------------

    @property
    def durable_index(self) -> int:
        return self._durable_index

    @property
    def last_index(self) -> int:
        return self._last_index

    def append(self, entries: list[dict]) -> None:
        """Buffer entries (no I/O); their indexes must continue the log without a gap."""
        if not entries:
            return
        frames = [encode_frame(entry) for entry in entries]
        first = check_consecutive(entries)
        with self._lock:
            self._check_usable()
            check_continues(first, self._last_index)
            self._pending.extend(frames)
            self._last_index = first + len(frames) - 1

    def flush_through(self, index: int) -> None:
        """Return once every entry up to ``index`` is written and synced, flushing if nobody else is."""
        with self._changed:
            while self._durable_index < index:
                self._check_usable()
                check_within(index, self._last_index)
                if self._busy or self._owners_waiting:
                    self._changed.wait()
                    continue
                batch, first, last = self._pending, self._durable_index + 1, self._last_index
                self._pending = []
                self._busy = True
                try:
                    self._lock.release()  # others append (and wait) while this thread writes
                    try:
                        self._segments.write(first, last, b"".join(batch))
                    finally:
                        self._lock.acquire()
                    self._durable_index = last
                except BaseException as error:
                    self._failure = error
                    raise
                finally:
                    self._busy = False
                    self._changed.notify_all()

    def truncate_from(self, index: int) -> None:
        """Durably drop the entries from ``index`` on (a follower's conflicting suffix)."""
        with self._owning_files():
            check_after_snapshot(index, self._base_index())
            if index > self._last_index:
                return
            if index > self._durable_index:
                del self._pending[index - self._durable_index - 1 :]
            else:
                self._pending = []
                self._segments.cut_from(index)
                self._durable_index = index - 1
            self._last_index = index - 1

    # ---- state and snapshots -------------------------------------------------

    def save_state(self, term: int, voted_for: str | None) -> None:
        """Durably record the current term and vote."""
        self._hard_state.save(term, voted_for)

    def write_snapshot(self, *, index: int, term: int, revision: int, records, horizon: int = 0,
                       membership: dict | None = None) -> SnapshotMeta:
        """Durably write the store as of ``index``, then drop the log segments it covers.

        An ``index`` beyond the end of the log (installing a leader's state) empties the
        log; the next entry appended must then be ``index + 1``.
        """
        with self._lock:
            self._check_usable()
            check_not_older(index, self._base_index())
        if not isinstance(records, collections.abc.Sized):
            records = list(records)
        meta = SnapshotMeta(index, term, revision, self._node, self._cluster_id, time.time(), len(records),
                            horizon=horizon, membership=membership)
        started = time.monotonic()
        path = write_snapshot_file(self._data_dir.snap_dir, meta, records, self._sync_fd)
        logger.info("%s: wrote snapshot %s (%d records) in %.3f s", self._node, path, len(records),
                    time.monotonic() - started)
        with self._owning_files():
            if index > self._durable_index:  # the snapshot makes these entries durable
                del self._pending[: index - self._durable_index]
                self._durable_index, self._last_index = index, max(index, self._last_index)
            if self._snapshot is None or index >= self._snapshot.index:
                self._snapshot = meta
            self._segments.drop_covered(self._base_index())
        for removed in prune_snapshots(self._data_dir.snap_dir, SNAPSHOTS_KEPT):
            logger.info("%s: removed old snapshot %s", self._node, removed)
        return meta

    # ---- bookkeeping ---------------------------------------------------------

    def stats(self) -> dict:
        with self._lock:
            segments = self._segments.listing()
            durable, last = self._durable_index, self._last_index
        return {
            "wal_bytes": sum(segment.size for segment in segments),
            "segments": len(segments),
            "last_snapshot_index": self._snapshot.index if self._snapshot else 0,
            "last_snapshot_time": self._snapshot.created if self._snapshot else None,
            "fsyncs": self._fsyncs,
            "fsync_seconds_total": self._fsync_seconds,
            "durable_index": durable,
            "last_index": last,
        }

    def close(self) -> None:
        """Close the files; entries appended but not yet flushed are dropped, as in a crash."""
        with self._changed:
            self._wait_for_files()
            if not self._open:
                return
            self._pending = []
            self._last_index = self._durable_index
            self._open = False
            self._release_directory()

    def _release_directory(self) -> None:
        self._segments.close()
        self._snapshot = None
        self._data_dir.release()

    def _base_index(self) -> int:
        return self._snapshot.index if self._snapshot else 0

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"write-ahead log {self.directory} failed earlier ({self._failure}); restart the node")
        if not self._open:
            raise RuntimeError(f"write-ahead log {self.directory} is not open")

    def _wait_for_files(self) -> None:
        """Holding _lock, wait until no flush is running; no new flush starts meanwhile."""
        self._owners_waiting += 1
        try:
            while self._busy:
                self._changed.wait()
        finally:
            self._owners_waiting -= 1

    @contextlib.contextmanager
    def _owning_files(self):
        """Hold _lock and own the files once no flush is running; an I/O error makes the log unusable."""
        with self._changed:
            self._wait_for_files()
            self._check_usable()
            self._busy = True
            try:
                yield
            except OSError as error:
                self._failure = error
                raise
            finally:
                self._busy = False
                self._changed.notify_all()

    def _sync_dir(self, directory: str) -> None:
        if self.fsync:
            sync_directory(directory, self._sync_fd)

    def _sync_fd(self, fd: int) -> None:
        if not self.fsync:
            return
        started = time.perf_counter()
        os.fsync(fd)
        seconds = time.perf_counter() - started
        if seconds >= SLOW_FSYNC_SECONDS:
            logger.warning("%s: slow fsync: %.0f ms (the disk is busy; a slow disk delays every write and can "
                           "cost an election)", self._node, seconds * 1000)
        with self._stats_lock:
            self._fsyncs += 1
            self._fsync_seconds += seconds
        if self.fsync_observer is not None:
            try:
                self.fsync_observer(seconds)
            except Exception:
                logger.exception("%s: fsync observer failed", self._node)
