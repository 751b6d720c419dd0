"""gthread with fewer system calls per request: one send per response, no drain of a body already
read, and a heartbeat once a second.

Every system call a request thread makes lets go of the GIL, and under load each let-go can be a
hand-off to another thread and back (a futex call or two). Counted with ``strace -f -c`` on a single
in-memory node, 200 sequential GETs of a 10-byte value on one connection: stock gthread makes 18 system
calls per request besides futex calls (2 sendto, 5 ioctl, 2 utimensat, 2 epoll_wait, 2 epoll_ctl, 2
getppid, a recvfrom, and a write and a read on the loop's wake-up pipe); this worker makes 13. The futex
count depends on timing; in one pair of runs it was 23 per request for stock gthread and 10 with the
single send alone. The five saved calls:

- gunicorn sends a response's status line and headers with one ``sendall`` and its body with another.
  ``OneWriteResponse`` sends both with one when the body comes as one piece of its Content-Length,
  which is how every badkv view answers: one sendto fewer, and the client (or the leader's replicator
  reading a follower's answer) wakes once, for the whole answer.
- Before it keeps a connection alive, gthread drains what is left of the request's body, under a
  deadline: two ``settimeout`` calls (``ioctl``) and a read of nothing, even after a GET, which has no
  body, or a POST whose body the view read whole. ``LeanThreadWorker`` keeps the connection at once
  when the body's declared length has been read to its end: two ioctl fewer.
- gthread's loop touches its heartbeat file (``utimensat``) on every turn, twice per request in the
  count above. The arbiter only needs a touch within ``timeout`` (30 s for badkv), so it is touched
  at most once per ``HEARTBEAT_EVERY``: two utimensat fewer.
"""

from __future__ import annotations

import time

from gunicorn.http import wsgi
from gunicorn.http.body import LengthReader
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
    """gthread with ``OneWriteResponse``, no drain of a body read to its end, and a heartbeat at most once
    per ``HEARTBEAT_EVERY``."""

    def init_process(self):
        self._heartbeat_at = float("-inf")
        # gthread builds every response through ``wsgi.create``, which takes the class from the module's
        # ``Response`` unless told otherwise; this process serves only badkv, so it is set once, here.
        wsgi.Response = OneWriteResponse
        super().init_process()

    def _keepalive_after(self, conn, keepalive):
        if keepalive and body_read_to_its_end(conn.parser.mesg):
            return True  # nothing of this request is left on the socket to drain
        return super()._keepalive_after(conn, keepalive)

    def notify(self):
        now = time.monotonic()
        if now - self._heartbeat_at >= HEARTBEAT_EVERY:
            self._heartbeat_at = now
            super().notify()


def body_read_to_its_end(message) -> bool:
    """Whether every byte of ``message``'s body has left the socket: it declared a length (none, for a
    GET, is a length of 0), that many bytes were taken from the socket (what the view has not read of
    them yet waits in the body's own buffer, gone with the request), and reading did not fail. A
    chunked body, or one whose end is the connection's, is drained by gunicorn as before."""
    body = getattr(message, "body", None)
    reader = getattr(body, "reader", None)
    return type(reader) is LengthReader and reader.length == 0 and getattr(body, "failed", True) is False
