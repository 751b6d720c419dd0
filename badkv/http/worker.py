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

On SIGTERM a leader first hands leadership to its most caught-up follower and
only then stops serving, so a rolling restart never waits for an election
timeout. Everything else is gunicorn's gthread worker.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from concurrent import futures
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

PEER_REQUEST_PREFIX = b"POST /cluster/"
PEER_THREADS = 4

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


class TlsThreadWorker(ThreadWorker):
    """gthread, with one clear log line naming why a TLS connection was refused."""

    def handle_error(self, req, client, addr, exc):
        if not isinstance(exc, ssl.SSLError):
            return super().handle_error(req, client, addr, exc)
        # gunicorn's own line ("Invalid request from ip=...") names neither the node nor the cause.
        self.log.warning("%s: refused a TLS connection from %s: %s (%s)", self.cfg.proc_name.removeprefix("badkv-"),
                         (addr or ("?",))[0], tls_refusal_reason(exc), exc)
        try:
            client.close()  # nothing can be answered on a connection whose handshake failed
        except OSError:
            pass


class PeerAwareThreadWorker(TlsThreadWorker):
    """gthread, plus a reserved pool so replication never waits behind client requests."""

    def init_process(self):
        self.peer_pool = futures.ThreadPoolExecutor(max_workers=PEER_THREADS, thread_name_prefix="peer")
        super().init_process()

    def enqueue_req(self, conn):
        kind = getattr(conn, "badkv_kind", None)
        if kind is None:
            kind = self._request_kind(conn)
            if kind != "waiting":
                conn.badkv_kind = kind
        if kind == "waiting":
            self._wait_for_first_bytes(conn)
        elif kind == "peer":
            future = self.peer_pool.submit(self.handle, conn)
            future.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))
        else:
            super().enqueue_req(conn)

    @staticmethod
    def _request_kind(conn) -> str:
        """peer, public, or waiting (a new connection whose first request has not arrived yet)."""
        try:
            head = conn.sock.recv(len(PEER_REQUEST_PREFIX), socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return "waiting" if conn.parser is None and not getattr(conn, "data_ready", False) else "public"
        except OSError:
            return "public"  # let gunicorn's own handling see and close the broken socket
        return "peer" if head.startswith(PEER_REQUEST_PREFIX[:len(head)]) and head else "public"

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
        self.peer_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def run(self):
        try:
            super().run()
        finally:
            self.peer_pool.shutdown(wait=False)

