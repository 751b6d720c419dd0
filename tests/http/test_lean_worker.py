"""Tests for badkv/http/lean_worker.py: a response sent with one write puts the same bytes on the wire as
gunicorn's own, a body read to its end is not drained again, and the heartbeat file is touched at most
once per interval."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from badkv.http import lean_worker
from badkv.http.lean_worker import HEARTBEAT_EVERY, LeanThreadWorker, OneWriteResponse, body_read_to_its_end


class RecordingSocket:
    def __init__(self):
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch):
    """The Date header, fixed: two responses built a second apart must still compare equal."""
    monkeypatch.setattr(util, "http_date", lambda *args: "Tue, 01 Dec 2026 12:00:00 GMT")


def serve(response_class, method: str, status: str, headers: list, pieces: list[bytes]) -> list[bytes]:
    """What ``response_class`` sends for one response built as gthread builds it; one item per send."""
    sock = RecordingSocket()
    request = SimpleNamespace(version=(1, 1), method=method, should_close=lambda: False)
    response = response_class(request, sock, SimpleNamespace(protocol="http"))
    response.start_response(status, headers)
    for piece in pieces:
        response.write(piece)
    response.close()
    return sock.sends


def test_a_whole_body_goes_out_with_its_headers_in_one_send_and_the_same_bytes():
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", "5"), ("ETag", '"7"')]
    ours = serve(OneWriteResponse, "GET", "200 OK", headers, [b"hello"])
    theirs = serve(wsgi.Response, "GET", "200 OK", headers, [b"hello"])
    assert len(ours) == 1
    assert len(theirs) == 2  # (what the one send saves)
    assert ours[0] == b"".join(theirs)
    assert ours[0].startswith(b"HTTP/1.1 200 OK\r\n") and ours[0].endswith(b"\r\n\r\nhello")


@pytest.mark.parametrize("method, status, headers, pieces", [
    ("HEAD", "200 OK", [("Content-Length", "5")], [b"hello"]),  # no body on the wire
    ("GET", "204 No Content", [], [b""]),
    ("GET", "200 OK", [("Content-Length", "10")], [b"hello", b"world"]),  # a body in two pieces
    ("GET", "200 OK", [("Content-Type", "text/plain")], [b"hello", b"world"]),  # chunked: no length
    ("GET", "200 OK", [("Content-Length", "3")], [b"hello"]),  # longer than its length: cut
])
def test_every_other_response_is_gunicorns_own(method, status, headers, pieces):
    assert (b"".join(serve(OneWriteResponse, method, status, headers, pieces))
            == b"".join(serve(wsgi.Response, method, status, headers, pieces)))


def test_the_heartbeat_file_is_touched_once_per_interval(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(lean_worker.time, "monotonic", lambda: now[0])
    touches = []
    worker = LeanThreadWorker.__new__(LeanThreadWorker)
    worker.tmp = SimpleNamespace(notify=lambda: touches.append(now[0]))
    worker._heartbeat_at = float("-inf")
    for _ in range(50):  # one busy second of loop turns
        worker.notify()
        now[0] += HEARTBEAT_EVERY / 100
    assert touches == [100.0]
    now[0] = 100.0 + HEARTBEAT_EVERY
    worker.notify()
    assert touches == [100.0, 100.0 + HEARTBEAT_EVERY]


def parsed(raw: bytes):
    """The first request gunicorn's parser reads from ``raw``."""
    return next(RequestParser(Config(), [raw], ("127.0.0.1", 5000)))


def test_a_get_has_no_body_left_to_drain():
    assert body_read_to_its_end(parsed(b"GET /api/v1/keys/t/k HTTP/1.1\r\nHost: x\r\n\r\n"))


def test_a_body_is_left_to_drain_until_it_was_read_to_its_end():
    request = parsed(b"POST /api/v1/keys/t/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert not body_read_to_its_end(request)  # a view that answered without reading it
    assert request.body.read(10) == b"hello"
    assert body_read_to_its_end(request)


def test_a_chunked_body_is_always_drained_by_gunicorn():
    request = parsed(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert request.body.read(100) == b"hello"
    assert not body_read_to_its_end(request)
