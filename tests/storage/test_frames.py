"""Tests for badkv.storage.frames: the framed-record format, decoded whole or a chunk at a time."""

import io

import pytest

from badkv.storage.frames import decode_frames, encode_frame, read_frames


def record(number):
    return {"tenant": "t", "name": f"k{number}", "value": bytes([number % 256]) * 10,
            "timestamp": 5000 + number, "revision": 9000 + number, "deleted": False}


def test_frames_round_trip_and_stop_at_damage():
    frames = b"".join(encode_frame(item) for item in [{"a": b"\x00"}, [1, "two"], 3])
    assert decode_frames(frames) == ([{"a": b"\x00"}, [1, "two"], 3], None)
    items, problem = decode_frames(frames[:-1])
    assert items == [{"a": b"\x00"}, [1, "two"]] and problem.torn


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("damage", ["none", "flip", "cut", "zeros"])
def test_reading_a_file_in_chunks_finds_what_decoding_it_whole_finds(chunk_bytes, damage):
    frames = bytearray(b"".join(encode_frame(record(number)) for number in range(40)))
    if damage == "flip":
        frames[len(frames) // 2] ^= 0x10
    elif damage == "cut":
        del frames[-5:]
    elif damage == "zeros":
        frames += bytes(100)
    whole = decode_frames(bytes(frames))
    assert read_frames(io.BytesIO(bytes(frames)), chunk_bytes=chunk_bytes) == whole
    assert (whole[1] is None) == (damage == "none")
