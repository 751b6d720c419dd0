"""Snapshot files: the store as of one log index, written atomically, read back whole, pruned.

A snapshot file is a header frame (a map: see ``SnapshotMeta.to_header``), one
frame per store record (each record an opaque msgpack map), and a trailer frame
``["end", record_count]`` so that a truncated copy is detected. A backup streamed
over HTTP is exactly the bytes of such a file. (Frames: ``badkv.storage.frames``.)

Files are written to a temp file, synced, renamed into place and the folder
synced, so a crash leaves either the old file or the new one.
"""

import dataclasses
import os
from collections.abc import Iterable, Iterator

from badkv.storage.frames import CorruptLogError, encode_frame, frame_offset, read_frames

SNAPSHOT_FORMAT = 1
SNAPSHOT_KIND = "badkv-snapshot"
TRAILER_TAG = "end"
STREAM_CHUNK_BYTES = 1 << 20
SNAPSHOT_HINT = "use an older snapshot or another backup"


@dataclasses.dataclass(frozen=True)
class SnapshotMeta:
    """What a snapshot holds: the store as of log entry ``index`` (of ``term``)."""

    index: int
    term: int
    revision: int
    node: str
    cluster_id: str
    created: float  # Unix seconds
    record_count: int | None  # None in a stream whose length was not known up front
    format: int = SNAPSHOT_FORMAT
    horizon: int = 0  # the store's tombstone gc horizon (absent from snapshots written before gc: 0)
    membership: dict | None = None  # the cluster's membership as of ``index`` (None in older snapshots)

    def to_header(self) -> dict:
        return {"kind": SNAPSHOT_KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_header(cls, header, path) -> "SnapshotMeta":
        if not isinstance(header, dict) or header.get("kind") != SNAPSHOT_KIND:
            raise CorruptLogError(path, 0, "not a badkv snapshot", SNAPSHOT_HINT)
        if header.get("format") != SNAPSHOT_FORMAT:
            raise CorruptLogError(path, 0, f"unsupported snapshot format {header.get('format')!r}", SNAPSHOT_HINT)
        try:
            return cls(**{field.name: header[field.name] for field in dataclasses.fields(cls)
                          if field.name in header or field.default is dataclasses.MISSING})
        except KeyError as missing:
            raise CorruptLogError(path, 0, f"snapshot header lacks {missing}", SNAPSHOT_HINT) from None


def write_snapshot_stream(meta: SnapshotMeta, records: Iterable[dict]) -> Iterator[bytes]:
    """Yield a snapshot file's bytes in chunks of about a mebibyte, e.g. for a backup over HTTP.

    Raises ValueError at the end if ``meta.record_count`` is set and differs from the
    number of records given; the trailer is then never sent, so the copy reads as truncated.
    """
    chunk = [encode_frame(meta.to_header())]
    chunk_bytes = len(chunk[0])
    count = 0
    for record in records:
        frame = encode_frame(record)
        chunk.append(frame)
        chunk_bytes += len(frame)
        count += 1
        if chunk_bytes >= STREAM_CHUNK_BYTES:
            yield b"".join(chunk)
            chunk, chunk_bytes = [], 0
    if meta.record_count is not None and count != meta.record_count:
        raise ValueError(f"snapshot header promises {meta.record_count} records but {count} were given")
    chunk.append(encode_frame([TRAILER_TAG, count]))
    yield b"".join(chunk)


def _frame_offset_in_file(path, count: int) -> int:
    """Byte offset of frame number ``count`` in the file at ``path`` (error messages only)."""
    with open(path, "rb") as file:
        return frame_offset(file.read(), count)


def read_snapshot_file(path, convert=None) -> tuple[SnapshotMeta, list]:
    """Read and check a whole snapshot file; raise CorruptLogError if any frame is bad or missing.

    With ``convert``, records come back converted (see ``decode_frames``)."""
    with open(path, "rb") as snapshot:
        items, problem = read_frames(snapshot, convert)
    if problem is not None:
        raise CorruptLogError(path, problem.offset, problem.reason, SNAPSHOT_HINT)
    if not items:
        raise CorruptLogError(path, 0, "empty file", SNAPSHOT_HINT)
    meta = SnapshotMeta.from_header(items[0], path)
    trailer = items.pop()
    if not items or not isinstance(trailer, list) or trailer[:1] != [TRAILER_TAG]:
        raise CorruptLogError(path, os.path.getsize(path), "no trailer: the file is truncated", SNAPSHOT_HINT)
    del items[0]  # the header; what is left are the records, without a second list of them
    for position, record in enumerate(items):
        if type(record) is not dict and (convert is None or type(record) is list):
            offset = _frame_offset_in_file(path, position + 1)
            raise CorruptLogError(path, offset, "a record that is not a map", SNAPSHOT_HINT)
    if trailer[1:] != [len(items)] or meta.record_count not in (None, len(items)):
        offset = _frame_offset_in_file(path, len(items) + 1)
        reason = f"{len(items)} records where the trailer says {trailer[1:]} and the header {meta.record_count}"
        raise CorruptLogError(path, offset, reason, SNAPSHOT_HINT)
    return meta, items


def snapshot_name(index: int) -> str:
    return f"{index:020d}.snap"


def list_snapshots(directory) -> list[tuple[int, str]]:
    """(index, path) of every snapshot file in ``directory``, newest first."""
    found = []
    for name in os.listdir(directory):
        stem, dot, suffix = name.partition(".")
        if suffix == "snap" and stem.isdigit():
            found.append((int(stem), os.path.join(directory, name)))
    return sorted(found, reverse=True)


def write_snapshot_file(directory, meta: SnapshotMeta, records: Iterable[dict], sync) -> str:
    """Write a snapshot into ``directory`` durably (see write_file_atomically); return its path."""
    path = os.path.join(directory, snapshot_name(meta.index))
    write_file_atomically(path, write_snapshot_stream(meta, records), sync)
    return path


def write_file_atomically(path: str, chunks: Iterable[bytes], sync) -> None:
    """Write to a temp file, sync it, rename it to ``path``, sync the folder.

    ``sync`` is called with each file descriptor to make durable (None skips syncing).
    """
    temp_path = path + ".tmp"
    with open(temp_path, "wb") as temp:
        for chunk in chunks:
            temp.write(chunk)
        temp.flush()
        if sync is not None:
            sync(temp.fileno())
    os.replace(temp_path, path)
    if sync is not None:
        sync_directory(os.path.dirname(path), sync)


def prune_snapshots(directory, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` snapshots, and leftover temp files; return the snapshots removed."""
    removed = [path for _index, path in list_snapshots(directory)[keep:]]
    removed_temps = [os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".tmp")]
    for path in removed + removed_temps:
        os.remove(path)
    return removed


def sync_directory(directory, sync) -> None:
    """Make a folder's entries (creates, renames, removes) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        sync(fd)
    finally:
        os.close(fd)
