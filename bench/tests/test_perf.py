from types import SimpleNamespace

import pytest

from bench import perf, targets
from bench.config import ConfigError, config_from_args
from bench.latency import LatencyResult, LatencySpec
from bench.loadgen import LoadResult
from bench.measure import BADKV_LINEARIZABLE_API, ComparisonResult, Target, load_spec
from bench.perf_servers import BadkvTargets


def run(rate, non_2xx=0):
    return LoadResult(requests=int(rate), duration_s=1.0, requests_per_second=rate,
                      latency_ms={"mean": 1.0, "p99": 2.0}, non_2xx=non_2xx,
                      socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0})


BADKV = BadkvTargets(
    leader=Target("badkv leader d1", "http://127.0.0.1:1"), follower=Target("badkv follower d2", "http://127.0.0.1:2"),
    leader_linearizable=Target("badkv leader d1 linearizable", "http://127.0.0.1:1", BADKV_LINEARIZABLE_API),
    follower_linearizable=Target("badkv follower d2 linearizable", "http://127.0.0.1:2", BADKV_LINEARIZABLE_API),
    members="d1=...,d2=...,d3=...")
SYNCOBJ = Target("PySyncObj leader (journal, no fsync)", "http://127.0.0.1:3")


def comparisons():
    write = ComparisonResult("write", "bare", runs={
        "bare": [run(1000.0), run(1200.0), run(1100.0)],
        "badkv leader d1": [run(700.0)] * 3,
        "badkv follower d2": [run(400.0), run(500.0, non_2xx=1), run(450.0)],
        SYNCOBJ.label: [run(100.0)] * 3,
    }, preflight={})
    read = ComparisonResult("read", "bare", runs={
        "bare": [run(2000.0)] * 3, "badkv follower d2": [run(1900.0)] * 3,
        "badkv leader d1 linearizable": [run(1300.0)] * 3, "badkv follower d2 linearizable": [run(900.0)] * 3,
    }, preflight={"badkv follower d2": "probe got HTTP 307"})
    latency = [{"label": "badkv 1-client POST", "p50_ms": 1.2, "p99_ms": 3.0, "errors": 0},
               {"label": "badkv 1-client linearizable GET", "p50_ms": 1.0, "p99_ms": 2.0, "errors": 2}]
    return write, read, latency


def test_figures_are_the_medians_of_each_row_and_the_latency_p50s():
    figures, flagged = perf.perf_figures(*comparisons(), BADKV, SYNCOBJ)
    assert figures[targets.BARE_POST] == 1100.0 and figures[targets.LEADER_POST] == 700.0
    assert figures[targets.FOLLOWER_POST] == 450.0 and figures[targets.SYNCOBJ_POST] == 100.0
    assert figures[targets.FOLLOWER_LOCAL_GET] == 1900.0 and figures[targets.FOLLOWER_LINEARIZABLE_GET] == 900.0
    assert figures[targets.ONE_CLIENT_POST] == 1.2 and figures[targets.ETCD_ONE_CLIENT_PUT] is None
    assert flagged == sorted([targets.FOLLOWER_POST, targets.FOLLOWER_LOCAL_GET, targets.ONE_CLIENT_LINEARIZABLE_GET])
    verdicts = {v["key"]: v for v in targets.judge_all(figures, flagged)}
    assert verdicts["leader_post_over_bare"]["value"] == pytest.approx(0.636, abs=0.001)
    assert verdicts["leader_post_over_bare"]["met"] is False
    assert verdicts["leader_post_over_pysyncobj"]["met"] is True
    assert verdicts["one_client_post_over_etcd"]["met"] is None


def test_without_pysyncobj_its_goal_is_not_judged():
    figures, _ = perf.perf_figures(*comparisons(), BADKV, None)
    assert figures[targets.SYNCOBJ_POST] is None


def test_chart_data_has_every_row_with_its_ratio_to_bare():
    write, read, latency = comparisons()
    chart = perf.chart_data(write, read, latency)
    rows = {(row["group"], row["label"]): row for row in chart["throughput"]}
    assert len(rows) == 8
    assert rows[("POST", "badkv leader d1")]["ratio"] == pytest.approx(700 / 1100, abs=0.001)
    assert rows[("GET", "bare")]["ratio"] == 1.0
    assert chart["latency"][0] == {"label": "badkv 1-client POST", "p50_ms": 1.2, "p99_ms": 3.0}


def test_latency_warms_up_then_runs_every_client_once_per_round(monkeypatch):
    calls = []

    def fake_run(spec):
        calls.append((spec.label, spec.count))
        return LatencyResult(spec.label, [1.0] * spec.count, 0, 50.0)

    monkeypatch.setattr(perf, "run_latency", fake_run)
    specs = [LatencySpec(label, "http://127.0.0.1:1", "GET", "/", 500) for label in ("a", "b")]
    summary = perf.measure_latency(specs, SimpleNamespace(warmup_s=1, rounds=2))
    warmup = perf.LATENCY_WARMUP_REQUESTS
    assert calls == [("a", warmup), ("b", warmup), ("a", 500), ("b", 500), ("a", 500), ("b", 500)]
    assert [entry["rounds"] for entry in summary] == [2, 2]


def test_a_linearizable_read_asks_for_it_in_the_url():
    config = SimpleNamespace(connections=32, wrk_threads=2)
    spec = load_spec("read", BADKV.follower_linearizable, config, 10)
    assert spec.url == "http://127.0.0.1:2/api/v1/keys/bench/hot?consistency=linearizable"
    assert load_spec("read", BADKV.follower, config, 10).url == "http://127.0.0.1:2/api/v1/keys/bench/hot"


def test_perf_is_a_scenario_with_on_disk_data_and_a_latency_count():
    config = config_from_args(["--scenarios", "perf"])
    assert config.scenarios == ("perf",) and config.latency_requests == 2000
    with pytest.raises(ConfigError, match="--latency-requests"):
        config_from_args(["--scenarios", "perf", "--latency-requests", "10"])


def test_perf_needs_an_existing_durable_dir(tmp_path):
    with pytest.raises(ConfigError, match="--durable-dir"):
        config_from_args(["--scenarios", "perf", "--durable-dir", str(tmp_path / "missing")])
