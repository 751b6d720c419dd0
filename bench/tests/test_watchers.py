"""Tests for bench/watchers.py's pure parts."""

import pytest

from bench.watchers import parse_requests_per_second

WRK = """Running 5s test @ http://127.0.0.1:1/api/v1/keys/bench/k
  1 threads and 16 connections
  10000 requests in 5.00s, 1.50MB read
Requests/sec:   1999.87
Transfer/sec:    307.60KB
"""


def test_the_rate_is_read_from_wrks_requests_per_second_line():
    assert parse_requests_per_second(WRK) == 1999.87


def test_output_without_the_line_is_an_error():
    with pytest.raises(ValueError):
        parse_requests_per_second("unable to connect to 127.0.0.1:1 Connection refused")
