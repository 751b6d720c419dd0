import pytest

from badkv.records import Record
from badkv.storage.wal import WriteAheadLog
from bench.recovery import (
    CHECKED_LINE,
    NODE,
    SnapshotRecords,
    _batches,
    build_data_dir,
    children_of,
    kb_to_mb,
    log_entries,
    memory_of,
    node_config,
    parse_proc_status,
    parse_recovery_lines,
    ppid_from_stat,
    render_report,
)

STATUS = """Name:\tgunicorn: worker
State:\tS (sleeping)
PPid:\t4242
VmHWM:\t  412345 kB
VmRSS:\t  398000 kB
RssAnon:\t  380000 kB
RssFile:\t   18000 kB
Threads:\t12
"""


def test_proc_status_fields_become_kilobytes_and_integers():
    fields = parse_proc_status(STATUS)
    assert fields["VmHWM"] == 412345 and fields["VmRSS"] == 398000
    assert fields["PPid"] == 4242 and fields["Threads"] == 12
    assert fields["State"] == "S (sleeping)"


def test_ppid_survives_spaces_and_parentheses_in_the_command_name():
    assert ppid_from_stat("77 (gunicorn: worker (x)) S 4242 77 77 0 -1") == 4242


def fake_proc(root, pid, ppid, status=STATUS, rollup=None):
    folder = root / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} (badkv) S {ppid} {ppid} {ppid} 0 -1\n")
    (folder / "status").write_text(status)
    if rollup is not None:
        (folder / "smaps_rollup").write_text(rollup)


def test_children_are_found_by_scanning_for_the_parent_pid(tmp_path):
    fake_proc(tmp_path, 100, 1)
    fake_proc(tmp_path, 101, 100)
    fake_proc(tmp_path, 205, 100)
    fake_proc(tmp_path, 300, 101)
    (tmp_path / "self").mkdir()
    assert children_of(100, proc_root=tmp_path) == [101, 205]
    assert children_of(999, proc_root=tmp_path) == []


def test_memory_reads_status_and_pss_and_is_empty_for_a_gone_process(tmp_path):
    fake_proc(tmp_path, 101, 100, rollup="Rss:   398000 kB\nPss:   350000 kB\n")
    assert memory_of(101, proc_root=tmp_path) == {
        "VmHWM": 412345, "VmRSS": 398000, "RssAnon": 380000, "RssFile": 18000, "Pss": 350000}
    assert memory_of(102, proc_root=tmp_path) == {}


def test_kilobytes_convert_to_decimal_megabytes():
    assert kb_to_mb(500_000) == 512.0
    assert kb_to_mb(None) is None


def test_recovery_log_lines_come_back_in_order():
    text = ("x INFO [rec1] badkv.storage.recovery: rec1: recovered 20000 records from a snapshot and 2000 log entries in 0.16s\n"
            "x INFO [rec1] badkv.storage.recovery: rec1: recovered 20000 records from a snapshot and 2000 log entries in 1.25s\n")
    assert parse_recovery_lines(text) == [
        {"records": 20000, "log_entries": 2000, "seconds": 0.16},
        {"records": 20000, "log_entries": 2000, "seconds": 1.25},
    ]


def test_check_log_lines_are_told_apart_from_recovery_lines():
    text = ("x INFO [rec1] badkv.storage.recovery: rec1: checked 20000 snapshot records and 2000 log entries in 0.40s\n"
            "x INFO [rec1] badkv.storage.recovery: rec1: recovered 20000 records from a snapshot and 2000 log entries in 1.25s\n")
    assert parse_recovery_lines(text, CHECKED_LINE) == [{"records": 20000, "log_entries": 2000, "seconds": 0.4}]
    assert parse_recovery_lines(text) == [{"records": 20000, "log_entries": 2000, "seconds": 1.25}]


def test_snapshot_records_are_sized_lazy_record_dicts():
    records = SnapshotRecords(3)
    assert len(records) == 3
    items = list(records)
    assert [item["name"] for item in items] == ["k0", "k1", "k2"]
    assert Record.from_dict(items[2]) == Record("bench", "k2", b"v" * 100, 3, 3)


def test_log_entries_continue_after_the_snapshot_on_new_keys():
    entries = list(log_entries(first_index=11, count=2, first_revision=11, first_key=10))
    assert entries[0] == {"op": "put", "tenant": "bench", "name": "k10", "value": b"v" * 100,
                          "timestamp": 11, "revision": 11, "index": 11, "term": 1}
    assert [entry["index"] for entry in entries] == [11, 12]
    assert entries[1]["name"] == "k11" and entries[1]["revision"] == 12


def test_batches_keep_the_remainder():
    assert list(_batches(range(5), 2)) == [[0, 1], [2, 3], [4]]


def test_built_data_dir_reopens_with_every_record_and_entry(tmp_path):
    build = build_data_dir(tmp_path, keys=50, entries=25)
    assert build["snapshot_bytes"] > 50 * 100 and build["wal_bytes"] > 25 * 100
    wal = WriteAheadLog(tmp_path)
    recovery = wal.open(node=NODE, cluster_id=node_config().cluster_id)
    wal.close()
    assert recovery.snapshot.index == 50 and recovery.snapshot.revision == 50
    assert len(recovery.snapshot_records) == 50
    assert [entry["index"] for entry in recovery.entries] == list(range(51, 76))
    assert recovery.entries[-1]["name"] == "k74" and recovery.term == 1


@pytest.fixture
def document():
    memory = {"VmHWM": 300_000, "VmRSS": 290_000, "Pss": 250_000}
    return {
        "settings": {"keys": 1_000_000, "log_entries": 100_000, "data_dir": "/var/tmp/d", "filesystem": "ext4"},
        "build": {"snapshot_seconds": 5.0, "log_seconds": 1.0, "snapshot_bytes": 150e6, "wal_bytes": 17e6},
        "result": {
            "seconds_to_health": 12.5, "worker_recovery_seconds": 5.9,
            "recovery_log_lines": [{"records": 1, "log_entries": 1, "seconds": 5.9}],
            "check_log_lines": [{"records": 1, "log_entries": 1, "seconds": 2.1}],
            "worker_memory_kb": {"at_ready": memory, "settled": {**memory, "VmHWM": 600_000}},
            "master_memory_kb": {"VmHWM": 280_000},
            "keys_reported": 1_100_000, "keys_expected": 1_100_000,
            "post_start_snapshot": {"expected": True, "snapshot_entries": 100_000, "seen_after_seconds": 4.2},
            "worker_timeout_in_log": False,
        },
    }


def test_report_marks_each_number_against_its_target(document):
    lines = render_report(document).splitlines()

    def row(prefix):
        return next(text for text in lines if text.strip().startswith(prefix))

    assert row("spawn -> /admin/health").endswith("MISSED")
    assert row("worker recovery").endswith("ok")
    assert "307.2 MB" in row("worker peak RSS (VmHWM), at ready") and row("worker peak RSS (VmHWM), at ready").endswith("ok")
    assert row("worker peak RSS (VmHWM), settled").endswith("MISSED")
    assert row("keys in /admin/stats").endswith("ok")
    assert any("snapshot 4.20 s after ready" in text for text in lines)
