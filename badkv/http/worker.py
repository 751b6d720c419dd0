"""A gthread worker with a separate thread pool for peer (``/cluster/v1``) requests.

Why: a follower forwards client writes to the leader and its request thread
waits for the answer; the leader answers only once the follower has taken the
entry through ``POST /cluster/v1/append``. With one shared pool, enough
concurrent forwarded writes occupy every thread of the follower, the append
queues behind them, and the cluster stalls until the follower is dropped from
the in-sync set. Peer requests therefore get their own small pool: the worker
peeks at the first bytes of a connection's first request (without consuming
them) and serves every request of a connection that opened with
``POST /cluster/`` from that pool. Peers keep separate connections for these
calls (see cluster/transport.py), so deciding once per connection costs one peek per
connection, not per request.

With TLS the first bytes are a handshake, not a request line. A new TLS
connection is then handshaken in a pool of its own, within an overall deadline
(a caller that sends its handshake a byte at a time is cut off, not waited
for), so neither a slow handshake nor many of them hold a thread that serves
peers' requests. A connection that presented a client certificate verified
against the CA, as every peer does, is served from the peer pool; any other
goes to the shared pool.

On SIGTERM a leader first hands leadership to its most caught-up follower and
only then stops serving, so a rolling restart never waits for an election
timeout. Waiting watches are parked on the event loop (``parked_worker.py``), and an answer goes out
with one send (``lean_worker.py``). Everything else is gunicorn's gthread worker.
"""

from __future__ import annotations

import logging
import select
import selectors
import socket
import ssl
import threading
import time
from concurrent import futures
from functools import partial

from gunicorn import http as gunicorn_http
from gunicorn import sock as gunicorn_sock
from gunicorn.workers.gthread import ThreadWorker

from badkv.http.parked_worker import ParkingThreadWorker

PEER_REQUEST_PREFIX = b"POST /cluster/"
PEER_THREADS = 8
# A peer thread stays with its connection this long after an answer: the leader's next append comes within
# a heartbeat interval (100 ms by default), and serving it straight away saves two thread hand-offs.
PEER_LINGER = 0.25
PEER_LINGER_SLICE = 0.025
HANDSHAKE_THREADS = 4
# A peer on loopback or a LAN handshakes in milliseconds; this only ends callers that stall.
HANDSHAKE_TIMEOUT = 2.0

logger = logging.getLogger(__name__)


# What OpenSSL's reason codes mean for someone reading this node's log.
TLS_REFUSALS = (
    ("HTTP_REQUEST", "plain HTTP sent to this HTTPS port (use https:// and the CA)"),
    ("certificate has expired", "the caller's certificate has expired"),
    ("CERTIFICATE_VERIFY_FAILED", "the caller's certificate is not signed by this cluster's CA"),
    ("UNKNOWN_CA", "the caller does not trust this node's certificate (it verifies against another CA)"),
    ("BAD_CERTIFICATE", "the caller refused this node's certificate (wrong host name or address, or another CA)"),
    ("CERTIFICATE_UNKNOWN", "the caller refused this node's certificate (wrong host name or address, or another CA)"),
    ("CERTIFICATE_EXPIRED", "the caller says this node's certificate has expired"),
)


def tls_refusal_reason(error: ssl.SSLError) -> str:
    text = str(error)
    return next((meaning for marker, meaning in TLS_REFUSALS if marker in text), "TLS handshake failed")


class TlsThreadWorker(ParkingThreadWorker):
    """gthread with parked watches (``parked_worker.py``), and one clear log line naming why a TLS connection
    was refused."""

    @property
    def node_name(self) -> str:
        return self.cfg.proc_name.removeprefix("badkv-")

    def handle_error(self, req, client, addr, exc):
        if not isinstance(exc, ssl.SSLError):
            return super().handle_error(req, client, addr, exc)
        # gunicorn's own line ("Invalid request from ip=...") names neither the node nor the cause.
        self.log.warning("%s: refused a TLS connection from %s: %s (%s)", self.node_name, (addr or ("?",))[0],
                         tls_refusal_reason(exc), exc)
        try:
            client.close()  # nothing can be answered on a connection whose handshake failed
        except OSError:
            pass


class PeerAwareThreadWorker(TlsThreadWorker):
    """gthread, plus a reserved pool so replication never waits behind client requests."""

    def init_process(self):
        self.peer_pool = futures.ThreadPoolExecutor(max_workers=PEER_THREADS, thread_name_prefix="peer")
        self.peer_queue_lock = threading.Lock()
        self.peer_queued = 0  # peer connections submitted to the pool and not yet picked up by a thread
        self.handshake_pool = futures.ThreadPoolExecutor(max_workers=HANDSHAKE_THREADS, thread_name_prefix="handshake")
        super().init_process()

    def enqueue_req(self, conn):
        kind = getattr(conn, "badkv_kind", None)
        if kind is None:
            kind = self._request_kind(conn)
            if kind not in ("waiting", "tls"):
                conn.badkv_kind = kind
        if kind == "waiting":
            self._wait_for_first_bytes(conn)
        elif kind == "tls":
            future = self.handshake_pool.submit(self._handshake_then_route, conn)
            future.add_done_callback(lambda done: self.method_queue.defer(self._after_handshake, conn, done))
        elif kind == "peer":
            self._serve_peer(conn)
        else:
            super().enqueue_req(conn)

    def _serve_peer(self, conn) -> None:
        with self.peer_queue_lock:
            self.peer_queued += 1
        future = self.peer_pool.submit(self._handle_peer_calls, conn)
        future.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def _handle_peer_calls(self, conn):
        """In the peer pool: serve the connection's requests one after another while they keep coming.

        gthread hands a keep-alive connection back to its event loop after every request, and the loop
        hands the next request to a pool thread again: two thread wake-ups per peer call, which cost more
        than the call's work on a busy two-core machine (``bench/trace.py``). A peer thread waits instead,
        up to ``PEER_LINGER``, for the connection's next request; a quiet connection goes back to the
        loop as before, and so does one whose thread another connection is waiting for (a leader of
        seven takes proposals from six followers, more connections than the pool has threads)."""
        with self.peer_queue_lock:
            self.peer_queued -= 1
        while True:
            keep = self.handle(conn)
            if keep is not True or not self.alive:
                return keep
            # (Bytes already read: gunicorn's own buffer, or TLS records the ssl module decrypted.)
            buffered = conn.parser.unreader.buf.getvalue() or getattr(conn.sock, "pending", lambda: 0)()
            if not buffered and not self._next_request_soon(conn):
                return keep

    def _next_request_soon(self, conn) -> bool:
        """Whether the connection's next request arrives within ``PEER_LINGER`` while no other connection
        waits for a peer thread (checked every ``PEER_LINGER_SLICE``)."""
        waited = 0.0
        while waited < PEER_LINGER and self.peer_queued == 0 and self.alive:
            try:
                readable, _, _ = select.select([conn.sock], [], [], PEER_LINGER_SLICE)
            except (OSError, ValueError):
                return False
            if readable:
                return True
            waited += PEER_LINGER_SLICE
        return False

    def _request_kind(self, conn) -> str:
        """peer, public, tls (decided after the handshake), or waiting (nothing has arrived yet)."""
        try:
            head = conn.sock.recv(len(PEER_REQUEST_PREFIX), socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return "waiting" if conn.parser is None and not getattr(conn, "data_ready", False) else "public"
        except OSError:
            return "public"  # let gunicorn's own handling see and close the broken socket
        if self.cfg.is_ssl and not conn.initialized:
            return "tls" if head else "public"
        return "peer" if head.startswith(PEER_REQUEST_PREFIX[:len(head)]) and head else "public"

    def _handshake_then_route(self, conn):
        """In the handshake pool: the TLS handshake, then which pool serves the connection."""
        try:
            self._tls_handshake(conn)
        except ssl.SSLEOFError:
            return False  # closed before the handshake ended, as TCP health checks do: nothing to say
        except ssl.SSLError as error:
            self.handle_error(None, conn.sock, conn.client, error)
            return False
        except OSError as error:  # a timeout or a reset: nothing to answer
            self.log.info("%s: TLS handshake with %s failed: %s", self.node_name,
                          conn.client[0] if conn.client else "?", error or error.__class__.__name__)
            return False
        conn.badkv_kind = "peer" if conn.sock.getpeercert() else "public"
        return conn.badkv_kind

    def _tls_handshake(self, conn) -> None:
        """What gunicorn's connection ``init`` does for HTTP/1.1 over TLS, within ``HANDSHAKE_TIMEOUT`` in all.

        The socket is non-blocking meanwhile: a timeout per read would let a caller that sends a byte now
        and then hold the thread for ever."""
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        conn.sock.setblocking(False)
        # Wrapping detaches the plain socket: from here on, closing the connection must close ``tls``.
        # (gunicorn wraps with do_handshake_on_connect off, its default and badkv's setting.)
        conn.sock = tls = gunicorn_sock.ssl_wrap_socket(conn.sock, self.cfg)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                wanted = ([tls], [])
            except ssl.SSLWantWriteError:
                wanted = ([], [tls])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not any(select.select(*wanted, [], remaining)[:2]):
                raise TimeoutError(f"the handshake took longer than {HANDSHAKE_TIMEOUT:g}s")
        tls.setblocking(True)
        conn.initialized = True
        conn.parser = gunicorn_http.get_parser(self.cfg, tls, conn.client)

    def _after_handshake(self, conn, done) -> None:
        """On the event loop: a peer's connection goes to the peer pool, a public one to the shared pool, a
        failed one is closed."""
        routed = None if done.cancelled() or done.exception() is not None else done.result()
        if routed == "peer":
            self._serve_peer(conn)
        elif routed == "public":
            ThreadWorker.enqueue_req(self, conn)
        else:
            self.finish_request(conn, done)

    def _wait_for_first_bytes(self, conn) -> None:
        """Park a new connection on the poller until its request arrives (gthread's pending list)."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + max(self.cfg.keepalive, 1)
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def handle_exit(self, sig, frame):
        """SIGTERM: a leader hands over first (in a thread: this is the event loop's thread), then stops."""
        node = getattr(self.wsgi, "extensions", {}).get("badkv_node")
        if getattr(self, "badkv_handing_over", False):
            return  # (the master passes SIGTERM on too): the hand-over ends in the real exit
        if self.alive and node is not None and node.is_leader:
            self.badkv_handing_over = True
            threading.Thread(target=self._hand_over_then_exit, args=(node, sig, frame), name="hand-over",
                             daemon=True).start()
            return
        super().handle_exit(sig, frame)

    def _hand_over_then_exit(self, node, sig, frame) -> None:
        try:
            node.hand_over_leadership()
        except Exception:
            logger.exception("%s: handing leadership over failed; stopping anyway", node.name)
        finally:
            self.method_queue.defer(super(PeerAwareThreadWorker, self).handle_exit, sig, frame)

    def handle_quit(self, sig, frame):
        self._shut_pools()
        super().handle_quit(sig, frame)

    def run(self):
        try:
            super().run()
        finally:
            self._shut_pools()

    def _shut_pools(self) -> None:
        self.peer_pool.shutdown(wait=False)
        self.handshake_pool.shutdown(wait=False)

