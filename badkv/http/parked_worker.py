"""A gthread worker that holds waiting watches on its event loop instead of on request threads.

A view that must wait for a change raises ``parking.Parked`` (see ``parking.py``). The worker then
keeps the connection: its socket on the selector (to notice a client that leaves), its deadline in a
heap, and the watcher's ``wake`` pointed at a hand-back that any thread may call (the store calls it
with its lock held: it appends to a deque and writes one byte to the loop's pipe per batch of
wake-ups, however many watchers one applied batch wakes). The loop then serves the same request again
on a pool thread; the view, seeing ``parking.resumed()``, looks again and answers or parks again. At
the deadline, or when the worker stops, the park is marked final and the view answers with what there
is. An idle watcher costs a socket, a Flask-free ``Park`` and a watcher in the store: no thread.

Keep-alive works as for any request: the answer goes out on the connection through gunicorn's own
request handling, and the connection then goes back to the keep-alive set. A request pipelined behind
a parked one waits in the parser's buffer until the parked one is answered. TLS
connections park the same way (after the handshake they are sockets on the same selector; what a parked TLS connection receives is
decrypted, so a client's close_notify ends the park like a FIN does).

At start the worker raises its soft open-file limit to the hard limit and caps ``worker_connections``
(parked watchers count as connections) to what the limit allows, saying so in the log.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import resource
import selectors
import ssl
import time
from functools import partial

from badkv.http import parking
from badkv.http.lean_worker import LeanThreadWorker

PARKED = object()  # handle()'s result for a connection left parked
FD_RESERVE = 256  # descriptors kept for the log, the data dir, peer connections and the listeners
PIPELINED_BYTES = 65536  # read from a parked connection at most this much ahead (a pipelined request)


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return soft


class ParkingThreadWorker(LeanThreadWorker):
    """gthread (``lean_worker.py``), plus parked requests (long-polling watches) that hold no thread while
    they wait."""

    def init_process(self):
        self.parked: dict[object, parking.Park] = {}  # connection -> its park
        self._deadlines: list[tuple[float, int, object, parking.Park]] = []
        self._order = itertools.count()
        self._woken: collections.deque = collections.deque()
        self._wake_signalled = False
        self._fit_connections_to_open_file_limit()
        super().init_process()

    def _fit_connections_to_open_file_limit(self) -> None:
        before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        soft = raise_open_file_limit()
        if soft != before:
            self.log.info("raised the open-file soft limit from %d to %d (the hard limit)", before, soft)
        allowed = max(self.cfg.threads + 1, soft - FD_RESERVE)
        if allowed < self.worker_connections:  # (expected: worker_connections asks for as many as fit)
            self.log.info("holding at most %d connections, parked watches included: the open-file limit is %d",
                          allowed, soft)
            self.worker_connections = allowed
        self.max_keepalived = self.worker_connections - self.cfg.threads

    # ---- on pool threads ------------------------------------------------------------------------------
    def handle(self, conn):
        try:
            with parking.serving():
                return super().handle(conn)
        except parking.Parked as parked:
            conn.badkv_park = parked.park
            return PARKED

    def handle_request(self, req, conn):
        try:
            return super().handle_request(req, conn)
        except parking.Parked:
            conn.badkv_request = req  # served again, as it is, once the park ends
            raise

    def _resume(self, conn, park: parking.Park):
        """Serve a parked request again (its watcher woke, its deadline passed, or the worker stops)."""
        park.unwatch(park.watcher)  # (False if it woke: then it is registered no more)
        req = conn.badkv_request
        try:
            conn.sock.setblocking(True)
            with parking.serving(resumed=park):
                keep = self.handle_request(req, conn)
            return self._keepalive_after(conn, keep)
        except parking.Parked as parked:
            conn.badkv_park = parked.park
            return PARKED
        except (OSError, StopIteration) as error:  # the client left meanwhile: nothing to answer
            self.log.debug("parked request not answered: %s", error)
        except Exception as error:
            self.handle_error(req, conn.sock, conn.client, error)
        return False

    # ---- on the event loop ----------------------------------------------------------------------------
    def finish_request(self, conn, fs):
        if not fs.cancelled() and fs.exception() is None and fs.result() is PARKED:
            self._park(conn, conn.badkv_park)
        else:
            super().finish_request(conn, fs)

    def _park(self, conn, park: parking.Park) -> None:
        if not self.alive:
            park.final = True
            self._serve_again(conn, park)
            return
        conn.sock.setblocking(False)
        self.parked[conn] = park
        if len(self._deadlines) > 2 * len(self.parked) + 1024:  # entries of parks that ended by waking
            self._deadlines = [entry for entry in self._deadlines if self.parked.get(entry[2]) is entry[3]]
            heapq.heapify(self._deadlines)
        heapq.heappush(self._deadlines, (park.deadline, next(self._order), conn, park))
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._parked_readable, conn, park))
        park.watcher.wake = partial(self._hand_back, conn, park)
        if park.watcher.woken:  # woke before the wake above was in place
            self._hand_back(conn, park)

    def _hand_back(self, conn, park: parking.Park) -> None:
        """Any thread: the watcher woke; the loop serves the request again (one pipe byte per batch)."""
        self._woken.append((conn, park))
        if not self._wake_signalled:
            self._wake_signalled = True
            self.method_queue.defer(self._serve_woken)

    def _serve_woken(self) -> None:
        self._wake_signalled = False
        while self._woken:
            conn, park = self._woken.popleft()
            if self._unpark(conn, park):
                self._serve_again(conn, park)

    def _unpark(self, conn, park: parking.Park) -> bool:
        """Take the connection off the loop; False if it is not (or no longer) parked with ``park``."""
        if self.parked.get(conn) is not park:
            return False
        del self.parked[conn]
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass  # (not watched for reading: a pipelined request is waiting in it)
        return True

    def _serve_again(self, conn, park: parking.Park) -> None:
        future = self.tpool.submit(self._resume, conn, park)
        future.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def _parked_readable(self, conn, park: parking.Park, _sock) -> None:
        """The client sent more, or left. More (a request pipelined behind the watch) goes to the end of the
        parser's buffer, where gunicorn reads it once the watch has answered; past PIPELINED_BYTES the loop
        stops reading (TCP then holds the rest). Left: the socket is at its end, or, over TLS, the client
        closed its session (close_notify decrypts to the end, whatever the TLS version): the park ends."""
        try:
            data = conn.sock.recv(PIPELINED_BYTES)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:  # a reset, or a TLS error (ssl.SSLError is an OSError)
            data = b""
        if data:
            unreader = conn.parser.unreader
            unreader.unread(unreader.take_buffered() + data)
            if len(unreader.buf.getvalue()) >= PIPELINED_BYTES:
                self.poller.unregister(conn.sock)
            return
        if self._unpark(conn, park):
            self.tpool.submit(park.unwatch, park.watcher)
            self.nr_conns -= 1
            conn.close()

    def wait_for_and_dispatch_events(self, timeout):
        if self._deadlines:
            timeout = min(timeout, max(0.0, self._deadlines[0][0] - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        self._end_due_parks()

    def _end_due_parks(self) -> None:
        """Serve again, as final, the parks whose deadline passed (all of them once the worker stops)."""
        now = time.monotonic()
        while self._deadlines and (self._deadlines[0][0] <= now or not self.alive):
            _, _, conn, park = heapq.heappop(self._deadlines)
            if self._unpark(conn, park):
                park.final = True
                self._serve_again(conn, park)
