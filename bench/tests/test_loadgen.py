import pytest

from bench.loadgen import LoadgenError, parse_wrk_output

CLEAN_OUTPUT = """\
Running 2s test @ http://127.0.0.1:18081/api/v1/keys/bench/
  2 threads and 8 connections
Requests/sec:   1920.97
BENCH_RESULT {"requests": 4004, "duration_us": 2084366, "bytes": 823873, "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}, "latency_us": {"mean": 4113.1, "stdev": 1474.3, "max": 15981, "p50": 3922, "p90": 5911, "p99": 8458}}
"""

FAILING_OUTPUT = """\
  Non-2xx or 3xx responses: 3797
  Socket errors: connect 0, read 2, write 0, timeout 5
BENCH_RESULT {"requests": 3797, "duration_us": 2002112, "bytes": 679663, "errors": {"connect": 0, "read": 2, "write": 0, "status": 3797, "timeout": 5}, "latency_us": {"mean": 4212.3, "stdev": 1340.5, "max": 15781, "p50": 4042, "p90": 5894, "p99": 8334}}
"""


def test_parse_clean_run_gives_wrk_rate_and_latencies_in_ms():
    result = parse_wrk_output(CLEAN_OUTPUT)
    assert result.requests == 4004
    assert result.requests_per_second == pytest.approx(1920.97, abs=0.1)
    assert result.latency_ms["p99"] == pytest.approx(8.458)
    assert result.latency_ms["mean"] == pytest.approx(4.113)
    assert result.problems == []


def test_parse_counts_non_2xx_and_socket_errors_as_problems():
    result = parse_wrk_output(FAILING_OUTPUT)
    assert result.non_2xx == 3797
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 5}
    assert result.problems == ["3797 non-2xx responses", "7 socket errors (read 2, timeout 5)"]


@pytest.mark.parametrize("output", ["", "Requests/sec: 10.0\n", "BENCH_RESULT {not json\n"])
def test_parse_rejects_output_without_a_readable_result_line(output):
    with pytest.raises(LoadgenError):
        parse_wrk_output(output)
