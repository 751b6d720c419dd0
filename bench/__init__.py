"""Benchmark harness comparing badkv with a bare Flask baseline under wrk load."""
