"""gthread with fewer system calls per request: one send per response, and a heartbeat once a second.

Every system call a request thread makes lets go of the GIL, and under load each let-go is a hand-off
to another thread and back. Counted with ``strace -f -c`` on a single in-memory node (200 sequential
GETs of a 10-byte value): stock gthread makes about 41 system calls per request, 23 of them futex calls
(the GIL and the thread pool's hand-offs). Two of the 41 are avoidable:

- gunicorn sends a response's status line and headers with one ``sendall`` and its body with another.
  ``OneWriteResponse`` sends both with one when the body comes as one piece of its Content-Length,
  which is how every badkv view answers. With it the same count was 28 system calls per request and
  10 futex calls: one send fewer also spares the hand-offs around it, and the client (or the leader's
  replicator reading a follower's answer) wakes once, for the whole answer.
- gthread's loop touches its heartbeat file (``utimensat``) on every turn, about twice per request
  under load. The arbiter only needs a touch within ``timeout`` (30 s for badkv), so it is touched at
  most once per ``HEARTBEAT_EVERY``.
"""

from __future__ import annotations

import time

from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker

HEARTBEAT_EVERY = 1.0  # seconds; well within any timeout gunicorn accepts here (badkv sets 30)


class OneWriteResponse(wsgi.Response):
    """gunicorn's response, sending the head and a body that arrives whole in one ``sendall``.

    Anything else (a HEAD request or a status without a body, chunked framing, a body in several
    pieces or of another length than its Content-Length) is gunicorn's own path, unchanged."""

    def write(self, arg):
        if (self.headers_sent or self.chunked or self._omits_body or type(arg) is not bytes
                or self.response_length is None or len(arg) != self.response_length):
            return super().write(arg)
        head = self.default_headers()
        head.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        head.append("\r\n")
        self.sock.sendall("".join(head).encode("latin-1") + arg)
        self.headers_sent = True
        self.sent = len(arg)
        return None


class LeanThreadWorker(ThreadWorker):
    """gthread with ``OneWriteResponse`` and a heartbeat at most once per ``HEARTBEAT_EVERY``."""

    def init_process(self):
        self._heartbeat_at = float("-inf")
        # gthread builds every response through ``wsgi.create``, which takes the class from the module's
        # ``Response`` unless told otherwise; this process serves only badkv, so it is set once, here.
        wsgi.Response = OneWriteResponse
        super().init_process()

    def notify(self):
        now = time.monotonic()
        if now - self._heartbeat_at >= HEARTBEAT_EVERY:
            self._heartbeat_at = now
            super().notify()
