"""A peer thread waits on its connection for the next call, but not while another connection needs a thread."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

from badkv.http import worker
from badkv.http.worker import PeerAwareThreadWorker


def lingering(queued=0, alive=True):
    return SimpleNamespace(peer_queued=queued, alive=alive)


def test_the_next_request_is_served_by_the_same_thread_when_it_comes_soon():
    ours, theirs = socket.socketpair()
    threading.Timer(0.05, lambda: theirs.sendall(b"POST /cluster/v1/append")).start()
    started = time.monotonic()
    assert PeerAwareThreadWorker._next_request_soon(lingering(), SimpleNamespace(sock=ours))
    assert time.monotonic() - started < worker.PEER_LINGER
    ours.close(), theirs.close()


def test_a_quiet_connection_goes_back_to_the_event_loop_after_the_linger():
    ours, theirs = socket.socketpair()
    started = time.monotonic()
    assert not PeerAwareThreadWorker._next_request_soon(lingering(), SimpleNamespace(sock=ours))
    assert time.monotonic() - started >= worker.PEER_LINGER - worker.PEER_LINGER_SLICE
    ours.close(), theirs.close()


def test_no_lingering_while_another_peer_connection_waits_for_a_thread():
    ours, theirs = socket.socketpair()
    started = time.monotonic()
    assert not PeerAwareThreadWorker._next_request_soon(lingering(queued=1), SimpleNamespace(sock=ours))
    assert time.monotonic() - started < worker.PEER_LINGER_SLICE
    ours.close(), theirs.close()
