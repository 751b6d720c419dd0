"""Tests for badkv.testing.proxy: each fault mode, checked with real loopback sockets."""

import concurrent.futures
import contextlib
import http.server
import socket
import socketserver
import threading
import time

import pytest
import requests

from badkv.testing.proxy import ProxyNetwork, free_port

pytestmark = pytest.mark.timeout(30)

SHORT_TIMEOUT_S = 0.5
NODES = ("A", "B", "C")


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(5)
        with contextlib.suppress(OSError):
            while data := self.request.recv(4096):
                self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _PongHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"pong"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def _serve_in_thread(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def echo_address():
    server = _EchoServer(("127.0.0.1", 0), _EchoHandler)
    thread = _serve_in_thread(server)
    yield server.server_address
    server.shutdown()
    server.server_close()
    thread.join(2)


@pytest.fixture
def http_address():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PongHandler)
    server.daemon_threads = True
    thread = _serve_in_thread(server)
    yield server.server_address
    server.shutdown()
    server.server_close()
    thread.join(2)


@pytest.fixture
def network():
    with ProxyNetwork() as network:
        yield network


@pytest.fixture
def port(network, echo_address):
    """Port of the link A -> B, which forwards to the echo server."""
    return network.add_link("A", "B", echo_address)


@pytest.fixture
def mesh(network, echo_address):
    """A link for every ordered pair of NODES, all forwarding to the echo server."""
    for src in NODES:
        for dst in NODES:
            if src != dst:
                network.add_link(src, dst, echo_address)
    return network


def connect(port, timeout=SHORT_TIMEOUT_S):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def receive_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def round_trip(port, payload=b"ping", timeout=SHORT_TIMEOUT_S):
    with connect(port, timeout) as sock:
        sock.sendall(payload)
        return receive_exactly(sock, len(payload))


def reachable_links(network, timeout=SHORT_TIMEOUT_S):
    """Return the links over which an echo round trip succeeds, trying all of them at once."""

    def works(key):
        try:
            return round_trip(network.port(*key), timeout=timeout) == b"ping"
        except OSError:
            return False

    keys = list(network.stats())
    with concurrent.futures.ThreadPoolExecutor(len(keys)) as pool:
        return {key for key, ok in zip(keys, pool.map(works, keys)) if ok}


def eventually(condition, timeout=2.0):
    """Poll `condition` until it holds or `timeout` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def open_connections(network, src="A", dst="B"):
    return network.stats()[(src, dst)].open_connections


def all_pairs():
    return {(src, dst) for src in NODES for dst in NODES if src != dst}


def test_pass_forwards_both_ways(network, port):
    payload = b"hello through the proxy"

    assert round_trip(port, payload) == payload
    stats = network.stats()[("A", "B")]
    assert stats.request_bytes_forwarded == len(payload)
    assert stats.response_bytes_forwarded == len(payload)
    assert stats.bytes_dropped == 0
    assert stats.connections == 1


def test_port_is_the_listening_port(network, port):
    assert network.port("A", "B") == port


def test_blackhole_times_out_until_heal(network, port):
    held = connect(port)
    held.sendall(b"before")
    assert receive_exactly(held, 6) == b"before"

    network.blackhole("A", "B")
    with pytest.raises(TimeoutError):
        round_trip(port)
    held.sendall(b"during")
    with pytest.raises(TimeoutError):
        held.recv(6)

    network.heal()
    assert round_trip(port) == b"ping"
    try:
        assert held.recv(6) == b"", "a connection held during the partition must be closed at heal"
    except ConnectionResetError:
        pass
    finally:
        held.close()
    assert eventually(lambda: open_connections(network) == 0)


def test_reset_fails_new_connections_fast(network, port):
    network.set_mode("A", "B", "reset")

    started = time.monotonic()
    with pytest.raises(ConnectionError):
        round_trip(port, timeout=2)
    assert time.monotonic() - started < 1
    assert eventually(lambda: open_connections(network) == 0)
    assert network.stats()[("A", "B")].connections == 1


def test_reset_breaks_existing_connections(network, port):
    with connect(port, timeout=2) as sock:
        sock.sendall(b"ping")
        assert receive_exactly(sock, 4) == b"ping"

        network.set_mode("A", "B", "reset")

        with pytest.raises(ConnectionResetError):
            sock.recv(4)
    assert eventually(lambda: open_connections(network) == 0)


@pytest.mark.parametrize(
    "mode, dropped_field, forwarded_field",
    [
        ("drop_requests", "request_bytes_dropped", None),
        ("drop_responses", "response_bytes_dropped", "request_bytes_forwarded"),
    ],
)
def test_drop_mode_times_out_and_counts_dropped_bytes(network, port, mode, dropped_field, forwarded_field):
    network.set_mode("A", "B", mode)

    with pytest.raises(TimeoutError):
        round_trip(port, b"lost")

    stats = network.stats()[("A", "B")]
    assert getattr(stats, dropped_field) == 4
    if forwarded_field:
        assert getattr(stats, forwarded_field) == 4
    assert stats.response_bytes_forwarded == 0


def test_delay_slows_each_round_trip(network, port):
    network.delay_all(0.1, 0.05, seed=1)

    started = time.monotonic()
    assert round_trip(port, timeout=3) == b"ping"
    elapsed = time.monotonic() - started

    assert 0.095 <= elapsed < 3  # two hops, each delayed by at least 0.05 s


def test_delay_keeps_byte_order(network, port):
    network.delay_all(0.05, 0.05, seed=7)
    chunks = [f"{number:04d};".encode() for number in range(100)]

    with connect(port, timeout=3) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.001)  # so that the proxy reads many separate chunks
        echoed = receive_exactly(sock, len(b"".join(chunks)))

    assert echoed == b"".join(chunks)


def test_partition_blackholes_exactly_both_links_between_two_nodes(mesh):
    mesh.partition("A", "B")

    assert reachable_links(mesh) == all_pairs() - {("A", "B"), ("B", "A")}


def test_isolate_blackholes_every_link_of_one_node(mesh):
    mesh.isolate("C")

    assert reachable_links(mesh) == {("A", "B"), ("B", "A")}


def test_heal_restores_every_link(mesh):
    mesh.isolate("A")
    mesh.delay_all(0.02, 0.01)

    mesh.heal()

    assert reachable_links(mesh, timeout=2) == all_pairs()


def test_drop_one_way_loses_only_bytes_from_src_to_dst(mesh):
    mesh.drop_one_way("A", "B")

    assert reachable_links(mesh) == all_pairs() - {("A", "B"), ("B", "A")}
    stats = mesh.stats()
    assert stats[("A", "B")].request_bytes_dropped > 0
    assert stats[("B", "A")].request_bytes_forwarded > 0  # B's bytes still reach A
    assert stats[("B", "A")].response_bytes_dropped > 0  # A's replies do not reach B
    assert stats[("A", "C")].bytes_dropped == 0


def test_http_requests_through_a_link(network, http_address):
    port = network.add_link("A", "B", http_address)
    url = f"http://127.0.0.1:{port}/ping"
    assert requests.get(url, timeout=SHORT_TIMEOUT_S).text == "pong"

    network.blackhole("A", "B")
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=SHORT_TIMEOUT_S)

    network.set_mode("A", "B", "reset")
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
    assert time.monotonic() - started < 1

    network.heal()
    assert requests.get(url, timeout=SHORT_TIMEOUT_S).text == "pong"


def test_stop_closes_ports_connections_and_thread(echo_address):
    network = ProxyNetwork().start()
    port = network.add_link("A", "B", echo_address)
    open_connection = connect(port, timeout=2)
    open_connection.sendall(b"ping")
    assert receive_exactly(open_connection, 4) == b"ping"

    started = time.monotonic()
    network.stop()

    assert time.monotonic() - started < 2
    assert not [thread for thread in threading.enumerate() if thread.name == "badkv-proxy"]
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    try:
        assert open_connection.recv(4) == b""
    except ConnectionResetError:
        pass
    finally:
        open_connection.close()


def test_unreachable_target_resets_the_client(network):
    port = network.add_link("A", "B", ("127.0.0.1", free_port()))

    with pytest.raises(ConnectionError):
        round_trip(port, timeout=2)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda network: network.set_mode("A", "B", "sideways"), ValueError),
        (lambda network: network.add_link("A", "B", ("127.0.0.1", 1)), ValueError),
        (lambda network: network.add_link("A", "C", ("10.0.0.1", 1)), ValueError),
        (lambda network: network.port("B", "A"), KeyError),
        (lambda network: network.partition("B", "C"), KeyError),
        (lambda network: network.isolate("D"), KeyError),
        (lambda network: network.delay_all(-0.1, 0), ValueError),
    ],
)
def test_bad_requests_are_refused(network, port, call, error):
    with pytest.raises(error):
        call(network)

    assert round_trip(port) == b"ping"


def test_methods_need_a_running_network():
    with pytest.raises(RuntimeError):
        ProxyNetwork().add_link("A", "B", ("127.0.0.1", 1))


def test_free_port_never_hands_out_a_port_twice_nor_one_a_link_listens_on(echo_address):
    handed_out = [free_port() for _ in range(200)]
    assert len(set(handed_out)) == len(handed_out)
    with ProxyNetwork() as network:
        link_ports = {network.add_link("A", f"B{i}", echo_address) for i in range(20)}
        assert not link_ports & set(handed_out)
        assert free_port() not in link_ports
