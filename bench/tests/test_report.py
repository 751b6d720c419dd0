from types import SimpleNamespace

import pytest

from bench.loadgen import LoadResult
from bench.measure import ComparisonResult
from bench.report import render_table, summarize
from bench.scenarios import ScenarioResult


def run(rate, p99=5.0, non_2xx=0):
    return LoadResult(
        requests=int(rate), duration_s=1.0, requests_per_second=rate,
        latency_ms={"mean": 1.0, "p99": p99}, non_2xx=non_2xx,
        socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0},
    )


@pytest.fixture
def comparison():
    return ComparisonResult(
        workload="read",
        baseline="bare",
        runs={
            "bare": [run(1000.0), run(900.0, p99=7.0), run(1100.0)],
            "badkv": [run(400.0), run(600.0, non_2xx=3), run(500.0, p99=9.0)],
        },
        preflight={"bare": "", "badkv": ""},
    )


def test_summary_uses_medians_for_rate_ratio_and_p99(comparison):
    bare, badkv = summarize(comparison)
    assert bare["median_rps"] == 1000.0 and bare["ratio_to_baseline"] == 1.0
    assert badkv["median_rps"] == 500.0 and badkv["ratio_to_baseline"] == 0.5
    assert badkv["p99_ms_median"] == 5.0


def test_summary_flags_the_round_with_errors(comparison):
    bare, badkv = summarize(comparison)
    assert bare["flags"] == []
    assert badkv["flags"] == ["round 2: 3 non-2xx responses"]


def test_table_shows_skipped_scenarios_and_flags(comparison):
    config = SimpleNamespace(rounds=3, duration_s=10, warmup_s=3, connections=32, wrk_threads=2, server_threads=8, cluster_threads=32)
    results = [
        ScenarioResult(name="single", comparisons=[comparison]),
        ScenarioResult(name="cluster", skipped="badkv cluster did not start"),
    ]
    table = render_table(results, config)
    assert "== cluster: skipped: badkv cluster did not start" in table
    assert "FLAGGED: round 2: 3 non-2xx responses" in table
    assert "0.50" in table
