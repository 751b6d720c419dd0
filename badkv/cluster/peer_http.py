"""A small HTTP/1.1 client for peer calls: one ``sendall`` per request, keep-alive, explicit deadlines.

The leader's CPU bounds replicated writes, and every replication round costs it one call per follower.
Through urllib3 a call cost about as much CPU as serving a client's request (its connection pool,
``http.client``'s response parsing through the ``email`` package, header dicts), measured with
``py-spy --gil`` on a leader under write load. Peer calls are all alike (a POST with a
msgpack body to a node of this cluster, answered with a Content-Length), so this client writes the
request in one piece and reads the status line, the headers and exactly Content-Length bytes.

What a failure means is decided here, as in transport.py: a connection that could not be made did
nothing (``TransportError``); once any byte of the request went out the outcome is unknown
(``TransportTimeout``). A connection idle for ``REUSE_WITHIN_SECONDS`` is not reused (the other node
may be closing it, see connections.py).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from badkv.cluster.connections import REUSE_WITHIN_SECONDS

MAX_HEAD_BYTES = 64 * 1024
IDLE_CONNECTIONS = 4  # kept per peer; more callers at once open more, and close them after
clock = time.monotonic  # (tests move time on)


class PeerHttpError(Exception):
    """The call failed; ``sent`` says whether any byte of it reached the socket."""

    def __init__(self, message: str, *, sent: bool, tls: bool = False):
        super().__init__(message)
        self.sent, self.tls = sent, tls


class Answer:
    """A response: status, headers (``get`` ignores case) and body."""

    __slots__ = ("status", "_headers", "data")

    def __init__(self, status: int, headers: dict[str, str], data: bytes):
        self.status, self._headers, self.data = status, headers, data

    @property
    def headers(self) -> "Answer":
        return self

    def get(self, name: str, default=None):
        return self._headers.get(name.lower(), default)


class _Connection:
    __slots__ = ("sock", "buffer", "answered_at")

    def __init__(self, sock):
        self.sock, self.buffer, self.answered_at = sock, bytearray(), clock()


class PeerHttp:
    """Keep-alive connections to one peer at ``host:port`` (TLS with ``context``)."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None = None):
        self.host, self.port, self.context = host, port, context
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._head = f"Host: {host}:{port}\r\n"

    def post(self, path: str, body: bytes, headers: dict, timeout: float) -> Answer:
        deadline = clock() + timeout
        connection = self._take() or self._connect(timeout)
        request = [f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n"]
        request.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        request.append("\r\n")
        try:
            connection.sock.settimeout(max(0.001, deadline - clock()))
            connection.sock.sendall("".join(request).encode("latin-1") + body)
            answer, keep = self._read_answer(connection, deadline)
        except (OSError, ValueError) as error:
            connection.sock.close()
            raise PeerHttpError(f"{error.__class__.__name__}: {error}", sent=True) from None
        if keep:
            connection.answered_at = clock()
            self._give_back(connection)
        else:
            connection.sock.close()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.sock.close()

    def _take(self) -> _Connection | None:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if clock() - connection.answered_at < REUSE_WITHIN_SECONDS:
                    return connection
                connection.sock.close()
        return None

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.sock.close()

    def _connect(self, timeout: float) -> _Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as error:
            raise PeerHttpError(f"cannot connect: {error.__class__.__name__}: {error}", sent=False) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as error:
                sock.close()
                raise PeerHttpError(f"TLS: {error}", sent=False, tls=True) from None
        return _Connection(sock)

    def _read_answer(self, connection: _Connection, deadline: float) -> tuple[Answer, bool]:
        buffer = connection.buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ValueError("the answer's head is too long")
            self._receive(connection, deadline)
            end = buffer.find(b"\r\n\r\n")
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        del buffer[:end + 4]
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
        status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ValueError("a chunked answer (peers answer with a Content-Length)")
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            self._receive(connection, deadline)
        data = bytes(buffer[:length])
        del buffer[:length]
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        return Answer(status, headers, data), keep

    @staticmethod
    def _receive(connection: _Connection, deadline: float) -> None:
        remaining = deadline - clock()
        if remaining <= 0:
            raise TimeoutError("the answer did not come in time")
        connection.sock.settimeout(remaining)
        chunk = connection.sock.recv(256 * 1024)
        if not chunk:
            raise ConnectionResetError("the other node closed the connection")
        connection.buffer += chunk
