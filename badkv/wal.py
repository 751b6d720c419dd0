"""Write-ahead log: the node's durable Raft log, its term and vote, and recovery.

A data directory holds:

- ``meta.json``: the node name and cluster id it belongs to (written once, atomically);
- ``state``: the current term and vote, one frame, replaced atomically;
- ``wal/<first index, 20 digits>.wal``: segment files, one frame per log entry
  (frame format in ``badkv.snapshot``);
- ``snap/<index, 20 digits>.snap``: the newest two snapshots;
- ``LOCK``: held with flock while a process has the log open.

Writes use group commit: ``append`` only encodes and buffers; ``flush_through``
makes one waiting thread the flusher, which writes everything buffered with one
write and one fsync while the others wait for it.
"""

import collections.abc
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import threading
import time

from badkv.snapshot import (
    CorruptLogError,
    FrameProblem,
    SnapshotMeta,
    decode_frames,
    encode_frame,
    frame_offset,
    list_snapshots,
    prune_snapshots,
    read_snapshot_file,
    sync_directory,
    write_file_atomically,
    write_snapshot_file,
    write_snapshot_stream,
)

__all__ = [
    "CorruptLogError",
    "DataDirMismatch",
    "Recovery",
    "SnapshotMeta",
    "WriteAheadLog",
    "read_snapshot_file",
    "write_snapshot_stream",
]

logger = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".wal"
SNAPSHOTS_KEPT = 2
STATE_HINT = "the term and vote cannot be rebuilt; replace this member with one that starts from an empty data dir"


class DataDirMismatch(Exception):
    """The data directory belongs to another node or cluster, or is in use."""


@dataclasses.dataclass
class Recovery:
    """What open() found on disk.

    ``truncated`` describes what was dropped or skipped automatically (torn tails,
    unreadable snapshots); ``repaired`` what ``repair=True`` dropped.
    """

    snapshot: SnapshotMeta | None
    snapshot_records: list[dict]
    entries: list[dict]
    term: int
    voted_for: str | None
    truncated: list[str]
    repaired: list[str]


@dataclasses.dataclass
class _Segment:
    first_index: int
    path: str
    size: int
    last_index: int  # first_index - 1 while empty


class _NodeLogger(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"{self.extra['node']}: {msg}", kwargs


class WriteAheadLog:
    """The durable log of one node; thread-safe once opened."""

    def __init__(self, directory, *, segment_bytes: int = 64 * 2**20, fsync: bool = True):
        self.directory = os.fspath(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_observer = None  # callable(seconds), e.g. a metrics histogram
        self.record_factory = None  # callable(dict) -> object: snapshot records are loaded as these
        self.entry_factory = None  # callable(dict) -> dict: log entries are read back through it
        self._wal_dir = os.path.join(self.directory, "wal")
        self._snap_dir = os.path.join(self.directory, "snap")
        self._log = _NodeLogger(logger, {"node": "-"})
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state_lock = threading.Lock()
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
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # open for appending to _segments[-1], or None: start a new one
        self._snapshot: SnapshotMeta | None = None
        self._lock_file = None
        self._node = self._cluster_id = None
        self._fsyncs = 0
        self._fsync_seconds = 0.0

    # ---- opening and recovery ------------------------------------------------

    def open(self, *, node: str, cluster_id: str, repair: bool = False) -> Recovery:
        """Take the data dir (creating it on first use), load the newest snapshot and the log after it."""
        if self._open:
            raise RuntimeError(f"write-ahead log {self.directory} is already open")
        self._log = _NodeLogger(logger, {"node": node})
        self._node, self._cluster_id = node, cluster_id
        try:
            self._claim_directory(node, cluster_id)
            recovery = Recovery(None, [], [], 0, None, [], [])
            self._load_snapshot(recovery)
            base = self._base_index()
            recovery.entries = self._load_segments(base, repair, recovery)
            recovery.term, recovery.voted_for = self._load_state()
            if self._segments:
                self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            self._release_directory()
            raise
        self._last_index = self._durable_index = recovery.entries[-1]["index"] if recovery.entries else base
        self._open = True
        self._log.info("opened %s: snapshot at %d, log through %d", self.directory, base, self._last_index)
        return recovery

    def _claim_directory(self, node: str, cluster_id: str) -> None:
        os.makedirs(self.directory, exist_ok=True)
        self._lock_file = open(os.path.join(self.directory, "LOCK"), "a+b")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"data dir {self.directory} is in use by another process; refusing to start"
            raise DataDirMismatch(message) from None
        meta_path = os.path.join(self.directory, "meta.json")
        if os.path.exists(meta_path):
            self._check_meta(meta_path, node, cluster_id)
        else:
            self._check_no_data_without_meta()
            meta = json.dumps({"node": node, "cluster_id": cluster_id}).encode() + b"\n"
            write_file_atomically(meta_path, [meta], self._sync_fd)
        for folder in (self._wal_dir, self._snap_dir):
            os.makedirs(folder, exist_ok=True)
        self._sync_dir(self.directory)

    def _check_meta(self, meta_path: str, node: str, cluster_id: str) -> None:
        try:
            with open(meta_path, "rb") as meta_file:
                meta = json.loads(meta_file.read())
            found_node, found_cluster = meta["node"], meta["cluster_id"]
        except (ValueError, KeyError, TypeError) as error:
            raise DataDirMismatch(
                f"data dir {self.directory} has an unreadable meta.json ({error}); refusing to start"
            ) from None
        if (found_node, found_cluster) != (node, cluster_id):
            raise DataDirMismatch(
                f"data dir {self.directory} belongs to node {found_node!r} of cluster {found_cluster!r},"
                f" not node {node!r} of cluster {cluster_id!r}; refusing to start"
            )

    def _check_no_data_without_meta(self) -> None:
        folders = [folder for folder in (self._wal_dir, self._snap_dir) if os.path.isdir(folder)]
        if os.path.exists(os.path.join(self.directory, "state")) or any(os.listdir(folder) for folder in folders):
            raise DataDirMismatch(
                f"data dir {self.directory} holds data but no meta.json naming its node and cluster; refusing to start"
            )

    def _load_snapshot(self, recovery: Recovery) -> None:
        for _index, path in list_snapshots(self._snap_dir):
            try:
                meta, records = read_snapshot_file(path, self.record_factory)
            except CorruptLogError as error:
                self._log.warning("skipping unreadable snapshot: %s", error)
                recovery.truncated.append(f"skipped snapshot {path}: {error.reason} at byte offset {error.offset}")
                continue
            self._snapshot = meta
            recovery.snapshot, recovery.snapshot_records = meta, records
            return

    def _load_segments(self, base: int, repair: bool, recovery: Recovery) -> list[dict]:
        """Read the segments after ``base``; cut a torn tail, raise or repair on damage."""
        names = os.listdir(self._wal_dir)
        stems = (name.removesuffix(SEGMENT_SUFFIX) for name in names if name.endswith(SEGMENT_SUFFIX))
        firsts = sorted(int(stem) for stem in stems if stem.isdigit())
        paths = [self._segment_path(first) for first in firsts]
        entries: list[dict] = []
        for position, (first, path) in enumerate(zip(firsts, paths, strict=True)):
            if position + 1 < len(firsts) and firsts[position + 1] <= base + 1:
                self._log.info("removing %s: the snapshot at %d covers it", path, base)
                os.remove(path)
                continue
            with open(path, "rb") as segment_file:
                buf = segment_file.read()
            expected = entries[-1]["index"] + 1 if entries else None
            items, problem = _check_segment(buf, first, expected, base, self.entry_factory)
            is_last = position + 1 == len(firsts)
            if problem is not None:
                if not (problem.torn and is_last) and not repair:
                    skipped = " after skipping an unreadable snapshot" if recovery.truncated else ""
                    raise CorruptLogError(path, problem.offset, problem.reason + skipped)
                self._cut_segment(path, buf, problem, paths[position + 1 :], recovery)
            if items and items[-1]["index"] > base:
                entries.extend(items[max(0, base + 1 - first) :])
                size = problem.offset if problem else len(buf)
                self._segments.append(_Segment(first, path, size, first + len(items) - 1))
            else:
                os.remove(path)
            if problem is not None:
                break
        self._sync_dir(self._wal_dir)
        return entries

    def _cut_segment(self, path: str, buf: bytes, problem, later_paths: list[str], recovery: Recovery) -> None:
        for later in reversed(later_paths):
            os.remove(later)
        if later_paths:
            self._sync_dir(self._wal_dir)
        with open(path, "r+b") as segment_file:
            segment_file.truncate(problem.offset)
            self._sync_fd(segment_file.fileno())
        dropped = (
            f"dropped {len(buf) - problem.offset} bytes of {path} from byte offset {problem.offset} ({problem.reason})"
        )
        if problem.torn and not later_paths:
            self._log.warning("torn write at the tail of the log: %s", dropped)
            recovery.truncated.append(dropped)
        else:
            if later_paths:
                dropped += " and the later segments " + ", ".join(later_paths)
            self._log.warning("repair: %s", dropped)
            recovery.repaired.append(dropped)

    def _load_state(self) -> tuple[int, str | None]:
        path = os.path.join(self.directory, "state")
        if not os.path.exists(path):
            return 0, None
        with open(path, "rb") as state_file:
            items, problem = decode_frames(state_file.read())
        if problem is not None:
            raise CorruptLogError(path, problem.offset, problem.reason, STATE_HINT)
        if len(items) != 1 or not isinstance(items[0], dict) or "term" not in items[0]:
            raise CorruptLogError(path, 0, "not a term-and-vote record", STATE_HINT)
        return items[0]["term"], items[0].get("voted_for")

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
        first = entries[0]["index"]
        for position, entry in enumerate(entries):
            if entry["index"] != first + position:
                raise ValueError(f"entry indexes must be consecutive: {entry['index']} follows {first + position - 1}")
        with self._lock:
            self._check_usable()
            if first != self._last_index + 1:
                raise ValueError(f"entry {first} does not continue the log, which ends at {self._last_index}")
            self._pending.extend(frames)
            self._last_index = first + len(frames) - 1

    def flush_through(self, index: int) -> None:
        """Return once every entry up to ``index`` is written and synced, flushing if nobody else is."""
        with self._changed:
            while self._durable_index < index:
                self._check_usable()
                if index > self._last_index:
                    raise ValueError(f"cannot flush through entry {index}: the log ends at {self._last_index}")
                if self._busy or self._owners_waiting:
                    self._changed.wait()
                    continue
                batch, first, last = self._pending, self._durable_index + 1, self._last_index
                self._pending = []
                self._busy = True
                try:
                    self._lock.release()
                    try:
                        self._write_batch(first, last, batch)
                    finally:
                        self._lock.acquire()
                    self._durable_index = last
                except BaseException as error:
                    self._failure = error
                    raise
                finally:
                    self._busy = False
                    self._changed.notify_all()

    def _write_batch(self, first: int, last: int, frames: list[bytes]) -> None:
        data = b"".join(frames)
        segment = self._segments[-1] if self._fd is not None else None
        if (
            segment is None
            or segment.last_index + 1 != first
            or (segment.size and segment.size + len(data) > self.segment_bytes)
        ):
            segment = self._start_segment(first)
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(self._fd, view[written:])
        segment.size += len(data)
        segment.last_index = last
        self._sync_fd(self._fd)

    def _start_segment(self, first: int) -> _Segment:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = self._segment_path(first)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        segment = _Segment(first, path, 0, first - 1)
        self._segments.append(segment)
        self._sync_dir(self._wal_dir)
        return segment

    def truncate_from(self, index: int) -> None:
        """Durably drop the entries from ``index`` on (a follower's conflicting suffix)."""
        with self._owning_files():
            if index <= self._base_index():
                raise ValueError(f"cannot truncate from {index}: the snapshot covers entries to {self._base_index()}")
            if index > self._last_index:
                return
            if index > self._durable_index:
                del self._pending[index - self._durable_index - 1 :]
            else:
                self._pending = []
                self._cut_files_from(index)
                self._durable_index = index - 1
            self._last_index = index - 1

    def _cut_files_from(self, index: int) -> None:
        doomed = [segment for segment in self._segments if segment.first_index >= index]
        self._segments = self._segments[: len(self._segments) - len(doomed)]
        if doomed:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            for segment in reversed(doomed):
                os.remove(segment.path)
            self._sync_dir(self._wal_dir)
        if not self._segments or self._segments[-1].last_index < index:
            return
        segment = self._segments[-1]
        with open(segment.path, "rb") as segment_file:
            offset = frame_offset(segment_file.read(), index - segment.first_index)
        if self._fd is None:
            self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND)
        os.ftruncate(self._fd, offset)
        self._sync_fd(self._fd)
        segment.size, segment.last_index = offset, index - 1

    # ---- state and snapshots -------------------------------------------------

    def save_state(self, term: int, voted_for: str | None) -> None:
        """Durably record the current term and vote."""
        with self._state_lock:
            state = encode_frame({"term": term, "voted_for": voted_for})
            write_file_atomically(os.path.join(self.directory, "state"), [state], self._sync_fd)

    def write_snapshot(self, *, index: int, term: int, revision: int, records) -> SnapshotMeta:
        """Durably write the store as of ``index``, then drop the log segments it covers.

        An ``index`` beyond the end of the log (installing a leader's state) empties the
        log; the next entry appended must then be ``index + 1``.
        """
        with self._lock:
            self._check_usable()
            if index < self._base_index():
                raise ValueError(f"snapshot at {index} is older than the one at {self._base_index()}")
        if not isinstance(records, collections.abc.Sized):
            records = list(records)
        meta = SnapshotMeta(index, term, revision, self._node, self._cluster_id, time.time(), len(records))
        started = time.monotonic()
        path = write_snapshot_file(self._snap_dir, meta, records, self._sync_fd)
        self._log.info("wrote snapshot %s (%d records) in %.3f s", path, len(records), time.monotonic() - started)
        with self._owning_files():
            if index > self._durable_index:  # the snapshot makes these entries durable
                del self._pending[: index - self._durable_index]
                self._durable_index, self._last_index = index, max(index, self._last_index)
            if self._snapshot is None or index >= self._snapshot.index:
                self._snapshot = meta
            self._drop_covered_segments(self._base_index())
        for removed in prune_snapshots(self._snap_dir, SNAPSHOTS_KEPT):
            self._log.info("removed old snapshot %s", removed)
        return meta

    def _drop_covered_segments(self, index: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        covered = [segment for segment in self._segments if segment.last_index <= index]
        for segment in covered:
            os.remove(segment.path)
        self._segments = self._segments[len(covered) :]
        if covered:
            self._sync_dir(self._wal_dir)
            self._log.info("snapshot at %d: removed %d covered log segments", index, len(covered))

    # ---- bookkeeping ---------------------------------------------------------

    def stats(self) -> dict:
        with self._lock:
            segments = list(self._segments)
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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._segments = []
        self._snapshot = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _segment_path(self, first_index: int) -> str:
        return os.path.join(self._wal_dir, f"{first_index:020d}{SEGMENT_SUFFIX}")

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
        with self._stats_lock:
            self._fsyncs += 1
            self._fsync_seconds += seconds
        if self.fsync_observer is not None:
            try:
                self.fsync_observer(seconds)
            except Exception:
                self._log.exception("fsync observer failed")


def _check_segment(buf: bytes, first: int, expected: int | None, base: int, convert=None):
    """Decode one segment and check its entries continue the log; return (good entries, problem).

    ``convert`` is passed to decode_frames (entries carry a ``tenant``, so it sees every one)."""
    items, problem = decode_frames(buf, convert)
    if expected is not None and first != expected:
        return [], FrameProblem(0, f"segment starts at entry {first} but {expected} was expected", False)
    if expected is None and first > base + 1:
        return [], FrameProblem(0, f"entries {base + 1} to {first - 1} are missing", False)
    for position, entry in enumerate(items):
        if not isinstance(entry, dict) or entry.get("index") != first + position:
            found = entry.get("index") if isinstance(entry, dict) else entry
            reason = f"entry {first + position} expected, found {found!r}"
            return items[:position], FrameProblem(frame_offset(buf, position), reason, False)
    return items, problem
