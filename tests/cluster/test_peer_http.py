"""The peer calls' HTTP client against a real loopback server: keep-alive, what a failure means, freshness."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from badkv.cluster import peer_http
from badkv.cluster.peer_http import PeerHttp, PeerHttpError
from badkv.testing.proxy import free_port


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Handler.seen.append((self.client_address, self.path, body, self.headers.get("X-Test")))
        if self.path == "/slow":
            threading.Event().wait(1.0)
        answer = b"echo:" + body
        self.send_response(200 if self.path != "/refuse" else 409)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Badkv-Instance", "i-1")
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_calls_reuse_one_connection_and_read_status_headers_and_body(server):
    client = PeerHttp("127.0.0.1", server)
    first = client.post("/a", b"one", {"X-Test": "1"}, timeout=2)
    second = client.post("/b", b"two" * 10000, {}, timeout=2)
    assert (first.status, first.data, first.headers.get("x-badkv-instance")) == (200, b"echo:one", "i-1")
    assert second.data == b"echo:" + b"two" * 10000
    assert Handler.seen[0][1:] == ("/a", b"one", "1")
    assert Handler.seen[0][0] == Handler.seen[1][0]  # the same client port: one keep-alive connection
    client.close()


def test_an_answer_that_closes_is_not_reused(server):
    client = PeerHttp("127.0.0.1", server)
    assert client.post("/close", b"x", {}, timeout=2).status == 200
    client.post("/a", b"y", {}, timeout=2)
    assert Handler.seen[0][0] != Handler.seen[1][0]
    client.close()


def test_a_connection_idle_too_long_is_replaced(server, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(peer_http, "clock", lambda: now[0])
    client = PeerHttp("127.0.0.1", server)
    client.post("/a", b"1", {}, timeout=2)
    now[0] += peer_http.REUSE_WITHIN_SECONDS
    client.post("/a", b"2", {}, timeout=2)
    assert Handler.seen[0][0] != Handler.seen[1][0]
    client.close()


def test_a_refused_connection_was_never_sent():
    with pytest.raises(PeerHttpError) as failure:
        PeerHttp("127.0.0.1", free_port()).post("/a", b"x", {}, timeout=1)
    assert failure.value.sent is False


def test_no_answer_in_time_is_an_unknown_outcome(server):
    with pytest.raises(PeerHttpError) as failure:
        PeerHttp("127.0.0.1", server).post("/slow", b"x", {}, timeout=0.2)
    assert failure.value.sent is True


def test_a_peer_that_hangs_up_after_the_request_is_an_unknown_outcome():
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up():
        connection, _ = listener.accept()
        connection.recv(1024)
        connection.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    with pytest.raises(PeerHttpError) as failure:
        PeerHttp("127.0.0.1", listener.getsockname()[1]).post("/a", b"x", {}, timeout=2)
    thread.join()
    listener.close()
    assert failure.value.sent is True


def test_a_non_200_answer_is_returned_for_the_caller_to_judge(server):
    answer = PeerHttp("127.0.0.1", server).post("/refuse", b"x", {}, timeout=2)
    assert answer.status == 409 and answer.data == b"echo:x"
