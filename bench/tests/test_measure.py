from types import SimpleNamespace

import pytest

from bench.loadgen import LoadResult
from bench.measure import Comparison, Target, load_spec, measure


def fake_result(rate):
    return LoadResult(
        requests=int(rate), duration_s=1.0, requests_per_second=rate,
        latency_ms={"mean": 1.0, "p99": 2.0}, non_2xx=0, socket_errors={},
    )


@pytest.fixture
def config():
    return SimpleNamespace(rounds=3, duration_s=10, warmup_s=2, connections=32, wrk_threads=2)


@pytest.fixture
def targets(monkeypatch):
    monkeypatch.setattr("bench.measure.probe", lambda workload, target: "")
    return (Target("bare", "http://127.0.0.1:1"), Target("badkv", "http://127.0.0.1:2"))


def test_measure_warms_up_each_target_then_alternates_rounds(config, targets):
    calls = []

    def load(spec):
        calls.append((spec.url, spec.duration_s))
        return fake_result(100.0)

    result = measure(Comparison("read", targets), config, load)
    bare = "http://127.0.0.1:1/api/v1/keys/bench/hot"
    badkv = "http://127.0.0.1:2/api/v1/keys/bench/hot"
    assert calls == [(bare, 2), (badkv, 2)] + [(bare, 10), (badkv, 10)] * 3
    assert [len(runs) for runs in result.runs.values()] == [3, 3]
    assert result.baseline == "bare"


def test_measure_without_warmup_runs_only_the_rounds(config, targets):
    config.warmup_s = 0
    calls = []
    measure(Comparison("write", targets), config, lambda spec: calls.append(spec) or fake_result(1.0))
    assert len(calls) == 6


def test_write_spec_passes_method_encoding_and_key_space_to_the_script(config, targets):
    spec = load_spec("write", targets[1], config, 10)
    assert spec.url == "http://127.0.0.1:2/api/v1/keys/bench/"
    assert spec.script == "write.lua"
    assert spec.script_args == ("POST", "raw", "10000", "100")
    assert (spec.connections, spec.threads) == (32, 2)


def test_mirrored_comparison_reverses_every_second_round(config, targets):
    config.warmup_s = 0
    calls = []
    result = measure(Comparison("read", targets, mirrored=True), config,
                     lambda spec: calls.append(spec.url) or fake_result(float(len(calls))))
    bare = "http://127.0.0.1:1/api/v1/keys/bench/hot"
    badkv = "http://127.0.0.1:2/api/v1/keys/bench/hot"
    assert calls == [bare, badkv, badkv, bare, bare, badkv]
    # runs stay keyed by target, in round order, whatever order a round visited them in
    assert [run.requests_per_second for run in result.runs["bare"]] == [1.0, 4.0, 5.0]
    assert [run.requests_per_second for run in result.runs["badkv"]] == [2.0, 3.0, 6.0]
    assert list(result.runs) == ["bare", "badkv"]
