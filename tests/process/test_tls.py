"""A TLS 3-node cluster made only with ``badkvctl certs``: it serves through every node, and refuses the rest.

Refused: a client that trusts another CA, plain HTTP to the TLS port, a peer
call without a client certificate (401, nothing changed), and peer calls with a
certificate from another CA or an expired one (refused in the handshake). Each
refusal leaves a line in a log that says why.
"""

from __future__ import annotations

import datetime
import socket
import threading
import ssl
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from badkv.client import Client, ClientError
from badkv.config import Config
from badkv.security.peer_auth import Signer
from badkv.testing.processes import LocalCluster, NodeProcess, free_port

pytestmark = pytest.mark.process

FAST = ["-in-memory", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
        "-sync-interval", "1", "-peer-timeout", "0.5"]
MSGPACK = {"Content-Type": "application/msgpack"}


def badkvctl(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "badkv.ctl", *args], check=True, capture_output=True, timeout=30)


def make_certs(directory: Path, nodes: list[str], clients: list[str], host: str = "127.0.0.1,localhost") -> Path:
    badkvctl("certs", "init", "--dir", str(directory))
    for name in nodes:
        badkvctl("certs", "issue", name, "--host", host, "--dir", str(directory))
    for name in clients:
        badkvctl("certs", "issue", name, "--client", "--dir", str(directory))
    return directory


def wait_for_line(path: Path, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if text in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no line with {text!r} in {path} after {timeout}s")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"), ["n1", "n2", "n3"], ["ops"])


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory) -> Path:
    return make_certs(tmp_path_factory.mktemp("other-ca"), ["n1"], ["intruder"])


@pytest.fixture(scope="module")
def cluster(certs, tmp_path_factory):
    with LocalCluster(3, tmp_path_factory.mktemp("tls-cluster"), extra_args=FAST, certs=certs) as running:
        running.wait_ready()
        yield running


@pytest.fixture
def follower(cluster):
    return cluster.followers[0]


def append_to(node: NodeProcess, stats: dict, headers: dict = MSGPACK, **tls) -> requests.Response:
    """A hand-made append from a leader of a far higher term, carrying one entry."""
    term = stats["term"] + 1_000_000
    entry = {"index": stats["last_index"] + 1, "term": term, "op": "put", "tenant": "t", "name": "forged",
             "value": b"x", "timestamp": 1, "revision": 1}
    body = {"term": term, "leader": "n1", "prev_index": stats["last_index"], "prev_term": stats["term"],
            "entries": [entry], "leader_commit": stats["last_index"] + 1, "seq": 1}
    return requests.post(node.url + "/cluster/v1/append", data=msgpack.packb(body, use_bin_type=True),
                         headers=headers, timeout=5, **tls)


def other_follower(cluster, to: NodeProcess) -> str:
    """The member a test's peer call claims to come from: the other follower, which itself never calls ``to``
    while a leader leads."""
    return next(node.name for node in cluster.followers if node is not to)


def member_headers(cluster, to: NodeProcess) -> dict:
    """The identity a member's call carries (these nodes have no cluster secret): the cluster id and sender."""
    cluster_id = Config.from_sources({"name": to.name, "cluster": to.cluster}).cluster_id
    return {**MSGPACK, **Signer(None, cluster=cluster_id, sender=other_follower(cluster, to), instance="a-test")
            .headers("POST", "/cluster/v1/append", b"", to.name)}


def node_certificate(cluster, to: NodeProcess, certs: Path) -> tuple[str, str]:
    name = other_follower(cluster, to)
    return str(certs / f"{name}.crt"), str(certs / f"{name}.key")


def raft_state(node: NodeProcess) -> tuple:
    stats = node.get("/admin/stats", timeout=5).json()
    return stats["term"], stats["last_index"], stats["voted_for"]


def test_reads_and_writes_work_through_every_node(cluster, certs):
    clients = {name: Client(node.url, timeout=5, ca_file=str(certs / "ca.crt")) for name, node in cluster.nodes.items()}
    assert all(node.url.startswith("https://") for node in cluster.nodes.values())
    for name, writer in clients.items():  # writes through followers are forwarded to the leader over TLS
        answer = writer.put("tls", f"from-{name}", name.encode())
        for reader in clients.values():
            got = reader.get("tls", f"from-{name}", min_revision=answer["revision"])
            assert (got.value, got.revision) == (name.encode(), answer["revision"])


def test_a_client_that_trusts_another_ca_is_refused(cluster, other_certs):
    client = Client(cluster.nodes["n1"].url, timeout=5, ca_file=str(other_certs / "ca.crt"))
    with pytest.raises(ClientError) as refused:
        client.stats()
    assert refused.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in refused.value.message
    wait_for_line(cluster.nodes["n1"].log_path, "n1: refused a TLS connection from 127.0.0.1: the caller does not "
                                                "trust this node's certificate")


def test_plain_http_to_the_tls_port_is_refused(cluster):
    node = cluster.nodes["n2"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{node.address}/admin/health", timeout=5)
    wait_for_line(node.log_path, "n2: refused a TLS connection from 127.0.0.1: plain HTTP sent to this HTTPS port")


def test_a_peer_call_without_a_client_certificate_is_401_and_changes_nothing(follower, certs):
    before = raft_state(follower)
    stats = follower.get("/admin/stats", timeout=5).json()
    answer = append_to(follower, stats, verify=str(certs / "ca.crt"))
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"
    assert raft_state(follower) == before
    wait_for_line(follower.log_path, "refused POST /cluster/v1/append from 127.0.0.1: no client certificate")


def test_an_operators_client_certificate_cannot_make_peer_calls(cluster, follower, certs):
    """The CA signs operators' client certificates too: they open the public API, never the peer one."""
    before = raft_state(follower)
    stats = follower.get("/admin/stats", timeout=5).json()
    answer = append_to(follower, stats, headers=member_headers(cluster, follower), verify=str(certs / "ca.crt"),
                       cert=(str(certs / "ops.crt"), str(certs / "ops.key")))
    assert answer.status_code == 401
    assert raft_state(follower) == before
    wait_for_line(follower.log_path, "its certificate is not a node certificate (no serverAuth usage)")


def test_a_certificate_from_the_cluster_ca_passes_the_check(cluster, follower, certs):
    """The other side of the test above: with a verified certificate the call reaches the node, which
    answers a stale (lower-term) append with success false and changes nothing."""
    before = raft_state(follower)
    stats = follower.get("/admin/stats", timeout=5).json()
    body = {"term": 0, "leader": "n1", "prev_index": 0, "prev_term": 0, "entries": [], "leader_commit": 0, "seq": 1}
    answer = requests.post(follower.url + "/cluster/v1/append", data=msgpack.packb(body),
                           headers=member_headers(cluster, follower), timeout=5, verify=str(certs / "ca.crt"), cert=node_certificate(cluster, follower, certs))
    assert answer.status_code == 200
    assert msgpack.unpackb(answer.content)["success"] is False
    assert raft_state(follower)[:2] == before[:2] == (stats["term"], stats["last_index"])


def test_a_new_peer_connection_is_served_while_every_shared_thread_is_busy(cluster, follower, certs):
    """With TLS the worker cannot peek at the request line; a caller with a verified certificate is still
    served from the reserved peer pool when slow clients hold every thread of the shared one."""
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    held = []
    try:
        for _ in range(40):  # more than the follower's 32 request threads
            raw = socket.create_connection(("127.0.0.1", follower.port), timeout=2)
            try:
                held.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
            except TimeoutError:  # handshakes made in the shared pool wait once it is full
                raw.close()
                break
            held[-1].sendall(b"GET /admin/health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        with pytest.raises(requests.exceptions.Timeout):  # the shared pool is indeed full
            requests.get(follower.url + "/admin/health", verify=str(certs / "ca.crt"), timeout=1)
        body = {"term": 0, "leader": "n1", "prev_index": 0, "prev_term": 0, "entries": [], "leader_commit": 0,
                "seq": 1}
        answer = requests.post(follower.url + "/cluster/v1/append", data=msgpack.packb(body),
                               headers=member_headers(cluster, follower), timeout=2, verify=str(certs / "ca.crt"),
                               cert=node_certificate(cluster, follower, certs))
        assert answer.status_code == 200
    finally:
        for connection in held:
            connection.close()


def expired_client_certificate(certs: Path, directory: Path) -> tuple[str, str]:
    """A client certificate signed by the cluster's CA that expired yesterday (``certs issue`` makes none)."""
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
                   .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
                   .sign(ca_key, hashes.SHA256()))
    (directory / "old.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "old.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return str(directory / "old.crt"), str(directory / "old.key")


@pytest.mark.parametrize("which, reason", [
    ("other-ca", "the caller's certificate is not signed by this cluster's CA"),
    ("expired", "the caller's certificate has expired"),
])
def test_a_peer_call_with_a_foreign_or_expired_certificate_is_refused_in_the_handshake(
        follower, certs, other_certs, tmp_path, which, reason):
    before = raft_state(follower)
    stats = follower.get("/admin/stats", timeout=5).json()
    if which == "other-ca":
        cert = (str(other_certs / "intruder.crt"), str(other_certs / "intruder.key"))
    else:
        cert = expired_client_certificate(certs, tmp_path)
    with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
        append_to(follower, stats, verify=str(certs / "ca.crt"), cert=cert)
    assert raft_state(follower) == before
    wait_for_line(follower.log_path, f"{follower.name}: refused a TLS connection from 127.0.0.1: {reason}")


def test_a_server_certificate_for_another_host_is_refused_by_the_client(tmp_path):
    certs = make_certs(tmp_path / "certs", ["solo"], [], host="127.0.0.2,elsewhere.example")
    node = NodeProcess("solo", free_port(), log_dir=tmp_path, extra_args=["-in-memory"], certs=certs)
    try:
        node.start(wait=False)
        client = Client(node.url, timeout=5, ca_file=str(certs / "ca.crt"))
        deadline, refusal = time.monotonic() + 15, ""
        while "IP address mismatch" not in refusal and time.monotonic() < deadline and node.running:
            try:
                client.stats()
                refusal = "served"
                break
            except ClientError as refused:  # connection refused until the node listens; then the mismatch
                refusal = refused.message
            time.sleep(0.05)
        assert "IP address mismatch" in refusal
        wait_for_line(node.log_path, "solo: refused a TLS connection from 127.0.0.1: the caller refused this "
                                     "node's certificate")
    finally:
        node.stop()


def test_slow_handshakes_from_anyone_neither_last_nor_stall_a_members_calls(cluster, follower, certs):
    """Callers that send a handshake a byte at a time hold no thread that serves peers, and are cut off at
    the handshake deadline (2 s) however often they send."""
    member = requests.Session()
    member.trust_env = False  # (an environment CA bundle would override the session's)
    member.verify, member.cert = str(certs / "ca.crt"), node_certificate(cluster, follower, certs)
    body = {"term": 0, "leader": "n1", "prev_index": 0, "prev_term": 0, "entries": [], "leader_commit": 0, "seq": 1}

    def call() -> float:
        started = time.monotonic()
        answer = member.post(follower.url + "/cluster/v1/append", data=msgpack.packb(body),
                             headers=member_headers(cluster, follower), timeout=5)
        assert answer.status_code == 200
        return time.monotonic() - started

    call()  # the member's connection is open
    stop, cut_off, handshaking = threading.Event(), [], []

    def trickle() -> None:
        while not stop.is_set():
            sock = socket.create_connection(("127.0.0.1", follower.port), timeout=5)
            opened, first = time.monotonic(), True
            handshaking.append(opened)
            try:
                while not stop.is_set():
                    sock.send(b"\x16\x03\x01\x02\x00" if first else b"\x01")  # a record header, then a byte
                    first = False
                    try:
                        if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                            raise ConnectionResetError("closed by the node")
                    except BlockingIOError:
                        pass  # nothing to read: the handshake is still waiting for us
                    stop.wait(0.5)
            except OSError:
                cut_off.append(time.monotonic() - opened)
            finally:
                sock.close()

    attackers = [threading.Thread(target=trickle, daemon=True) for _ in range(2 * 4 + 2)]
    for thread in attackers:
        thread.start()
    try:
        deadline = time.monotonic() + 10  # every handshake thread (4) is held, and more callers wait
        while len(handshaking) < len(attackers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(handshaking) >= len(attackers), "the slow callers connected"
        assert call() < 1.0, "a member's call waited behind the slow handshakes"
        deadline = time.monotonic() + 10
        while not cut_off and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cut_off and min(cut_off) < 4, f"slow handshakes were cut off: {cut_off}"
    finally:
        stop.set()
        for thread in attackers:
            thread.join(5)
