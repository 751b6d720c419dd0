"""A real 3-node cluster of ``badkv`` processes on loopback ports, started as the Procfile does."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
import time

import pytest
import requests

from badkv.client import Client, ClientError
from badkv.testing.processes import LocalCluster, wait_until

pytestmark = pytest.mark.process

FAST = ["-in-memory", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
        "-sync-interval", "1", "-peer-timeout", "0.5"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(3, tmp_path_factory.mktemp("cluster"), extra_args=FAST) as running:
        running.wait_ready()
        yield running


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster a test may break."""
    with LocalCluster(3, tmp_path, extra_args=FAST) as running:
        running.wait_ready()
        yield running


def clients_of(cluster) -> dict[str, Client]:
    return {name: Client(node.url, timeout=5) for name, node in cluster.nodes.items()}


def test_every_write_is_readable_on_every_node_right_after_its_202(cluster):
    clients = clients_of(cluster)
    rng = random.Random(7)
    for i in range(200):
        writer = rng.choice(list(clients.values()))
        name = f"key{i % 37}"
        answer = writer.put("acme", name, f"value-{i}".encode())
        for reader in clients.values():
            got = reader.get("acme", name)
            assert got.value == f"value-{i}".encode(), f"{reader.endpoint} missed write {i}"
            assert got.revision == answer["revision"]


def test_deletes_are_visible_everywhere_right_after_their_202(cluster):
    clients = list(clients_of(cluster).values())
    for i in range(30):
        clients[i % 3].put("deletes", f"k{i}", b"x")
        clients[(i + 1) % 3].delete("deletes", f"k{i}")
        for reader in clients:
            with pytest.raises(ClientError) as error:
                reader.get("deletes", f"k{i}")
            assert error.value.status == 404


def test_stronger_reads_and_read_your_writes_through_a_follower(cluster):
    follower = Client(cluster.followers[0].url)
    other = Client(cluster.followers[1].url)
    answer = follower.put("reads", "k", b"v1")
    assert other.get("reads", "k", min_revision=answer["revision"]).value == b"v1"
    for consistency in ("leader", "linearizable"):
        assert other.get("reads", "k", consistency=consistency).value == b"v1"
    with pytest.raises(ClientError) as error:
        other.get("reads", "k", min_revision=answer["revision"] + 10 ** 15, timeout=0.2)
    assert error.value.status == 504


def test_a_forwarded_read_waits_as_long_as_its_own_timeout(cluster):
    """A leader read asked to wait longer than a write may must get the leader's own answer, not
    the follower's "the leader did not answer in time" (FAST's write timeout is 2 s, peer timeout 0.5 s)."""
    follower = Client(cluster.followers[0].url, timeout=10)
    revision = follower.put("reads", "long", b"v")["revision"]
    started = time.monotonic()
    with pytest.raises(ClientError) as error:
        follower.get("reads", "long", consistency="leader", min_revision=revision + 10 ** 15, timeout=3)
    assert time.monotonic() - started >= 3
    assert error.value.status == 504 and "was not applied here within 3s" in str(error.value), str(error.value)


def test_take_is_the_same_on_every_node_after_writes_settle(cluster):
    clients = clients_of(cluster)
    for i in range(50):
        clients[f"n{i % 3 + 1}"].put("take", f"k{i % 20}", f"v{i}".encode())
    clients["n2"].delete("take", "k3")
    snapshots = {name: client.take_all() for name, client in clients.items()}
    assert snapshots["n1"] == snapshots["n2"] == snapshots["n3"]
    assert any(record["deleted"] for record in snapshots["n1"])


def test_members_and_readiness_describe_the_cluster(cluster):
    members = Client(cluster.leader.url).members()
    assert [m["name"] for m in members] == ["n1", "n2", "n3"]
    assert [m["role"] for m in members] == ["leader", "follower", "follower"]
    assert all(m["reachable"] and m["in_sync"] for m in members)
    for node in cluster.nodes.values():
        assert requests.get(node.url + "/admin/ready", timeout=2).status_code == 200
    stats = Client(cluster.followers[0].url).stats()
    assert stats["role"] == "follower" and stats["leader"] == "n1"
    assert stats["commit_index"] == stats["applied_index"]


def test_a_restarted_follower_comes_back_empty_and_is_caught_up(own_cluster):
    leader = Client(own_cluster.leader.url)
    for i in range(100):
        leader.put("restart", f"k{i}", f"v{i}".encode())
    follower = own_cluster.followers[0]
    follower.kill()
    for i in range(100, 120):
        leader.put("restart", f"k{i}", f"v{i}".encode())  # one follower down: writes go on
    follower.start()
    client = Client(follower.url)
    assert wait_until(lambda: client.stats()["keys"] == 120, timeout=10)
    assert client.get("restart", "k119").value == b"v119"
    assert client.take_all() == leader.take_all()


def test_with_both_followers_down_writes_fail_in_bounded_time_and_leave_nothing_visible(own_cluster):
    leader = Client(own_cluster.leader.url, timeout=10)
    leader.put("quorum", "before", b"ok")
    for follower in own_cluster.followers:
        follower.kill()
    statuses = []
    for i in range(3):
        started = time.monotonic()
        with pytest.raises(ClientError) as error:
            leader.put("quorum", f"lost{i}", b"x")
        statuses.append(error.value.status)
        assert error.value.status in (503, 504)
        assert time.monotonic() - started < 4, "a write without quorum must fail within the write timeout"
    assert statuses[0] == 504, "a write accepted just before the followers were noticed gone has an unknown outcome"
    assert statuses[-1] == 503, "once the followers are known gone, writes fail fast with 503"
    for i in range(3):
        with pytest.raises(ClientError) as error:
            leader.get("quorum", f"lost{i}")
        assert error.value.status == 404
    assert leader.get("quorum", "before").value == b"ok"


def stats_of(node) -> dict:
    return requests.get(node.url + "/admin/stats", timeout=5).json()


def test_a_killed_leader_is_replaced_and_writes_through_the_survivors_resume(own_cluster):
    old_leader = own_cluster.leader
    term = stats_of(old_leader)["term"]
    old_leader.kill()
    survivor = Client(own_cluster.followers[0].url, timeout=10)
    # A write through a survivor waits for the new leader (up to -leader-wait) instead of failing; the
    # first may also meet a keep-alive connection the dead leader left half-open (504, outcome unknown).
    deadline, answer = time.monotonic() + 10, None
    while answer is None and time.monotonic() < deadline:
        try:
            answer = survivor.put("failover", "k", b"after")
        except ClientError as error:
            assert (error.status, error.code) in ((503, "unavailable"), (504, "timeout")), error
    assert answer is not None, "no write succeeded through a survivor within 10 s of the leader's death"
    new_leader = own_cluster.wait_for_leader(other_than=(old_leader.name,))
    assert stats_of(new_leader)["term"] > term
    for node in own_cluster.followers:
        assert Client(node.url).get("failover", "k", min_revision=answer["revision"]).value == b"after"
    old_leader.start()
    assert wait_until(lambda: stats_of(old_leader)["leader"] == new_leader.name, 10)
    assert Client(old_leader.url).get("failover", "k", min_revision=answer["revision"]).value == b"after"


def test_sigterm_on_the_leader_hands_leadership_over_first(own_cluster):
    old_leader = own_cluster.leader
    term = stats_of(old_leader)["term"]
    old_leader.stop()
    new_leader = own_cluster.wait_for_leader(other_than=(old_leader.name,))
    stats = stats_of(new_leader)
    assert stats["term"] == term + 1, "a handover takes one election, not a timeout and a split vote"
    assert "handed leadership to" in old_leader.log_path.read_text()
    Client(new_leader.url).put("handover", "k", b"v")


def test_transfer_leader_moves_leadership_where_asked(own_cluster):
    leader, target = own_cluster.leader, own_cluster.followers[-1]
    via = own_cluster.followers[0]  # sent to a follower, the request is relayed to the leader
    response = requests.post(via.url + "/admin/transfer-leader", json={"to": target.name}, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["leader"] == target.name
    assert own_cluster.leader is target
    refused = requests.post(target.url + "/admin/transfer-leader", json={"to": "nobody"}, timeout=10)
    assert refused.status_code == 400 and "not a member" in refused.json()["message"]
    Client(leader.url).put("moved", "k", b"v")


def test_many_concurrent_writes_through_a_follower_never_starve_replication(tmp_path):
    """More concurrent forwarded writes than the follower has request threads must not block the
    leader's appends to that follower (they would, with one shared thread pool, until ISR eviction)."""
    with LocalCluster(3, tmp_path, extra_args=["-in-memory", "-threads", "4", "-isr-timeout", "2"]) as cluster:
        cluster.wait_ready()
        url = cluster.followers[0].url

        def write_for_a_while(worker: int) -> int:
            session, done = requests.Session(), 0
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                response = session.post(f"{url}/api/v1/keys/burst/w{worker}-{done}", data=b"x" * 100, timeout=10)
                assert response.status_code == 202, response.text
                done += 1
            return done

        with ThreadPoolExecutor(16) as pool:
            total = sum(pool.map(write_for_a_while, range(16)))
        assert total > 16
        members = Client(cluster.leader.url).members()
        assert [m.get("isr_evictions") for m in members[1:]] == [0, 0], members
