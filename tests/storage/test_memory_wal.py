"""Tests for badkv.storage.memory_wal: the write-ahead log's interface with nothing on disk.

The tests parametrized over ``any_wal`` hold for the file log too: both must
answer the same calls the same way, errors included.
"""

import os

import pytest

from badkv.storage.memory_wal import MemoryWal
from badkv.storage.snapshot_files import SnapshotMeta
from badkv.storage.wal import WriteAheadLog

NODE, CLUSTER = "n1", "c1"


def entry(index, term=1):
    return {"index": index, "term": term, "revision": index, "op": "noop", "tenant": "", "name": "",
            "value": b"", "timestamp": 0}


def entries(first, last, term=1):
    return [entry(index, term) for index in range(first, last + 1)]


@pytest.fixture
def wal():
    log = MemoryWal()
    log.open(node=NODE, cluster_id=CLUSTER)
    yield log
    log.close()


@pytest.fixture(params=["memory", "file"])
def any_wal(request, tmp_path):
    log = MemoryWal() if request.param == "memory" else WriteAheadLog(tmp_path, fsync=False)
    log.open(node=NODE, cluster_id=CLUSTER)
    yield log
    log.close()


def durable(log):
    """Flush what the file log buffers; the memory log has nothing to flush."""
    if log.last_index:
        log.flush_through(log.last_index)


def test_the_two_logs_say_which_they_are():
    assert MemoryWal.in_memory is True and WriteAheadLog.in_memory is False


def test_appended_entries_are_durable_at_once(wal):
    wal.append(entries(1, 3))
    assert (wal.last_index, wal.durable_index) == (3, 3)
    assert wal.stats()["durable_index"] == wal.stats()["last_index"] == 3


def test_flush_returns_at_once_and_never_calls_the_fsync_observer(wal):
    observed = []
    wal.fsync_observer = observed.append
    wal.append(entries(1, 2))
    wal.flush_through(2)
    wal.flush_through(0)
    assert observed == [] and wal.stats()["fsyncs"] == 0


@pytest.mark.parametrize(("batch", "message"), [
    ([entry(2)], "entry 2 does not continue the log, which ends at 0"),
    ([entry(1), entry(3)], "entry indexes must be consecutive: 3 follows 1"),
])
def test_a_gap_is_refused_as_on_disk(any_wal, batch, message):
    with pytest.raises(ValueError, match=message):
        any_wal.append(batch)
    assert any_wal.last_index == 0


def test_flush_beyond_the_log_is_refused_as_on_disk(any_wal):
    any_wal.append(entries(1, 2))
    with pytest.raises(ValueError, match="cannot flush through entry 3: the log ends at 2"):
        any_wal.flush_through(3)


def test_truncate_drops_the_suffix_as_on_disk(any_wal):
    any_wal.append(entries(1, 5))
    durable(any_wal)
    any_wal.truncate_from(4)
    assert (any_wal.last_index, any_wal.durable_index) == (3, 3)
    any_wal.truncate_from(10)  # beyond the log: nothing to drop
    assert any_wal.last_index == 3
    any_wal.append(entries(4, 4, term=2))
    assert any_wal.last_index == 4


def test_snapshot_beyond_the_log_moves_both_indexes_as_on_disk(any_wal):
    any_wal.append(entries(1, 3))
    meta = any_wal.write_snapshot(index=100, term=4, revision=100, records=[{"k": 1}])
    assert isinstance(meta, SnapshotMeta)
    assert (meta.index, meta.term, meta.revision, meta.node, meta.cluster_id, meta.record_count) == (
        100, 4, 100, NODE, CLUSTER, 1)
    assert (any_wal.last_index, any_wal.durable_index) == (100, 100)
    with pytest.raises(ValueError, match="ends at 100"):
        any_wal.append([entry(4)])
    any_wal.append([entry(101, term=4)])
    assert any_wal.stats()["last_snapshot_index"] == 100


def test_snapshot_inside_the_log_keeps_the_entries_after_it(any_wal):
    any_wal.append(entries(1, 6))
    durable(any_wal)
    any_wal.write_snapshot(index=4, term=1, revision=4, records=iter([{"k": 1}, {"k": 2}]))
    assert (any_wal.last_index, any_wal.durable_index) == (6, 6)
    assert any_wal.stats()["last_snapshot_index"] == 4


def test_older_snapshot_and_truncation_into_one_are_refused_as_on_disk(any_wal):
    any_wal.append(entries(1, 10))
    durable(any_wal)
    any_wal.write_snapshot(index=8, term=1, revision=8, records=[])
    with pytest.raises(ValueError, match="snapshot at 7 is older than the one at 8"):
        any_wal.write_snapshot(index=7, term=1, revision=7, records=[])
    with pytest.raises(ValueError, match="cannot truncate from 8: the snapshot covers entries to 8"):
        any_wal.truncate_from(8)


def test_a_closed_log_refuses_writes(any_wal):
    any_wal.close()
    with pytest.raises(RuntimeError, match="not open"):
        any_wal.append([entry(1)])
    with pytest.raises(RuntimeError, match="not open"):
        any_wal.write_snapshot(index=1, term=1, revision=1, records=[])
    any_wal.close()  # twice is harmless


def test_a_second_open_is_refused(wal):
    with pytest.raises(RuntimeError, match="already open"):
        wal.open(node=NODE, cluster_id=CLUSTER)


def test_reopening_returns_what_it_was_told_but_no_snapshot_records(wal):
    wal.append(entries(1, 5))
    wal.write_snapshot(index=2, term=1, revision=2, records=[{"k": 1}])
    wal.truncate_from(5)
    wal.save_state(7, "n2")
    wal.close()
    recovery = wal.open(node=NODE, cluster_id=CLUSTER)
    assert recovery.snapshot.index == 2 and recovery.snapshot_records == []
    assert recovery.entries == entries(3, 4)
    assert (recovery.term, recovery.voted_for) == (7, "n2")
    assert recovery.truncated == recovery.repaired == []


def test_stats_have_the_file_logs_keys_and_nothing_on_disk(wal, tmp_path):
    file_wal = WriteAheadLog(tmp_path)
    file_wal.open(node=NODE, cluster_id=CLUSTER)
    file_keys = set(file_wal.stats())
    file_wal.close()
    stats = wal.stats()
    assert set(stats) == file_keys
    assert (stats["wal_bytes"], stats["segments"], stats["fsync_seconds_total"]) == (0, 0, 0.0)
    assert (stats["last_snapshot_index"], stats["last_snapshot_time"]) == (0, None)


def test_nothing_is_written_anywhere(wal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wal.append(entries(1, 3))
    wal.save_state(2, None)
    wal.write_snapshot(index=3, term=1, revision=3, records=[{"k": 1}])
    assert os.listdir(tmp_path) == []
