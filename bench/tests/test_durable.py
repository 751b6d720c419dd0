from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.config import ConfigError, config_from_args
from bench.loadgen import LoadResult
from bench.measure import ComparisonResult
from bench.scenarios import SCENARIOS, durable_spec, fsync_note, ratio_summary, storage_problem, without_in_memory


def run(rate, non_2xx=0):
    return LoadResult(requests=int(rate), duration_s=1.0, requests_per_second=rate,
                      latency_ms={"mean": 1.0, "p99": 2.0}, non_2xx=non_2xx,
                      socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0})


def test_durable_nodes_lose_in_memory_and_get_a_data_dir():
    config = SimpleNamespace(badkv_cmd="badkv -name {name} -listen {listen} -in-memory -threads {threads}",
                             server_threads=8, cluster_threads=32)
    spec = durable_spec(config, "d1", 5001, "d1=127.0.0.1:5001", Path("/var/tmp/b/d1"))
    assert "-in-memory" not in spec.argv
    assert spec.argv[-4:] == ("-cluster", "d1=127.0.0.1:5001", "-data-dir", "/var/tmp/b/d1")
    assert without_in_memory(("badkv", "--in-memory", "-name", "x")) == ("badkv", "-name", "x")


def test_durable_is_selectable_but_not_default():
    assert "durable" in SCENARIOS
    config = config_from_args(["--scenarios", "durable"])
    assert config.scenarios == ("durable",)
    assert "durable" not in config_from_args([]).scenarios


def test_durable_dir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="--durable-dir"):
        config_from_args(["--scenarios", "durable", "--durable-dir", str(tmp_path / "missing")])


def test_ratio_of_medians_against_the_target():
    comparison = ComparisonResult("write", "bare", runs={
        "bare": [run(1000.0)] * 3,
        "in-memory leader": [run(400.0), run(500.0), run(600.0)],
        "durable leader": [run(350.0), run(400.0, non_2xx=2), run(450.0)],
    }, preflight={"bare": "", "in-memory leader": "", "durable leader": ""})
    summary, note = ratio_summary(comparison, "durable leader", "in-memory leader")
    assert summary["ratio"] == 0.8 and summary["target_met"] is True
    assert summary["flagged"] == ["durable leader"]
    assert "0.80 (target >= 0.80: met)" in note and "FLAGGED" in note
    summary, note = ratio_summary(comparison, "durable leader", "in-memory leader", target=0.9)
    assert summary["target_met"] is False and "NOT met" in note


def test_fsync_note_reports_group_commit():
    before = {"fsyncs": 10, "fsync_seconds_total": 0.01, "last_index": 100}
    after = {"fsyncs": 110, "fsync_seconds_total": 0.31, "last_index": 500}
    assert "400 log entries, 100 fsyncs (mean 3.00 ms, 4.0 entries per fsync" in fsync_note(before, after)
    assert "no fsync" in fsync_note(before, before)


def test_storage_problem_catches_a_node_in_the_wrong_mode():
    assert storage_problem("durable leader", {"in_memory": False}, want_in_memory=False) == ""
    assert "must run on disk" in storage_problem("durable leader", {"in_memory": True}, want_in_memory=False)
    assert "unreadable" in storage_problem("x", {}, want_in_memory=True)
