"""How a node's log lines look: ``-log-format text`` (one readable line) or ``json`` (one object a line).

Both carry the node's name in every line, so the logs of several nodes can be
merged. A JSON line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``node``, ``logger`` and ``message``, and ``exception`` (the traceback's text)
when the line reports one; a log shipper needs no pattern to parse it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or traceback are escaped)."""

    def __init__(self, node: str):
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, timezone.utc)
        line = {"time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(), "node": self.node, "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def text_formatter(node: str) -> logging.Formatter:
    return logging.Formatter(f"%(asctime)s %(levelname)s [{node}] %(name)s: %(message)s")


def formatter(log_format: str, node: str) -> logging.Formatter:
    """The formatter of ``-log-format`` (text or json) for ``node``."""
    return JsonFormatter(node) if log_format == "json" else text_formatter(node)
