"""Tests for badkv.storage.wal (and the segment, state and data-dir files under it): round trips, group commit,
torn tails, corruption, repair, compaction."""

import logging
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from badkv.storage.datadir import DataDirMismatch
from badkv.storage.frames import CorruptLogError
from badkv.storage.wal import WriteAheadLog

NODE, CLUSTER = "n1", "c1"


def entry(index, term=1, value=b"v"):
    return {
        "index": index,
        "term": term,
        "revision": 1000 + index,
        "op": "put",
        "tenant": "t",
        "name": f"k{index}",
        "value": value,
        "timestamp": 2000 + index,
    }


def entries(first, last, **fields):
    return [entry(index, **fields) for index in range(first, last + 1)]


def open_wal(path, *, repair=False, **options):
    wal = WriteAheadLog(path, **options)
    return wal, wal.open(node=NODE, cluster_id=CLUSTER, repair=repair)


def reopen(path, *, repair=False, **options):
    wal, recovery = open_wal(path, repair=repair, **options)
    wal.close()
    return recovery


def write_log(path, batches, **options):
    """Append and flush each batch of entries; return the segment paths in order."""
    wal, _ = open_wal(path, **options)
    for batch in batches:
        wal.append(batch)
        wal.flush_through(batch[-1]["index"])
    wal.close()
    return segment_paths(path)


def segment_paths(path):
    wal_dir = path / "wal"
    return [wal_dir / name for name in sorted(os.listdir(wal_dir))]


def frame_starts(data):
    """Byte offset of every frame in a segment's bytes."""
    starts, offset = [], 0
    while offset < len(data):
        starts.append(offset)
        offset += 8 + int.from_bytes(data[offset : offset + 4], "little")
    return starts


def flip_bit(path, offset, bit=0):
    """Flip bit number ``bit`` of the little-endian field starting at ``offset``."""
    data = bytearray(path.read_bytes())
    data[offset + bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


def test_round_trip(tmp_path):
    written = entries(1, 5, value=b"\x00\xffbinary") + [dict(entry(6), op="delete", value=b"")]
    write_log(tmp_path, [written[:2], written[2:]])
    recovery = reopen(tmp_path)
    assert recovery.entries == written
    assert recovery.snapshot is None and recovery.truncated == [] and recovery.repaired == []


def test_reopened_log_continues_where_it_ended(tmp_path):
    write_log(tmp_path, [entries(1, 3)])
    wal, recovery = open_wal(tmp_path)
    assert (wal.last_index, wal.durable_index) == (3, 3)
    with pytest.raises(ValueError, match="does not continue"):
        wal.append([entry(5)])
    wal.append([entry(4)])
    wal.flush_through(4)
    wal.close()
    assert [e["index"] for e in reopen(tmp_path).entries] == [1, 2, 3, 4]


def test_append_is_buffered_until_flushed(tmp_path):
    wal, _ = open_wal(tmp_path)
    wal.append(entries(1, 3))
    assert (wal.last_index, wal.durable_index) == (3, 0)
    wal.flush_through(2)
    assert wal.durable_index == 3  # one flush writes everything buffered
    wal.append([entry(4)])
    wal.close()  # entry 4 was never flushed: dropped, as in a crash
    assert [e["index"] for e in reopen(tmp_path).entries] == [1, 2, 3]


def test_flush_beyond_the_log_is_refused(tmp_path):
    wal, _ = open_wal(tmp_path)
    wal.append([entry(1)])
    with pytest.raises(ValueError, match="log ends at 1"):
        wal.flush_through(2)
    wal.close()


def test_group_commit_shares_fsyncs(tmp_path):
    wal, _ = open_wal(tmp_path)
    observed, not_durable = [], []
    wal.fsync_observer = observed.append
    fsyncs_at_open = wal.stats()["fsyncs"]
    threads_count, per_thread = 32, 20
    index_lock = threading.Lock()
    start = threading.Barrier(threads_count)

    def writer(thread_number):
        start.wait()
        for _ in range(per_thread):
            with index_lock:  # the caller (raft) assigns indexes in order
                index = wal.last_index + 1
                wal.append([entry(index, value=str(thread_number).encode())])
            wal.flush_through(index)
            if wal.durable_index < index:
                not_durable.append(index)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush_calls = threads_count * per_thread
    stats = wal.stats()
    wal.close()
    assert stats["durable_index"] == flush_calls and not_durable == []
    assert 0 < len(observed) < flush_calls
    assert len(observed) == stats["fsyncs"] - fsyncs_at_open
    assert stats["fsync_seconds_total"] >= sum(observed) > 0
    assert [e["index"] for e in reopen(tmp_path).entries] == list(range(1, flush_calls + 1))


def test_segments_roll_at_the_size_limit(tmp_path):
    paths = write_log(tmp_path, [[e] for e in entries(1, 40, value=b"x" * 100)], segment_bytes=1000)
    assert len(paths) > 4
    assert all(path.stat().st_size <= 1000 for path in paths)
    assert [int(path.stem) for path in paths] == sorted(int(path.stem) for path in paths)
    assert int(paths[1].stem) == 1 + len(frame_starts(paths[0].read_bytes()))
    assert [e["index"] for e in reopen(tmp_path).entries] == list(range(1, 41))


@pytest.mark.parametrize(
    "cut",
    [1, 3, 7, 8, 9, -1],  # bytes of the last frame that reached the disk; -1: all but the last byte
    ids=["header-1", "header-3", "header-7", "header-only", "payload-1", "payload-all-but-one"],
)
def test_torn_tail_is_truncated_with_a_warning(tmp_path, caplog, cut):
    (segment,) = write_log(tmp_path, [entries(1, 5)])
    data = segment.read_bytes()
    last_start = frame_starts(data)[-1]
    kept = last_start + cut if cut > 0 else len(data) + cut
    segment.write_bytes(data[:kept])
    with caplog.at_level(logging.WARNING, logger="badkv.storage"):
        wal, recovery = open_wal(tmp_path)
    assert [e["index"] for e in recovery.entries] == [1, 2, 3, 4]
    assert str(segment) in caplog.text and f"offset {last_start}" in caplog.text
    assert recovery.truncated and str(segment) in recovery.truncated[0]
    assert segment.stat().st_size == last_start
    wal.append([entry(5, term=2)])
    wal.flush_through(5)
    wal.close()
    assert reopen(tmp_path).entries[-1] == entry(5, term=2)


def test_torn_first_record_of_the_last_segment_removes_the_segment(tmp_path):
    paths = write_log(tmp_path, [[e] for e in entries(1, 12)], segment_bytes=400)
    last_first = int(paths[-1].stem)
    paths[-1].write_bytes(paths[-1].read_bytes()[:3])
    wal, recovery = open_wal(tmp_path, segment_bytes=400)
    assert [e["index"] for e in recovery.entries] == list(range(1, last_first))
    assert not paths[-1].exists()
    wal.append([entry(last_first, term=2)])
    wal.flush_through(last_first)
    wal.close()
    assert reopen(tmp_path).entries[-1] == entry(last_first, term=2)


@pytest.mark.parametrize("damage", ["bad-checksum", "zero-filled"])
def test_damaged_last_frame_at_the_tail_counts_as_torn(tmp_path, damage):
    (segment,) = write_log(tmp_path, [entries(1, 5)])
    data = bytearray(segment.read_bytes())
    last_start = frame_starts(bytes(data))[-1]
    if damage == "bad-checksum":
        data[-1] ^= 0x01
    else:
        data[last_start + 8 :] = bytes(len(data) - last_start - 8)
        data += bytes(4096)  # the file system extended the file but never wrote the data
    segment.write_bytes(bytes(data))
    recovery = reopen(tmp_path)
    assert [e["index"] for e in recovery.entries] == [1, 2, 3, 4]
    assert len(recovery.truncated) == 1


@pytest.mark.parametrize(
    "where",
    [("length", 0), ("length", 4), ("length", 30), ("checksum", 2), ("payload", 5)],
    ids=lambda where: f"{where[0]}-bit{where[1]}",
)
def test_bit_flip_before_the_tail_stops_recovery(tmp_path, where):
    (segment,) = write_log(tmp_path, [entries(1, 10)])
    field, bit = where
    third = frame_starts(segment.read_bytes())[2]
    flip_bit(segment, third + {"length": 0, "checksum": 4, "payload": 9}[field], bit)
    with pytest.raises(CorruptLogError) as raised:
        reopen(tmp_path)
    assert (raised.value.path, raised.value.offset) == (str(segment), third)
    assert str(segment) in str(raised.value) and f"offset {third}" in str(raised.value)
    assert "badkv -repair" in str(raised.value)


def test_damage_at_the_end_of_a_segment_that_is_not_last_stops_recovery(tmp_path):
    paths = write_log(tmp_path, [[e] for e in entries(1, 12)], segment_bytes=400)
    assert len(paths) >= 3
    data = paths[0].read_bytes()
    last_start = frame_starts(data)[-1]
    paths[0].write_bytes(data[:-1])  # would be a torn tail if this were the last segment
    with pytest.raises(CorruptLogError) as raised:
        reopen(tmp_path, segment_bytes=400)
    assert (raised.value.path, raised.value.offset) == (str(paths[0]), last_start)


def test_missing_segment_stops_recovery(tmp_path):
    paths = write_log(tmp_path, [[e] for e in entries(1, 12)], segment_bytes=400)
    paths[1].unlink()
    with pytest.raises(CorruptLogError, match="missing|expected") as raised:
        reopen(tmp_path)
    assert raised.value.path == str(paths[2])


def test_repair_truncates_at_the_damage_and_reports_it(tmp_path, caplog):
    paths = write_log(tmp_path, [[e] for e in entries(1, 12)], segment_bytes=400)
    middle = paths[1]
    first_in_middle = int(middle.stem)
    second = frame_starts(middle.read_bytes())[1]
    flip_bit(middle, second + 12)
    with caplog.at_level(logging.WARNING, logger="badkv.storage"):
        wal, recovery = open_wal(tmp_path, repair=True)
    assert [e["index"] for e in recovery.entries] == list(range(1, first_in_middle + 1))
    assert len(recovery.repaired) == 1
    assert str(middle) in recovery.repaired[0] and str(paths[-1]) in recovery.repaired[0]
    assert f"offset {second}" in caplog.text
    assert segment_paths(tmp_path) == paths[:2]
    wal.append([entry(first_in_middle + 1, term=3)])
    wal.flush_through(first_in_middle + 1)
    wal.close()
    assert reopen(tmp_path).entries[-1] == entry(first_in_middle + 1, term=3)


def test_truncate_from_drops_the_suffix_durably(tmp_path):
    wal, _ = open_wal(tmp_path, segment_bytes=400)
    for e in entries(1, 12):
        wal.append([e])
        wal.flush_through(e["index"])
    wal.append(entries(13, 14))
    wal.truncate_from(14)  # only buffered entries: no I/O
    assert (wal.last_index, wal.durable_index) == (13, 12)
    wal.truncate_from(5)
    assert (wal.last_index, wal.durable_index) == (4, 4)
    wal.append(entries(5, 6, term=2))
    wal.flush_through(6)
    wal.close()
    recovered = reopen(tmp_path).entries
    assert recovered == entries(1, 4) + entries(5, 6, term=2)


def test_truncating_buffered_entries_needs_no_io(tmp_path):
    wal, _ = open_wal(tmp_path)
    wal.append(entries(1, 3))
    wal.flush_through(3)
    wal.append(entries(4, 6))
    fsyncs = wal.stats()["fsyncs"]
    wal.truncate_from(5)
    assert wal.stats()["fsyncs"] == fsyncs
    wal.append([entry(5, term=2)])
    wal.flush_through(5)
    wal.close()
    assert reopen(tmp_path).entries == entries(1, 4) + [entry(5, term=2)]


def test_flushing_a_truncated_entry_is_refused(tmp_path):
    wal, _ = open_wal(tmp_path)
    wal.append(entries(1, 3))
    wal.truncate_from(2)
    with pytest.raises(ValueError, match="log ends at 1"):
        wal.flush_through(3)
    wal.close()


def test_a_failed_fsync_makes_the_log_unusable(tmp_path, monkeypatch):
    wal, _ = open_wal(tmp_path)
    wal.append([entry(1)])

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        wal.flush_through(1)
    monkeypatch.undo()
    assert wal.durable_index == 0
    with pytest.raises(RuntimeError, match="failed earlier"):
        wal.append([entry(2)])
    with pytest.raises(RuntimeError, match="failed earlier"):
        wal.flush_through(1)
    wal.close()


def test_state_round_trip(tmp_path):
    wal, recovery = open_wal(tmp_path)
    assert (recovery.term, recovery.voted_for) == (0, None)
    wal.save_state(7, "n2")
    wal.save_state(8, None)
    wal.close()
    recovery = reopen(tmp_path)
    assert (recovery.term, recovery.voted_for) == (8, None)
    assert not (tmp_path / "state.tmp").exists()


def test_corrupt_state_file_stops_recovery(tmp_path):
    wal, _ = open_wal(tmp_path)
    wal.save_state(3, "n1")
    wal.close()
    flip_bit(tmp_path / "state", 10)
    with pytest.raises(CorruptLogError, match="state"):
        reopen(tmp_path)


@pytest.mark.parametrize(
    ("node", "cluster", "message"),
    [("n2", CLUSTER, "belongs to node 'n1'"), (NODE, "other", "of cluster 'c1'")],
)
def test_data_dir_of_another_node_or_cluster_is_refused(tmp_path, node, cluster, message):
    write_log(tmp_path, [entries(1, 1)])
    with pytest.raises(DataDirMismatch, match=message) as raised:
        WriteAheadLog(tmp_path).open(node=node, cluster_id=cluster)
    assert str(tmp_path) in str(raised.value) and "refusing to start" in str(raised.value)
    assert reopen(tmp_path).entries == [entry(1)]  # the refused open let go of the directory


def test_data_dir_in_use_is_refused_and_freed_by_close(tmp_path):
    wal, _ = open_wal(tmp_path)
    with pytest.raises(DataDirMismatch, match="in use"):
        WriteAheadLog(tmp_path).open(node=NODE, cluster_id=CLUSTER)
    wal.close()
    reopen(tmp_path)


def test_failed_open_frees_the_data_dir(tmp_path):
    (segment,) = write_log(tmp_path, [entries(1, 5)])
    flip_bit(segment, 20)
    with pytest.raises(CorruptLogError):
        reopen(tmp_path)
    assert len(reopen(tmp_path, repair=True).repaired) == 1


def test_log_without_meta_is_refused(tmp_path):
    write_log(tmp_path, [entries(1, 1)])
    (tmp_path / "meta.json").unlink()
    with pytest.raises(DataDirMismatch, match="no meta.json"):
        reopen(tmp_path)


# ---- the property: reopening yields exactly what was durable ---------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5)),
        st.tuples(st.just("flush"), st.integers(0, 10)),
        st.tuples(st.just("truncate"), st.integers(0, 20)),
        st.tuples(st.just("snapshot"), st.integers(0, 20)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(operations=operations)
def test_reopening_yields_exactly_the_durable_entries(tmp_path_factory, operations):
    path = tmp_path_factory.mktemp("wal")
    options = {"segment_bytes": 300, "fsync": False}
    wal, _ = open_wal(path, **options)
    log, durable, base, term = {}, 0, 0, 1  # model: index -> entry; durable index; snapshot index

    def last():
        return max(log, default=base)

    for operation, number in operations:
        if operation == "append":
            term += number % 2
            batch = entries(last() + 1, last() + number, term=term)
            wal.append(batch)
            log.update((e["index"], e) for e in batch)
        elif operation == "flush":
            target = min(last(), durable + number)
            wal.flush_through(target)
            if target > durable:  # one flush writes everything buffered
                durable = last()
        elif operation == "truncate":
            start = base + 1 + number % (last() - base + 2)  # mostly inside the log
            wal.truncate_from(start)
            log = {i: e for i, e in log.items() if i < start}
            durable = min(durable, start - 1)
        elif operation == "snapshot":
            index = base + number % (last() - base + 3)  # mostly inside the log
            wal.write_snapshot(index=index, term=term, revision=index, records=[{"upto": index}])
            durable = max(durable, index)
            log = {i: e for i, e in log.items() if i > index}
            base = index
        else:
            wal.close()
            log = {i: e for i, e in log.items() if i <= durable}
            wal, recovery = open_wal(path, **options)
            assert recovery.entries == [log[i] for i in sorted(log) if i > base]
        assert (wal.last_index, wal.durable_index) == (last(), durable)
    wal.close()
    recovery = reopen(path, **options)
    assert recovery.entries == [log[i] for i in sorted(log) if i <= durable]
    assert (recovery.snapshot.index if recovery.snapshot else 0) == base
    assert recovery.snapshot_records == ([{"upto": base}] if recovery.snapshot else [])
