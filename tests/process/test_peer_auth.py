"""The cluster boundary with real processes: a 3-node cluster with a cluster secret serves writes; unsigned,
forged, replayed, stale and foreign-cluster peer calls to a follower change nothing there; two processes
under one member name are refused with a line on the refusing node and on both processes; a restarted
member is not."""

from __future__ import annotations

import time

import pytest
import requests

from badkv.client import Client
from badkv.cluster.transport import encode_body
from badkv.config import Config
from badkv.consensus.messages import AppendRequest, VoteRequest
from badkv.security.peer_auth import Signer
from badkv.testing.processes import LocalCluster, NodeProcess, free_port, wait_until

pytestmark = pytest.mark.process

SECRET = "5f0c2e8a41b7d9c3e6a0f4b8d2c7e1a9"
FAST = ["-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2", "-sync-interval", "1",
        "-peer-timeout", "0.5"]
ATTACK_TERM = 1_000_000


def start(tmp_path, *, in_memory: bool = True) -> LocalCluster:
    secret_file = tmp_path / "cluster.secret"
    secret_file.write_text(SECRET + "\n")
    cluster = LocalCluster(3, tmp_path, extra_args=FAST + ["-cluster-secret-file", str(secret_file)])
    for node in cluster.nodes.values():
        node.extra_args += ["-in-memory"] if in_memory else ["-data-dir", str(tmp_path / "data" / node.name)]
    cluster.start()
    cluster.wait_ready()
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("signed"))
    yield running
    running.stop()


def cluster_id(cluster) -> str:
    return Config.from_sources({"name": "n1", "cluster": cluster.nodes["n1"].cluster}).cluster_id


def follower_state(node: NodeProcess) -> tuple:
    stats = requests.get(node.url + "/admin/stats", timeout=2).json()
    take = requests.get(node.url + "/api/v1/take/0", timeout=2).json()
    return (stats["term"], stats["commit_index"], stats["applied_index"], stats["keys"]), take


def the_attack(leader: str) -> bytes:
    """The append of the issue: a term a million higher, an entry that would replace the follower's first."""
    entry = {"index": 1, "term": ATTACK_TERM, "op": "put", "tenant": "acme", "name": "evil", "value": b"pwned",
             "timestamp": 1, "revision": 1}
    return encode_body(AppendRequest(ATTACK_TERM, leader, 0, 0, [entry], 1, 1).to_wire())[0]


def signed_headers(cluster, receiver: str, path: str, body: bytes, *, secret: str = SECRET, sender: str = "n1",
                   cluster_name: str | None = None, at: float | None = None) -> dict:
    signer = Signer(secret.encode(), cluster=cluster_name or cluster_id(cluster), sender=sender, instance="test",
                    clock=(lambda: at) if at is not None else time.time)
    return {"Content-Type": "application/msgpack", **signer.headers("POST", path, body, receiver)}


def test_a_signed_cluster_serves_writes_through_every_node(cluster):
    for i, node in enumerate(cluster.nodes.values()):
        Client(node.url, timeout=5).put("acme", f"k{i}", f"v{i}".encode())
    for node in cluster.nodes.values():
        assert [Client(node.url).get("acme", f"k{i}", consistency="linearizable").value for i in range(3)] \
            == [b"v0", b"v1", b"v2"]


def test_calls_without_a_valid_fresh_signature_change_nothing_on_a_follower(cluster):
    leader, follower = cluster.leader, cluster.followers[0]
    Client(leader.url, timeout=5).put("acme", "before", b"1")
    assert wait_until(lambda: follower_state(follower)[0][3] >= 1, 5)
    before = follower_state(follower)
    url, path = follower.url + "/cluster/v1/append", "/cluster/v1/append"
    attack = the_attack(leader.name)
    msgpack = {"Content-Type": "application/msgpack"}
    # The exact attack of the issue, as curl sends it: no identity at all, then a member's name but no signature.
    assert requests.post(url, data=attack, headers=msgpack, timeout=2).status_code == 409
    named = {**msgpack, "X-Badkv-Cluster": cluster_id(cluster), "X-Badkv-Sender": leader.name}
    assert requests.post(url, data=attack, headers=named, timeout=2).status_code == 401
    forged = signed_headers(cluster, follower.name, path, attack, sender=leader.name,
                            secret="a guessed secret of good length")
    assert requests.post(url, data=attack, headers=forged, timeout=2).status_code == 401
    stale = signed_headers(cluster, follower.name, path, attack, sender=leader.name, at=time.time() - 31)
    assert requests.post(url, data=attack, headers=stale, timeout=2).status_code == 401
    foreign = signed_headers(cluster, follower.name, path, attack, sender=leader.name, cluster_name="another-cluster")
    assert requests.post(url, data=attack, headers=foreign, timeout=2).status_code == 409
    assert follower_state(follower) == before
    # A captured call sent twice: a vote request, taken (and refused as stale) once, then refused as a replay.
    # (Signed as the leader: whichever node won, a call signed with the follower's own name would be refused
    # as a second process claiming it.)
    vote = encode_body(VoteRequest(0, leader.name, 0, 0).to_wire())[0]
    captured = signed_headers(cluster, follower.name, "/cluster/v1/vote", vote, sender=leader.name)
    assert requests.post(follower.url + "/cluster/v1/vote", data=vote, headers=captured, timeout=2).status_code \
        == 200
    replay = requests.post(follower.url + "/cluster/v1/vote", data=vote, headers=captured, timeout=2)
    assert (replay.status_code, replay.json()["error"]) == (401, "unauthenticated")
    assert follower_state(follower) == before
    log = follower.log_path.read_text()
    for said in ("wrong_cluster: this node is in cluster", "unauthenticated: missing", "unauthenticated: bad",
                 "unauthenticated: expired", "unauthenticated: replayed"):
        assert said in log, said
    assert SECRET not in log
    Client(leader.url, timeout=5).put("acme", "after", b"2")  # the cluster still serves
    assert Client(follower.url).get("acme", "after", consistency="linearizable").value == b"2"


def test_two_processes_under_one_name_are_refused_and_a_restart_is_not(tmp_path):
    cluster = start(tmp_path, in_memory=False)
    duplicate = None
    try:
        victim = cluster.followers[-1]
        victim.stop()
        victim.start()  # a new instance id under the same name: a restart
        cluster.wait_ready()
        Client(cluster.leader.url, timeout=5).put("acme", "after-restart", b"1")
        assert Client(victim.url).get("acme", "after-restart", consistency="linearizable").value == b"1"
        assert not any("duplicate" in node.log_path.read_text() for node in cluster.nodes.values())
        duplicate = NodeProcess(victim.name, free_port(), cluster=victim.cluster, log_dir=tmp_path / "duplicate",
                                extra_args=victim.extra_args[:-2] + ["-in-memory"])
        duplicate.start()
        leader = cluster.leader

        def refused_on_both() -> bool:
            return ("duplicate_member: two processes claim member name" in leader.log_path.read_text()
                    and "refused this node as a duplicate" in duplicate.log_path.read_text()
                    and "reports another process under this node's name" in victim.log_path.read_text())
        assert wait_until(refused_on_both, 20), [node.log_path.read_text()[-1500:] for node in (leader, victim,
                                                                                               duplicate)]
        Client(leader.url, timeout=5).put("acme", "with-duplicate", b"2")
        assert Client(victim.url).get("acme", "with-duplicate", consistency="linearizable").value == b"2"
    finally:
        if duplicate is not None:
            duplicate.stop()
        cluster.stop()
