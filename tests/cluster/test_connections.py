"""Keep-alive connections are reused while fresh and replaced once idle for too long."""

from __future__ import annotations

import http.server
import threading

import pytest

from badkv.cluster import connections
from badkv.cluster.transport import new_session


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    connections_seen: set = set()

    def do_GET(self):
        Handler.connections_seen.add(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.connections_seen = set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("idle, connections_used", [(0.5, 1), (connections.REUSE_WITHIN_SECONDS, 2)])
def test_a_connection_idle_too_long_is_not_reused(server, monkeypatch, idle, connections_used):
    now = [1000.0]
    monkeypatch.setattr(connections, "clock", lambda: now[0])
    session = new_session(pool_size=1)
    assert session.get(server + "/a", timeout=5).text == "ok"
    now[0] += idle
    assert session.get(server + "/b", timeout=5).text == "ok"
    assert len(Handler.connections_seen) == connections_used
    session.close()
