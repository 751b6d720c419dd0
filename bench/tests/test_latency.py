import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.latency import LatencyResult, LatencySpec, percentile, run_latency, summarize_rounds


def test_percentile_is_the_nearest_rank():
    samples = list(range(1, 101))  # 1..100
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) is None


def test_requests_are_shaped_like_the_wrk_workloads():
    write = LatencySpec("w", "http://127.0.0.1:1", "POST", "/api/v1/keys/bench/", 10)
    path, body, headers = write.request(10_003)
    assert path == "/api/v1/keys/bench/k3" and body == b"v" * 100
    etcd = LatencySpec("e", "http://127.0.0.1:1", "PUT", "/v2/keys/bench/", 10, form=True)
    assert etcd.request(0)[1] == b"value=" + b"v" * 100
    assert etcd.request(0)[2]["Content-Type"] == "application/x-www-form-urlencoded"
    read = LatencySpec("r", "http://127.0.0.1:1", "GET", "/api/v1/keys/bench/", 10, query="?consistency=linearizable")
    assert read.request(5) == ("/api/v1/keys/bench/hot?consistency=linearizable", None, {})


@pytest.fixture
def server():
    """An in-process HTTP/1.1 server: 202 for POST, 404 for GET; it counts the connections it accepted."""
    connections = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            connections.append(self.client_address)
            super().setup()

        def _answer(self, status):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            self._answer(202)

        def do_GET(self):
            self._answer(404)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", connections
    httpd.shutdown()
    httpd.server_close()


def test_run_latency_times_every_request_on_one_connection(server):
    base_url, connections = server
    result = run_latency(LatencySpec("post", base_url, "POST", "/api/v1/keys/bench/", 50))
    assert len(result.samples_ms) == 50 and result.errors == 0
    assert len(connections) == 1  # keep-alive: one connection for all 50
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.client_cpu_us > 0


def test_run_latency_counts_non_2xx_answers_as_errors(server):
    base_url, _ = server
    assert run_latency(LatencySpec("get", base_url, "GET", "/api/v1/keys/bench/", 20)).errors == 20


def test_rounds_summarize_to_medians():
    rounds = [LatencyResult("x", [1.0] * 99 + [9.0], 0, 100.0), LatencyResult("x", [2.0] * 100, 1, 200.0),
              LatencyResult("x", [3.0] * 100, 0, 300.0)]
    summary = summarize_rounds(rounds)
    assert summary["p50_ms"] == 2.0 and summary["round_p50_ms"] == [1.0, 2.0, 3.0]
    assert summary["p99_ms"] == 2.0
    assert summary["errors"] == 1 and summary["client_cpu_us_per_request"] == 200.0
    assert summary["requests_per_round"] == 100
