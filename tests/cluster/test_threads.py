"""Tests for badkv.cluster.threads: threads named by node, one stop deadline for all of them."""

import logging
import threading
import time
from types import SimpleNamespace

from badkv.cluster.threads import Threads


def node():
    return SimpleNamespace(name="n1", monotonic=time.monotonic)


def test_join_all_waits_for_ending_threads_and_names_the_ones_still_running(caplog):
    threads, release, stuck = Threads(node()), threading.Event(), threading.Event()
    threads.spawn("quick", release.wait)
    for number in range(5):
        threads.spawn(f"stuck{number}", stuck.wait)
    release.set()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.threads"):
        threads.join_all(0.3)
    assert time.monotonic() - started < 1.2  # one deadline for all (five stuck threads at 0.3 s each: 1.5 s)
    assert "stopping without waiting for n1-stuck0, n1-stuck1" in caplog.text and "n1-quick" not in caplog.text
    stuck.set()

