"""The log's segment files: reading and checking them on open, appending, cutting, dropping covered ones.

``wal/<first index, 20 digits>.wal`` holds one frame per log entry, from its first
index on, without gaps; a new segment starts when one reaches the size limit or the
log jumps (after a snapshot beyond its end). Damage at the very tail of the last
segment is an interrupted write and is cut off; anywhere else it stops recovery
unless ``repair`` is asked for.

Not thread-safe: the write-ahead log lets one thread at a time touch the files.
"""

import dataclasses
import logging
import os

from badkv.storage.frames import CorruptLogError, FrameProblem, decode_frames, frame_offset

logger = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".wal"


@dataclasses.dataclass
class Segment:
    """One segment file and what it holds."""

    first_index: int
    path: str
    size: int
    last_index: int  # first_index - 1 while empty


@dataclasses.dataclass
class LoadedLog:
    """The entries found on open, and what was cut: a torn tail (``truncated``) or, with repair, damage."""

    entries: list[dict]
    truncated: list[str]
    repaired: list[str]


class Segments:
    """The segment files of one ``wal`` folder, in log order, and the one open for appending."""

    def __init__(self, wal_dir: str, *, segment_bytes: int, sync_file, sync_folder):
        self.wal_dir = wal_dir
        self.segment_bytes = segment_bytes
        self.node = "-"  # the node name its log lines start with, once known
        self._sync_file = sync_file
        self._sync_folder = sync_folder
        self._segments: list[Segment] = []
        self._fd: int | None = None  # open for appending to _segments[-1], or None: start a new one

    def listing(self) -> list[Segment]:
        return list(self._segments)

    def load(self, base: int, *, repair: bool, convert=None, after_skipped_snapshot: bool = False) -> LoadedLog:
        """Read the segments after ``base``; cut a torn tail, raise or repair on damage."""
        firsts = self._first_indexes()
        paths = [self._path_of(first) for first in firsts]
        loaded = LoadedLog([], [], [])
        for position, (first, path) in enumerate(zip(firsts, paths, strict=True)):
            if position + 1 < len(firsts) and firsts[position + 1] <= base + 1:
                logger.info("%s: removing %s: the snapshot at %d covers it", self.node, path, base)
                os.remove(path)
                continue
            with open(path, "rb") as segment_file:
                buf = segment_file.read()
            expected = loaded.entries[-1]["index"] + 1 if loaded.entries else None
            items, problem = _check_segment(buf, first, expected, base, convert)
            is_last = position + 1 == len(firsts)
            if problem is not None:
                if not (problem.torn and is_last) and not repair:
                    skipped = " after skipping an unreadable snapshot" if after_skipped_snapshot else ""
                    raise CorruptLogError(path, problem.offset, problem.reason + skipped)
                self._cut(path, buf, problem, paths[position + 1 :], loaded)
            if items and items[-1]["index"] > base:
                loaded.entries.extend(items[max(0, base + 1 - first) :])
                size = problem.offset if problem else len(buf)
                self._segments.append(Segment(first, path, size, first + len(items) - 1))
            else:
                os.remove(path)
            if problem is not None:
                break
        self._sync_folder(self.wal_dir)
        if self._segments:
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)
        return loaded

    def _first_indexes(self) -> list[int]:
        names = os.listdir(self.wal_dir)
        stems = (name.removesuffix(SEGMENT_SUFFIX) for name in names if name.endswith(SEGMENT_SUFFIX))
        return sorted(int(stem) for stem in stems if stem.isdigit())

    def _cut(self, path: str, buf: bytes, problem: FrameProblem, later_paths: list[str], loaded: LoadedLog) -> None:
        """Drop the segment's bytes from the problem on, and every later segment."""
        for later in reversed(later_paths):
            os.remove(later)
        if later_paths:
            self._sync_folder(self.wal_dir)
        with open(path, "r+b") as segment_file:
            segment_file.truncate(problem.offset)
            self._sync_file(segment_file.fileno())
        dropped = (
            f"dropped {len(buf) - problem.offset} bytes of {path} from byte offset {problem.offset} ({problem.reason})"
        )
        if problem.torn and not later_paths:
            logger.warning("%s: torn write at the tail of the log: %s", self.node, dropped)
            loaded.truncated.append(dropped)
        else:
            if later_paths:
                dropped += " and the later segments " + ", ".join(later_paths)
            logger.warning("%s: repair: %s", self.node, dropped)
            loaded.repaired.append(dropped)

    def write(self, first: int, last: int, data: bytes) -> None:
        """Append ``data``, the frames of entries ``first`` to ``last``, and sync it."""
        segment = self._segments[-1] if self._fd is not None else None
        if (
            segment is None
            or segment.last_index + 1 != first
            or (segment.size and segment.size + len(data) > self.segment_bytes)
        ):
            segment = self._start(first)
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(self._fd, view[written:])
        segment.size += len(data)
        segment.last_index = last
        self._sync_file(self._fd)

    def _start(self, first: int) -> Segment:
        self._close_file()
        path = self._path_of(first)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        segment = Segment(first, path, 0, first - 1)
        self._segments.append(segment)
        self._sync_folder(self.wal_dir)
        return segment

    def cut_from(self, index: int) -> None:
        """Durably drop the entries from ``index`` on: whole segments, then the tail of the one it falls in."""
        doomed = [segment for segment in self._segments if segment.first_index >= index]
        self._segments = self._segments[: len(self._segments) - len(doomed)]
        if doomed:
            self._close_file()
            for segment in reversed(doomed):
                os.remove(segment.path)
            self._sync_folder(self.wal_dir)
        if not self._segments or self._segments[-1].last_index < index:
            return
        segment = self._segments[-1]
        with open(segment.path, "rb") as segment_file:
            offset = frame_offset(segment_file.read(), index - segment.first_index)
        if self._fd is None:
            self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND)
        os.ftruncate(self._fd, offset)
        self._sync_file(self._fd)
        segment.size, segment.last_index = offset, index - 1

    def drop_covered(self, index: int) -> None:
        """Remove the segments whose entries all lie at or before ``index`` (a snapshot holds them)."""
        # The open segment may be among those removed: the next write starts a new one.
        self._close_file()
        covered = [segment for segment in self._segments if segment.last_index <= index]
        for segment in covered:
            os.remove(segment.path)
        self._segments = self._segments[len(covered) :]
        if covered:
            self._sync_folder(self.wal_dir)
            logger.info("%s: snapshot at %d: removed %d covered log segments", self.node, index, len(covered))

    def close(self) -> None:
        self._close_file()
        self._segments = []

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _path_of(self, first_index: int) -> str:
        return os.path.join(self.wal_dir, f"{first_index:020d}{SEGMENT_SUFFIX}")


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
