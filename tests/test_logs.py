"""Tests for badkv/logs.py: the text and JSON line formats."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from badkv.logs import JsonFormatter, formatter


def record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("badkv.cluster.node", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_json_line_has_time_level_node_logger_and_message():
    line = JsonFormatter("n2").format(record("%s: lost the election\nfor term %d", "n2", 7))
    assert "\n" not in line
    body = json.loads(line)
    assert set(body) == {"time", "level", "node", "logger", "message"}
    assert (body["level"], body["node"], body["logger"]) == ("warning", "n2", "badkv.cluster.node")
    assert body["message"] == "n2: lost the election\nfor term 7"
    assert body["time"].endswith("Z") and body["time"][10] == "T"


def test_a_json_line_carries_the_exception_text():
    try:
        raise OSError("disk gone")
    except OSError:
        line = JsonFormatter("n1").format(record("fsync failed", exc_info=sys.exc_info()))
    body = json.loads(line)
    assert body["exception"].startswith("Traceback") and "OSError: disk gone" in body["exception"]


@pytest.mark.parametrize(("log_format", "parses"), [("json", True), ("text", False)])
def test_formatter_follows_the_log_format(log_format, parses):
    line = formatter(log_format, "n3").format(record("hello"))
    assert "n3" in line and "hello" in line
    try:
        json.loads(line)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed is parses
