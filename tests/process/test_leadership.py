"""Leadership with real processes: partitions, a partitioned leader, and a rolling restart.

The peer links go through the fault proxy (``badkv.testing.faults.Harness``),
so a node can be cut off while its clients still reach it.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
import requests

from badkv.testing.faults import Harness
from badkv.testing.processes import LocalCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]


@pytest.fixture
def harness(tmp_path):
    running = Harness(tmp_path).start()
    yield running
    running.stop()


def stats(node) -> dict:
    return requests.get(node.url + "/admin/stats", timeout=5).json()


def put(node, name: str, timeout: float = 10) -> int:
    try:
        return requests.post(f"{node.url}/api/v1/keys/lead/{name}", data=b"v", timeout=timeout).status_code
    except requests.RequestException:
        return 0


def test_a_leader_cut_off_from_both_followers_acknowledges_nothing_and_the_majority_goes_on(harness):
    old = harness.leader
    harness.proxy.isolate(old.name)
    cut_at = time.monotonic()
    statuses = [put(old, f"cut-{i}", timeout=5) for i in range(5)]
    assert 202 not in statuses, f"a leader without a majority acknowledged a write: {statuses}"
    new = harness.cluster.wait_for_leader(other_than=(old.name,))
    assert put(new, "majority") == 202
    deadline = time.monotonic() + 10  # check-quorum: it steps down two election timeouts after it last heard
    while stats(old)["role"] == "leader" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(old)["role"] != "leader", "check-quorum: it stepped down"
    harness.proxy.heal()

    def follows_the_majority() -> bool:  # (a disk stall may have cost another election meanwhile: any leader will do)
        leader = stats(new)["leader"]
        return leader not in (None, old.name) and stats(old)["leader"] == leader

    deadline = time.monotonic() + 10
    while not follows_the_majority() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert follows_the_majority(), "the old leader follows the majority's leader once healed"
    for i in range(5):  # nothing it refused became visible anywhere
        assert requests.get(f"{new.url}/api/v1/keys/lead/cut-{i}", timeout=5).status_code == 404
    assert time.monotonic() - cut_at < 60


def test_a_follower_partitioned_for_10_s_rejoins_without_changing_the_term(harness):
    leader, follower = harness.leader, harness.follower
    term = stats(leader)["term"]
    harness.proxy.isolate(follower.name)
    time.sleep(10)
    assert stats(follower)["pre_votes_started"] > 0, "it asked for pre-votes while cut off"
    assert stats(follower)["term"] == term, "pre-vote: it never raised its term alone"
    harness.proxy.heal()
    assert put(follower, "back") == 202
    assert [stats(node)["term"] for node in harness.cluster.nodes.values()] == [term] * 3
    assert harness.cluster.leader is leader


@pytest.fixture
def default_cluster(tmp_path):
    """Three nodes with default settings, on disk."""
    cluster = LocalCluster(3, tmp_path / "logs")
    for node in cluster.nodes.values():
        node.extra_args.extend(["-data-dir", str(tmp_path / "data" / node.name)])
    with cluster:
        cluster.wait_ready()
        yield cluster


def test_a_rolling_restart_under_write_load_fails_no_write(default_cluster):
    """Clients that never retry write through the nodes in rotation; each node in turn leaves the rotation,
    gets SIGTERM, restarts, becomes ready and comes back (as behind a load balancer)."""
    cluster = default_cluster
    rotation = set(cluster.names)
    lock, stop, results = threading.Lock(), threading.Event(), []
    counter = itertools.count()

    def write() -> None:
        session = requests.Session()
        while not stop.is_set():
            with lock:
                name = sorted(rotation)[next(counter) % len(rotation)]
            started = time.monotonic()
            try:
                response = session.post(f"{cluster.nodes[name].url}/api/v1/keys/roll/k{next(counter)}", data=b"v",
                                        timeout=10)
                status, why = response.status_code, response.text[:200]
            except requests.RequestException as error:
                status, why = repr(error), ""
            results.append((name, status, why, time.strftime("%H:%M:%S", time.localtime(time.time())),
                            round(time.monotonic() - started, 2)))

    writers = [threading.Thread(target=write, daemon=True) for _ in range(6)]
    for thread in writers:
        thread.start()
    terms = []
    for name in list(cluster.names):
        with lock:
            rotation.discard(name)
        time.sleep(0.5)  # its clients' requests in flight finish
        node = cluster.nodes[name]
        node.stop()
        node.start()
        cluster.wait_ready(20)
        with lock:
            rotation.add(name)
        terms.append(stats(cluster.leader)["term"])
        time.sleep(0.5)
    stop.set()
    for thread in writers:
        thread.join(15)
    failed = [result for result in results if result[1] != 202]
    assert len(results) > 100, "the clients must have written all along"
    assert failed == [], f"{len(failed)} of {len(results)} writes failed: {failed[:5]}"
    assert terms[-1] - terms[0] <= 3, f"each restart moves leadership at most once: {terms}"
