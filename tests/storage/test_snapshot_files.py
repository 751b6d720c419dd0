"""Tests for badkv.storage.snapshot_files, and for snapshots and compaction through badkv.storage.wal."""

import os
import threading

import pytest

from badkv.storage.frames import CorruptLogError, encode_frame
from badkv.storage.snapshot_files import SnapshotMeta, read_snapshot_file, write_snapshot_stream
from badkv.storage.wal import WriteAheadLog

NODE, CLUSTER = "n1", "c1"


def record(number, deleted=False):
    return {
        "tenant": "t",
        "name": f"k{number}",
        "value": b"" if deleted else bytes([number % 256]) * 10,
        "timestamp": 5000 + number,
        "revision": 9000 + number,
        "deleted": deleted,
    }


def entry(index, term=1):
    return {
        "index": index,
        "term": term,
        "revision": index,
        "op": "noop",
        "tenant": "",
        "name": "",
        "value": b"",
        "timestamp": 0,
    }


def meta(count, index=10):
    return SnapshotMeta(index, 2, 77, NODE, CLUSTER, 1700000000.5, count)


RECORDS = [record(number, deleted=number % 7 == 0) for number in range(50)]


@pytest.fixture
def wal(tmp_path):
    log = WriteAheadLog(tmp_path, segment_bytes=300)
    log.open(node=NODE, cluster_id=CLUSTER)
    yield log
    log.close()


def fill(wal, last):
    for index in range(wal.last_index + 1, last + 1):
        wal.append([entry(index)])
        wal.flush_through(index)


def reopen(path):
    log = WriteAheadLog(path, segment_bytes=300)
    recovery = log.open(node=NODE, cluster_id=CLUSTER)
    log.close()
    return recovery


def snapshot_names(path):
    return sorted(os.listdir(path / "snap"))


def test_stream_is_the_file(tmp_path, wal):
    written = wal.write_snapshot(index=0, term=0, revision=0, records=RECORDS)
    file_bytes = (tmp_path / "snap" / os.listdir(tmp_path / "snap")[0]).read_bytes()
    assert b"".join(write_snapshot_stream(written, iter(RECORDS))) == file_bytes


def test_snapshot_file_round_trip(tmp_path):
    path = tmp_path / "backup.snap"
    path.write_bytes(b"".join(write_snapshot_stream(meta(len(RECORDS)), RECORDS)))
    found, records = read_snapshot_file(path)
    assert found == meta(len(RECORDS))
    assert list(records) == RECORDS


def test_stream_of_unknown_length_is_readable(tmp_path):
    path = tmp_path / "backup.snap"
    path.write_bytes(b"".join(write_snapshot_stream(meta(None), (r for r in RECORDS))))
    found, records = read_snapshot_file(path)
    assert found.record_count is None and list(records) == RECORDS


def test_stream_with_fewer_records_than_promised_fails_before_the_trailer():
    stream = write_snapshot_stream(meta(3), RECORDS[:2])
    with pytest.raises(ValueError, match="promises 3 records"):
        b"".join(stream)


@pytest.fixture
def snapshot_bytes():
    return b"".join(write_snapshot_stream(meta(len(RECORDS)), RECORDS))


@pytest.mark.parametrize("keep", [0, 5, 100, -200, -9, -1])
def test_truncated_snapshot_is_rejected(tmp_path, snapshot_bytes, keep):
    path = tmp_path / "cut.snap"
    path.write_bytes(snapshot_bytes[:keep])
    with pytest.raises(CorruptLogError) as raised:
        read_snapshot_file(path)
    assert raised.value.path == str(path) and str(path) in str(raised.value)


def test_snapshot_cut_at_a_frame_boundary_is_rejected(tmp_path, snapshot_bytes):
    trailer = encode_frame(["end", len(RECORDS)])
    path = tmp_path / "cut.snap"
    path.write_bytes(snapshot_bytes[: -len(trailer)])
    with pytest.raises(CorruptLogError, match="truncated"):
        read_snapshot_file(path)


@pytest.mark.parametrize("offset", [3, 40, 700, -3])
def test_bit_flip_in_a_snapshot_is_rejected(tmp_path, snapshot_bytes, offset):
    damaged = bytearray(snapshot_bytes)
    damaged[offset] ^= 0x10
    path = tmp_path / "flipped.snap"
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptLogError, match="corrupt at byte offset"):
        read_snapshot_file(path)


def test_snapshot_compacts_the_log_and_recovery_replays_the_rest(tmp_path, wal):
    fill(wal, 30)
    segments_before = sorted(os.listdir(tmp_path / "wal"))
    wal.write_snapshot(index=20, term=1, revision=20, records=RECORDS)
    fill(wal, 35)
    remaining = sorted(os.listdir(tmp_path / "wal"))
    assert len(remaining) < len(segments_before)
    assert int(remaining[0].split(".")[0]) <= 21  # nothing after the snapshot was removed
    stats = wal.stats()
    assert stats["last_snapshot_index"] == 20 and stats["segments"] == len(remaining)
    assert stats["wal_bytes"] == sum(os.path.getsize(tmp_path / "wal" / name) for name in remaining)
    wal.close()
    recovery = reopen(tmp_path)
    assert recovery.snapshot.index == 20 and recovery.snapshot_records == RECORDS
    assert [e["index"] for e in recovery.entries] == list(range(21, 36))


def test_only_the_newest_two_snapshots_are_kept(tmp_path, wal):
    for index in (5, 10, 15, 20):
        fill(wal, index)
        wal.write_snapshot(index=index, term=1, revision=index, records=[record(index)])
    assert snapshot_names(tmp_path) == [f"{15:020d}.snap", f"{20:020d}.snap"]


def write_older_snapshot(path, index):
    older = path / "snap" / f"{index:020d}.snap"
    older.write_bytes(b"".join(write_snapshot_stream(meta(1, index=index), [record(index)])))


def test_corrupt_newest_snapshot_falls_back_to_an_older_one(tmp_path, wal):
    fill(wal, 12)
    wal.write_snapshot(index=2, term=1, revision=2, records=[record(2)])  # covers no whole segment
    wal.close()
    write_older_snapshot(tmp_path, 1)
    newest = tmp_path / "snap" / f"{2:020d}.snap"
    newest.write_bytes(newest.read_bytes()[:-1])
    recovery = reopen(tmp_path)
    assert recovery.snapshot.index == 1 and recovery.snapshot_records == [record(1)]
    assert [e["index"] for e in recovery.entries] == list(range(2, 13))
    assert str(newest) in recovery.truncated[0]


def test_corrupt_newest_snapshot_whose_log_was_compacted_stops_recovery(tmp_path, wal):
    fill(wal, 12)
    wal.write_snapshot(index=8, term=1, revision=8, records=[record(8)])
    wal.close()
    write_older_snapshot(tmp_path, 1)
    newest = tmp_path / "snap" / f"{8:020d}.snap"
    newest.write_bytes(newest.read_bytes()[:-1])
    with pytest.raises(CorruptLogError, match=r"entries 2 to \d+ are missing after skipping an unreadable snapshot"):
        reopen(tmp_path)


def test_snapshot_beyond_the_log_starts_it_afresh(tmp_path, wal):
    fill(wal, 5)
    wal.append([entry(6)])
    wal.write_snapshot(index=100, term=4, revision=100, records=RECORDS)
    assert (wal.last_index, wal.durable_index) == (100, 100)
    assert os.listdir(tmp_path / "wal") == []
    with pytest.raises(ValueError, match="ends at 100"):
        wal.append([entry(7)])
    wal.append([entry(101, term=4)])
    wal.flush_through(101)
    wal.close()
    recovery = reopen(tmp_path)
    assert recovery.snapshot.index == 100 and recovery.entries == [entry(101, term=4)]


def test_snapshot_covering_buffered_entries_makes_them_durable(tmp_path, wal):
    fill(wal, 3)
    wal.append([entry(4), entry(5), entry(6)])
    wal.write_snapshot(index=5, term=1, revision=5, records=[])
    assert (wal.last_index, wal.durable_index) == (6, 5)
    wal.flush_through(6)
    wal.close()
    recovery = reopen(tmp_path)
    assert recovery.snapshot.index == 5 and [e["index"] for e in recovery.entries] == [6]


def test_older_snapshot_and_truncation_into_it_are_refused(wal):
    fill(wal, 10)
    wal.write_snapshot(index=8, term=1, revision=8, records=[])
    with pytest.raises(ValueError, match="older"):
        wal.write_snapshot(index=7, term=1, revision=7, records=[])
    with pytest.raises(ValueError, match="snapshot covers entries"):
        wal.truncate_from(8)


def test_snapshots_taken_while_writers_flush_lose_nothing(tmp_path, wal):
    index_lock, stop = threading.Lock(), threading.Event()

    def writer():
        while not stop.is_set():
            with index_lock:
                index = wal.last_index + 1
                wal.append([entry(index)])
            wal.flush_through(index)

    writers = [threading.Thread(target=writer) for _ in range(8)]
    for thread in writers:
        thread.start()
    flushed = threading.Event()
    wal.fsync_observer = lambda seconds: flushed.set()
    snapshots = []
    while len(snapshots) < 5:
        assert flushed.wait(10), "the writers stopped making progress"
        flushed.clear()
        if wal.durable_index > (snapshots[-1] if snapshots else 0) + 10:
            snapshots.append(wal.durable_index)
            wal.write_snapshot(index=snapshots[-1], term=1, revision=0, records=[record(len(snapshots))])
    stop.set()
    for thread in writers:
        thread.join()
    last = wal.durable_index
    wal.close()
    recovery = reopen(tmp_path)
    assert recovery.snapshot.index == snapshots[-1] and recovery.snapshot_records == [record(5)]
    assert [e["index"] for e in recovery.entries] == list(range(snapshots[-1] + 1, last + 1))


def test_a_snapshot_keeps_the_membership_and_an_older_one_reads_as_none(tmp_path, wal):
    fill(wal, 12)
    membership = {"voters": {"n1": "127.0.0.1:1"}, "learners": {"n2": "127.0.0.1:2"}, "tokens": {}}
    wal.write_snapshot(index=10, term=1, revision=10, records=RECORDS[:3], membership=membership)
    wal.close()
    assert reopen(tmp_path).snapshot.membership == membership
    older = {key: value for key, value in meta(3).to_header().items() if key != "membership"}
    assert SnapshotMeta.from_header(older, tmp_path).membership is None
