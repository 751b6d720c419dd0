"""Watches on real processes: a watcher on a follower sees a write made on the leader, and parked watches
(more than the node has request threads, over plain HTTP and over TLS) hold no thread: other requests are
still answered, and one write wakes every watch, each on a connection that then serves its next request (a
request pipelined behind a watch too, in order); a watch whose client leaves is unregistered."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest

from badkv.client import Client
from badkv.testing.processes import LocalCluster, NodeProcess, free_port

pytestmark = pytest.mark.process

THREADS = 2
PARKED = 3 * THREADS + 2  # more watches than request threads
FAST = ["-in-memory", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
        "-sync-interval", "1", "-peer-timeout", "0.5", "-threads", str(THREADS)]
BOUND = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(3, tmp_path_factory.mktemp("watch"), extra_args=FAST) as running:
        running.wait_ready()
        yield running


def head_of(client: Client, tenant: str) -> int:
    return client.take(2 ** 63 - 1, limit=1, tenant=tenant)["revision"] + 1


def test_a_watcher_on_a_follower_sees_a_write_made_on_the_leader(cluster):
    follower, leader = Client(cluster.followers[0].url), Client(cluster.leader.url)
    cursor, answer = head_of(follower, "w1"), {}
    watching = threading.Thread(target=lambda: answer.update(follower.take(cursor, tenant="w1", wait=30)))
    watching.start()
    written = leader.put("w1", "k", b"from the leader")
    watching.join(BOUND)
    assert not watching.is_alive(), "the follower's watch did not answer once the write was applied there"
    assert [(r["name"], r["revision"]) for r in answer["records"]] == [("k", written["revision"])]


class RawWatch:
    """One keep-alive connection with a watch request sent on it and not yet answered."""

    def __init__(self, port: int, path: str, context: ssl.SSLContext | None = None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
        self.file = self.sock.makefile("rb")
        self.send(path)

    def send(self, path: str) -> None:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def answer(self) -> tuple[int, dict, dict]:
        status = int(self.file.readline().split()[1])
        headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, json.loads(self.file.read(int(headers["content-length"])))

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def close_notify(self) -> None:
        """End the TLS session (the node may close the socket without answering in kind)."""
        try:
            self.sock = self.sock.unwrap()
        except (OSError, ssl.SSLError):
            pass


def check_parked_watches_hold_no_thread(url: str, port: int, context=None, verify=None) -> None:
    client = Client(url, ca_file=verify)
    cursor = head_of(client, "parked")
    watches = [RawWatch(port, f"/api/v1/take/{cursor}?tenant=parked&wait=60", context) for _ in range(PARKED)]
    try:
        started = time.monotonic()
        client.put("other", "k", b"x")  # a write, and a read, while every watch waits
        assert client.get("other", "k").value == b"x"
        assert time.monotonic() - started < BOUND
        written = client.put("parked", "k", b"wake")["revision"]
        for watch in watches:
            status, headers, page = watch.answer()
            assert status == 200 and [r["revision"] for r in page["records"]] == [written]
            assert headers.get("connection", "keep-alive").lower() != "close"
        watches[0].send(f"/api/v1/take/{written + 1}?tenant=parked&wait=0.2")  # the same connection again
        status, _, page = watches[0].answer()
        assert status == 200 and (page["records"], page["next"]) == ([], written + 1)
    finally:
        for watch in watches:
            watch.close()


def test_more_parked_watches_than_threads_leave_a_follower_serving(cluster):
    follower = cluster.followers[0]
    check_parked_watches_hold_no_thread(follower.url, follower.port)


def test_a_request_pipelined_behind_a_parked_watch_is_answered_after_it_in_order(cluster):
    node = cluster.followers[0]
    client = Client(node.url)
    watch = RawWatch(node.port, f"/api/v1/take/{head_of(client, 'piped')}?tenant=piped&wait=60")
    try:
        watch.send("/api/v1/take/0?tenant=nobody")  # behind the watch, on the same connection
        written = client.put("piped", "k", b"x")["revision"]
        first, second = watch.answer(), watch.answer()
        assert first[0] == 200 and [r["revision"] for r in first[2]["records"]] == [written]
        assert second[0] == 200 and second[2]["records"] == []
    finally:
        watch.close()


def test_a_watch_whose_client_leaves_is_forgotten(cluster):
    node = cluster.followers[-1]
    client = Client(node.url)
    watches = [RawWatch(node.port, f"/api/v1/take/{head_of(client, 'gone')}?tenant=gone&wait=60")
               for _ in range(PARKED)]
    assert wait_for_watchers(client, PARKED)
    for watch in watches:
        watch.close()
    assert wait_for_watchers(client, 0), "the watches of clients that left are still registered"
    client.put("gone", "k", b"x")  # wakes nobody; the node goes on serving
    assert client.get("gone", "k", consistency="leader").value == b"x"


def wait_for_watchers(client: Client, count: int) -> bool:
    """Whether the node's stats show ``count`` registered watchers within BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while client.stats()["watchers"] != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_parked_watches_over_tls(tmp_path):
    from tests.process.test_tls import make_certs

    certs = make_certs(tmp_path / "certs", ["tls1"], [])
    node = NodeProcess("tls1", free_port(), log_dir=tmp_path, certs=certs,
                       extra_args=["-in-memory", "-threads", str(THREADS)])
    node.start()
    try:
        context = ssl.create_default_context(cafile=node.ca_file)
        check_parked_watches_hold_no_thread(node.url, node.port, context, verify=node.ca_file)
        client = Client(node.url, ca_file=node.ca_file)
        leaving = [RawWatch(node.port, f"/api/v1/take/{head_of(client, 'gone')}?tenant=gone&wait=60", context)
                   for _ in range(PARKED)]
        assert wait_for_watchers(client, PARKED)
        for number, watch in enumerate(leaving):
            if number % 2:  # half end their TLS session first (close_notify), half only close the socket
                watch.close_notify()
            watch.close()
        assert wait_for_watchers(client, 0), "TLS clients that left are still registered"
    finally:
        node.stop()
