"""Snapshot files, and the framed-record format they share with the write-ahead log.

A frame is ``u32 length | u32 crc32 | payload``. Both integers are little-endian,
the CRC is zlib's crc32 of the payload alone, and the payload is one msgpack
object (packed with ``use_bin_type=True``). A frame never has a zero length, so a
zero-filled region is never mistaken for data.

A snapshot file is a header frame (a map: see ``SnapshotMeta.to_header``), one
frame per store record (each record an opaque msgpack map), and a trailer frame
``["end", record_count]`` so that a truncated copy is detected. A backup streamed
over HTTP is exactly the bytes of such a file.
"""

import dataclasses
import os
import struct
import zlib
from collections.abc import Iterable, Iterator

import msgpack

FRAME_HEADER = struct.Struct("<II")
SNAPSHOT_FORMAT = 1
SNAPSHOT_KIND = "badkv-snapshot"
TRAILER_TAG = "end"
STREAM_CHUNK_BYTES = 1 << 20
READ_CHUNK_BYTES = 4 << 20
REPAIR_HINT = "start the node with `badkv -repair` to truncate the log there, losing what follows"
SNAPSHOT_HINT = "use an older snapshot or another backup"


class CorruptLogError(Exception):
    """A log, state or snapshot file failed its checks at a known byte offset."""

    def __init__(self, path, offset: int, reason: str, hint: str = REPAIR_HINT):
        self.path = os.fspath(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path} is corrupt at byte offset {offset} ({reason}); {hint}")


@dataclasses.dataclass(frozen=True)
class FrameProblem:
    """Where and why frame decoding stopped; ``torn`` means it looks like an interrupted write."""

    offset: int
    reason: str
    torn: bool


def encode_frame(obj) -> bytes:
    """Pack one object as a frame."""
    payload = msgpack.packb(obj, use_bin_type=True)
    return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_frames(buf: bytes, convert=None) -> tuple[list, FrameProblem | None]:
    """Decode every frame of ``buf``; stop at the first bad one and say where and why.

    ``convert``, if given, turns each decoded map that is a record (it has a ``tenant``) into the
    caller's object as it is read, so a million records never exist twice in memory.
    """
    items = []
    append = items.append
    unpack_header = FRAME_HEADER.unpack_from
    crc32 = zlib.crc32
    unpackb = msgpack.unpackb
    view = memoryview(buf)
    size = len(buf)
    offset = 0
    while offset + 8 <= size:
        length, crc = unpack_header(buf, offset)
        end = offset + 8 + length
        payload = view[offset + 8 : end]
        if length == 0 or end > size or crc32(payload) != crc:
            return items, _classify(buf, offset)
        try:
            item = unpackb(payload)
        except (ValueError, TypeError, msgpack.UnpackException):
            return items, FrameProblem(offset, "checksum is valid but the payload is not msgpack", False)
        if convert is not None and type(item) is dict and "tenant" in item:
            try:
                item = convert(item)
            except (KeyError, TypeError, ValueError):
                return items, FrameProblem(offset, "a record that lacks a field or has one of the wrong type", False)
        append(item)
        offset = end
    if offset < size:
        return items, _classify(buf, offset)
    return items, None


def frame_offset(buf: bytes, count: int) -> int:
    """Byte offset of frame number ``count`` (0-based) in ``buf``, walking frame headers."""
    offset = 0
    for _ in range(count):
        length, _crc = FRAME_HEADER.unpack_from(buf, offset)
        offset += 8 + length
    return offset


def _classify(buf: bytes, offset: int) -> FrameProblem:
    """Tell an interrupted write at the tail (torn) from damage (not torn)."""
    size = len(buf)
    if buf.count(0, offset) == size - offset:
        return FrameProblem(offset, f"{size - offset} zero bytes instead of a frame", True)
    if size - offset < 8:
        return FrameProblem(offset, "incomplete frame header", True)
    length, crc = FRAME_HEADER.unpack_from(buf, offset)
    if _length_has_flipped_bit(buf, offset, length, crc):
        return FrameProblem(offset, "damaged frame length", False)
    if length == 0:
        return FrameProblem(offset, "zero frame length", False)
    end = offset + 8 + length
    if end > size:
        return FrameProblem(offset, f"frame of {length} bytes runs past the end of the file", True)
    torn = end == size or buf.count(0, end) == size - end
    return FrameProblem(offset, "checksum mismatch", torn)


def _length_has_flipped_bit(buf: bytes, offset: int, length: int, crc: int) -> bool:
    """True if flipping one bit of the length field gives a frame with a valid checksum."""
    view = memoryview(buf)
    start = offset + 8
    for bit in range(32):
        candidate = length ^ (1 << bit)
        if 0 < candidate <= len(buf) - start and zlib.crc32(view[start : start + candidate]) == crc:
            return True
    return False


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

    def to_header(self) -> dict:
        return {"kind": SNAPSHOT_KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_header(cls, header, path) -> "SnapshotMeta":
        if not isinstance(header, dict) or header.get("kind") != SNAPSHOT_KIND:
            raise CorruptLogError(path, 0, "not a badkv snapshot", SNAPSHOT_HINT)
        if header.get("format") != SNAPSHOT_FORMAT:
            raise CorruptLogError(path, 0, f"unsupported snapshot format {header.get('format')!r}", SNAPSHOT_HINT)
        try:
            return cls(**{field.name: header[field.name] for field in dataclasses.fields(cls)})
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


def read_frames(file, convert=None, chunk_bytes: int = READ_CHUNK_BYTES) -> tuple[list, FrameProblem | None]:
    """``decode_frames`` for an open file, read a chunk at a time so the file never sits in memory whole.

    The problem's offset, if any, counts from the start of the file.
    """
    items: list = []
    base = 0       # file offset of tail[0]
    tail = b""     # bytes read but not yet decoded: the start of an incomplete frame
    while True:
        chunk = file.read(chunk_bytes)
        if not chunk:
            break
        buf = tail + chunk if tail else chunk
        whole = _whole_frames_length(buf)
        if whole:
            decoded, problem = decode_frames(buf[:whole], convert)
            items.extend(decoded)
            if problem is not None:
                return items, _problem_in_file(file, base + problem.offset, problem)
        base, tail = base + whole, buf[whole:]
    if tail:  # an incomplete or damaged last frame: let decode_frames say which
        decoded, problem = decode_frames(tail, convert)
        items.extend(decoded)
        return items, dataclasses.replace(problem, offset=base + problem.offset)
    return items, None


def _whole_frames_length(buf: bytes) -> int:
    """How many leading bytes of ``buf`` are whole frames (by their length fields alone)."""
    offset, size = 0, len(buf)
    while offset + 8 <= size:
        length = FRAME_HEADER.unpack_from(buf, offset)[0]
        if length == 0 or offset + 8 + length > size:
            break
        offset += 8 + length
    return offset


def _problem_in_file(file, offset: int, problem: FrameProblem) -> FrameProblem:
    """Re-judge a bad frame at ``offset`` against the rest of the file (whether it is torn depends on it)."""
    file.seek(offset)
    return dataclasses.replace(_classify(file.read(), 0), offset=offset)


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
