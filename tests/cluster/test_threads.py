"""Tests for badkv.cluster.threads: threads named by node, one stop deadline for all of them."""

import logging
import threading
import time
from types import SimpleNamespace

from badkv.cluster.threads import Threads


def node():
    return SimpleNamespace(name="n1", monotonic=time.monotonic)


def test_join_all_waits_for_ending_threads_and_names_the_ones_still_running(caplog, monkeypatch):
    threads, release, stuck = Threads(node()), threading.Event(), threading.Event()
    threads.spawn("quick", release.wait)
    for number in range(5):
        threads.spawn(f"stuck{number}", stuck.wait)
    release.set()
    timeouts = []
    join = threading.Thread.join
    monkeypatch.setattr(threading.Thread, "join", lambda self, timeout=None: (timeouts.append(timeout),
                                                                              join(self, timeout))[1])
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.threads"):
        threads.join_all(0.3)
    monkeypatch.undo()
    # One deadline for all: the joins' timeouts shrink towards it and add up to at most 0.3 s of waiting,
    # not 0.3 s per stuck thread.
    assert len(timeouts) == 6 and timeouts == sorted(timeouts, reverse=True)
    assert timeouts[0] <= 0.3 and sum(timeout for timeout in timeouts[1:]) <= 0.3
    assert "stopping without waiting for n1-stuck0, n1-stuck1" in caplog.text and "n1-quick" not in caplog.text
    stuck.set()

