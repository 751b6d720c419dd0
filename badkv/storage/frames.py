"""The framed-record format every storage file is made of, and the error a bad frame raises.

A frame is ``u32 length | u32 crc32 | payload``. Both integers are little-endian,
the CRC is zlib's crc32 of the payload alone, and the payload is one msgpack
object (packed with ``use_bin_type=True``). A frame never has a zero length, so a
zero-filled region is never mistaken for data.

Decoding stops at the first bad frame and says where and why, and whether the
damage looks like an interrupted write at the tail (torn) or like corruption.
"""

import dataclasses
import os
import struct
import zlib

import msgpack

FRAME_HEADER = struct.Struct("<II")
READ_CHUNK_BYTES = 4 << 20
REPAIR_HINT = "start the node with `badkv -repair` to truncate the log there, losing what follows"


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
    # Local names: this loop runs once per record of a million-record recovery.
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
