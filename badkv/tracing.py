"""Timestamps along a request's path, for finding where its time goes (off unless ``BADKV_TRACE`` is set).

``BADKV_TRACE=DIR`` makes every node process append lines ``<monotonic ns> <node> <thread> <event>`` to
``DIR/<pid>.trace``. CLOCK_MONOTONIC is one clock for every process on a machine, so the files of a local
cluster merge into one timeline: ``bench/trace.py`` does that for one client's sequential requests and
tells how long each step of a write or a read took. When tracing is off, ``stamp`` is a function that
does nothing (one call, no lookup of settings on the hot path).
"""

from __future__ import annotations

import os
import threading
import time

_DIR = os.environ.get("BADKV_TRACE", "")
_lock = threading.Lock()
_files: dict[int, object] = {}
node_name = "-"


def _file():
    pid = os.getpid()  # a forked worker writes its own file
    handle = _files.get(pid)
    if handle is None:
        handle = _files[pid] = open(os.path.join(_DIR, f"{pid}.trace"), "a", buffering=1)
    return handle


def _stamp(event: str) -> None:
    now = time.monotonic_ns()
    line = f"{now} {node_name} {threading.get_ident()} {event}\n"
    with _lock:
        _file().write(line)


def _off(event: str) -> None:
    return None


enabled = bool(_DIR)
stamp = _stamp if enabled else _off
