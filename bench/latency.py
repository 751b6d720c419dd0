"""Single-client latency: one keep-alive connection, one request at a time, p50 and p99 of a fixed count.

wrk with 32 connections measures throughput; this measures what one caller
waits for one request when nothing queues behind it. The client is the
standard library's http.client on one connection, and it reports its own
CPU time per request (`client_cpu_us`), so what the client itself costs can be
told apart from the server's time (the bare app's figures show the floor).
"""

import http.client
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.measure import KEY_COUNT, READ_KEY, VALUE

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class LatencySpec:
    """`count` sequential requests: `method` on the path `key_prefix` + key + `query`.

    Writes cycle over KEY_COUNT keys with a 100-byte value (form-encoded for etcd's v2 API);
    reads all ask for READ_KEY.
    """

    label: str
    base_url: str
    method: str
    key_prefix: str
    count: int
    query: str = ""
    form: bool = False

    def request(self, index):
        """(path, body, headers) of request number `index`."""
        if self.method == "GET":
            return self.key_prefix + READ_KEY + self.query, None, {}
        key = f"k{index % KEY_COUNT}"
        if self.form:
            return (self.key_prefix + key, b"value=" + VALUE,
                    {"Content-Type": "application/x-www-form-urlencoded"})
        return self.key_prefix + key, VALUE, {"Content-Type": "application/octet-stream"}


@dataclass
class LatencyResult:
    label: str
    samples_ms: list = field(repr=False)
    errors: int
    client_cpu_us: float

    @property
    def p50_ms(self):
        return percentile(self.samples_ms, 50)

    @property
    def p99_ms(self):
        return percentile(self.samples_ms, 99)

    def to_json(self):
        return {"label": self.label, "requests": len(self.samples_ms), "errors": self.errors,
                "p50_ms": _round(self.p50_ms), "p99_ms": _round(self.p99_ms),
                "mean_ms": _round(statistics.fmean(self.samples_ms)) if self.samples_ms else None,
                "client_cpu_us_per_request": round(self.client_cpu_us, 1)}


def _round(value):
    return None if value is None else round(value, 3)


def percentile(samples, percent):
    """The nearest-rank percentile of `samples` (the smallest value with `percent` % at or below it)."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * percent // 100))  # ceiling without floats
    return ordered[int(rank) - 1]


def run_latency(spec):
    """Send spec.count requests one after another on one connection; a non-2xx counts as an error."""
    parts = urlsplit(spec.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    samples, errors = [], 0
    cpu_before = time.thread_time_ns()
    try:
        for index in range(spec.count):
            path, body, headers = spec.request(index)
            started = time.perf_counter_ns()
            try:
                connection.request(spec.method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()  # http.client reconnects on the next request
                continue
            samples.append((time.perf_counter_ns() - started) / 1e6)
            if not 200 <= response.status < 300:
                errors += 1
    finally:
        connection.close()
    cpu_us = (time.thread_time_ns() - cpu_before) / 1e3 / max(spec.count, 1)
    return LatencyResult(spec.label, samples, errors, cpu_us)


def summarize_rounds(results):
    """Median over rounds of each round's p50 and p99, the errors summed, the client CPU median."""
    p50s = [result.p50_ms for result in results if result.p50_ms is not None]
    p99s = [result.p99_ms for result in results if result.p99_ms is not None]
    return {
        "label": results[0].label,
        "rounds": len(results),
        "requests_per_round": len(results[0].samples_ms) + results[0].errors,
        "p50_ms": _round(statistics.median(p50s)) if p50s else None,
        "p99_ms": _round(statistics.median(p99s)) if p99s else None,
        "round_p50_ms": [_round(value) for value in p50s],
        "errors": sum(result.errors for result in results),
        "client_cpu_us_per_request": round(statistics.median(result.client_cpu_us for result in results), 1),
    }
