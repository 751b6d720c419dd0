"""Tests for the benchmark harness: `.venv/bin/python -m pytest bench/tests`."""
