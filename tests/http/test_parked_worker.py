"""Tests for badkv/http/parked_worker.py's event-loop side, on a worker built without gunicorn's arbiter:
parking, the hand-back of woken watches (one pipe write per batch), deadlines, clients that leave, and
requests pipelined behind a parked one."""

from __future__ import annotations

import collections
import itertools
import resource
import selectors
import socket
import time
from types import SimpleNamespace

import pytest

from gunicorn.http.unreader import Unreader

from badkv.http import parked_worker, parking
from badkv.http.parked_worker import ParkingThreadWorker, raise_open_file_limit
from badkv.watchers import Watcher


class FakeQueue:
    def __init__(self):
        self.deferred = []

    def defer(self, callback, *args):
        self.deferred.append((callback, args))

    def run(self):
        while self.deferred:
            callback, args = self.deferred.pop(0)
            callback(*args)


class FakePool:
    def __init__(self):
        self.submitted = []

    def submit(self, call, *args):
        self.submitted.append((call, args))
        return SimpleNamespace(add_done_callback=lambda callback: None)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.closed = False
        self.parser = SimpleNamespace(unreader=Unreader())

    def close(self):
        self.closed = True
        self.sock.close()


@pytest.fixture
def loop():
    """A worker with only what its event-loop side uses, and a connection whose client end is ``theirs``."""
    worker = ParkingThreadWorker.__new__(ParkingThreadWorker)
    worker.parked, worker._deadlines, worker._order = {}, [], itertools.count()
    worker._woken, worker._wake_signalled = collections.deque(), False
    worker.poller, worker.method_queue, worker.tpool = selectors.DefaultSelector(), FakeQueue(), FakePool()
    worker.alive, worker.nr_conns = True, 1
    worker.log = SimpleNamespace(debug=lambda *args: None)
    ours, theirs = socket.socketpair()
    yield worker, Conn(ours), theirs
    worker.poller.close()
    ours.close(), theirs.close()


def park_of(deadline_in: float = 60.0, woken: bool = False) -> parking.Park:
    watcher = Watcher("t")
    watcher.woken = woken
    return parking.Park(watcher, time.monotonic() + deadline_in, lambda watcher: True)


def served_again(worker) -> list:
    return [args for call, args in worker.tpool.submitted if call == worker._resume]


def test_a_parked_connection_holds_no_thread_until_its_watcher_wakes(loop):
    worker, conn, _ = loop
    park = park_of()
    worker._park(conn, park)
    assert worker.parked == {conn: park} and worker.tpool.submitted == []
    park.watcher.fire()
    worker.method_queue.run()
    assert served_again(worker) == [(conn, park)] and worker.parked == {}


def test_many_wake_ups_at_once_write_the_pipe_once(loop):
    worker, conn, _ = loop
    parks = [park_of() for _ in range(3)]
    conns = [conn] + [Conn(socket.socketpair()[0]) for _ in parks[1:]]
    for each, park in zip(conns, parks):
        worker._park(each, park)
    for park in parks:
        park.watcher.fire()
    assert len(worker.method_queue.deferred) == 1
    worker.method_queue.run()
    assert len(served_again(worker)) == 3 and not worker._wake_signalled


def test_a_watcher_that_woke_before_the_park_is_served_at_once_and_only_once(loop):
    worker, conn, _ = loop
    park = park_of(woken=True)
    worker._park(conn, park)
    park.watcher.wake()  # (the store's fire can race the park: a second hand-back is ignored)
    worker.method_queue.run()
    assert served_again(worker) == [(conn, park)]


def test_a_park_past_its_deadline_is_served_again_as_final(loop):
    worker, conn, _ = loop
    park = park_of(deadline_in=-1)
    worker._park(conn, park)
    worker._end_due_parks()
    assert park.final and served_again(worker) == [(conn, park)]


def test_a_stopping_worker_serves_every_park_again_as_final(loop):
    worker, conn, _ = loop
    park = park_of(deadline_in=60)
    worker._park(conn, park)
    worker.alive = False
    worker._end_due_parks()
    assert park.final and served_again(worker) == [(conn, park)]


def test_a_client_that_leaves_is_closed_and_its_watcher_unregistered(loop):
    worker, conn, theirs = loop
    park = park_of()
    worker._park(conn, park)
    theirs.close()
    worker._parked_readable(conn, park, conn.sock)
    assert conn.closed and worker.nr_conns == 0 and worker.parked == {}
    assert worker.tpool.submitted == [(park.unwatch, (park.watcher,))]


def test_a_request_pipelined_behind_a_parked_one_waits_in_the_parsers_buffer(loop):
    worker, conn, theirs = loop
    conn.parser.unreader.unread(b"GET /a")  # (what the parser had already read ahead)
    park = park_of()
    worker._park(conn, park)
    theirs.sendall(b" HTTP/1.1\r\n\r\n")
    worker._parked_readable(conn, park, conn.sock)
    assert not conn.closed and worker.parked == {conn: park}
    assert conn.parser.unreader.buf.getvalue() == b"GET /a HTTP/1.1\r\n\r\n", "in order, after what was there"


def test_a_parked_connection_stops_reading_ahead_past_the_bound(loop):
    worker, conn, theirs = loop
    park = park_of()
    worker._park(conn, park)
    theirs.sendall(b"x" * parked_worker.PIPELINED_BYTES)
    while conn.sock in {key.fileobj for key in worker.poller.get_map().values()}:
        worker._parked_readable(conn, park, conn.sock)
    assert len(conn.parser.unreader.buf.getvalue()) >= parked_worker.PIPELINED_BYTES
    assert worker.parked == {conn: park}, "still parked: it answers, then the parser reads on"


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = raise_open_file_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft == hard or hard == resource.RLIM_INFINITY
