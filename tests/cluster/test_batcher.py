"""A follower's batched calls (``cluster/batcher.py``), with the leader reduced to a peer that records the batches
it gets."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from badkv.cluster import batcher as batcher_module
from badkv.cluster.forwarder import Forwarder
from badkv.cluster.batcher import MAX_CALLS, Batcher
from badkv.cluster.transport import TransportError, TransportTimeout


class SlowLeader:
    """Answers each batch after ``delay`` seconds, every write with 202 and its own name as the body."""

    def __init__(self, delay: float = 0.05, fail_with: Exception | None = None):
        self.delay, self.fail_with = delay, fail_with
        self.batches: list[list[str]] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def propose(self, writes, timeout):
        with self.lock:
            self.batches.append([write["name"] for write in writes])
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        if self.fail_with is not None:
            raise self.fail_with
        return [[202, {"Content-Type": "application/json"}, write["name"].encode()] for write in writes]


def make_node(leader):
    node = SimpleNamespace(name="n2", core=SimpleNamespace(leader="n1", current_term=2),
                           config=SimpleNamespace(leader_wait=0.5, peer_timeout=0.5), monotonic=time.monotonic,
                           peers={"n1": leader})
    node.wait_for_leader_in_term = lambda timeout, refused: None if ("n1", 2) in refused else ("n1", 2)
    return node


def write(name: str) -> dict:
    return {"op": "put", "tenant": "t", "name": name, "value": b"v", "timestamp": None, "if_match": None,
            "if_none_match": False, "authorization": None}


def batcher_for(node):
    return Batcher(lambda leader, writes, timeout: node.peers[leader].propose(writes, timeout))


def propose_all(batcher, names, timeout=2.0):
    answers, errors = {}, {}
    start = threading.Barrier(len(names))

    def one(name):
        start.wait()
        try:
            answers[name] = tuple(batcher.call("n1", write(name), timeout, 1))
        except Exception as error:  # noqa: BLE001 (the test inspects it)
            errors[name] = error

    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    return answers, errors


def test_concurrent_writes_share_calls_and_each_gets_its_own_answer():
    leader = SlowLeader(delay=0.05)
    names = [f"k{i}" for i in range(40)]
    answers, errors = propose_all(batcher_for(make_node(leader)), names)
    assert not errors
    assert {name: answer[2] for name, answer in answers.items()} == {name: name.encode() for name in names}
    assert sorted(name for batch in leader.batches for name in batch) == sorted(names)  # each sent once
    assert len(leader.batches) < len(names) / 4  # batched: far fewer calls than writes
    assert leader.most_in_flight <= MAX_CALLS


def test_a_lone_write_is_sent_at_once():
    leader = SlowLeader(delay=0.0)
    started = time.monotonic()
    status, _, body = batcher_for(make_node(leader)).call("n1", write("solo"), 1.0)
    assert (status, body) == (202, b"solo") and leader.batches == [["solo"]]
    assert time.monotonic() - started < 0.5  # no timer between the call and the send


def test_a_failed_call_fails_every_write_of_its_batch_and_the_queue_moves_on():
    leader = SlowLeader(delay=0.02, fail_with=TransportTimeout("n1: read timed out"))
    answers, errors = propose_all(batcher_for(make_node(leader)), [f"k{i}" for i in range(10)])
    assert not answers and len(errors) == 10
    assert all(isinstance(error, TransportTimeout) for error in errors.values())


def test_batches_respect_the_write_limit(monkeypatch):
    monkeypatch.setattr(batcher_module, "MAX_BATCH_ITEMS", 3)
    leader = SlowLeader(delay=0.05)
    answers, errors = propose_all(batcher_for(make_node(leader)), [f"k{i}" for i in range(20)])
    assert not errors and len(answers) == 20
    assert max(len(batch) for batch in leader.batches) <= 3


def test_forwarder_tries_the_next_leader_when_the_batch_says_not_leader():
    """A leader that answers not_leader did nothing with the write: the next leader gets it."""
    class RefusingOnce(SlowLeader):
        def propose(self, writes, timeout):
            answers = super().propose(writes, timeout)
            if len(self.batches) == 1:
                node.core.current_term += 1  # it stepped down; it wins the next election
                return [[503, {}, b'{"error": "not_leader", "message": ""}'] for _ in writes]
            return answers

    leader = RefusingOnce(delay=0.0)
    node = make_node(leader)
    node.wait_for_leader_in_term = lambda timeout, refused: (None if ("n1", node.core.current_term) in refused
                                                             else ("n1", node.core.current_term))
    status, _, body = Forwarder(node).propose(write("k"), leader_wait=1.0)
    assert (status, body) == (202, b"k") and len(leader.batches) == 2


def test_a_refused_connection_is_unavailable_not_unknown():
    from badkv.errors import Unavailable

    leader = SlowLeader(delay=0.0, fail_with=TransportError("n1: connection refused"))
    with pytest.raises(Unavailable):
        Forwarder(make_node(leader)).propose(write("k"), leader_wait=0.2)


class IndexLeader:
    """A leader's read-index endpoint: fails ``failures`` times, then answers ``index``; counts its calls."""

    def __init__(self, index: int, failures: int = 0, delay: float = 0.0):
        self.index, self.failures, self.delay, self.calls = index, failures, delay, 0
        self.node = None

    def read_index(self, timeout):
        self.calls += 1
        time.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            self.node.core.current_term += 1  # it stepped down and an election followed
            raise TransportError("n1: /cluster/v1/read-index answered 503")
        return self.index


def read_index_node(leader):
    node = leader.node = make_node(leader)
    node.wait_for_leader_in_term = lambda timeout, refused: (None if ("n1", node.core.current_term) in refused
                                                             else ("n1", node.core.current_term))
    return node


def test_concurrent_follower_reads_share_one_read_index_call():
    leader = IndexLeader(41, delay=0.05)
    forwarder = Forwarder(read_index_node(leader))
    results = []
    start = threading.Barrier(30)

    def read():
        start.wait()
        results.append(forwarder.read_index(2.0))

    threads = [threading.Thread(target=read) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == [41] * 30
    assert leader.calls < 10  # one call per batch, not one per read (the first MAX_CALLS may go alone)


def test_a_failed_read_index_is_asked_again_of_the_next_leader():
    leader = IndexLeader(7, failures=1)
    assert Forwarder(read_index_node(leader)).read_index(2.0) == 7 and leader.calls == 2


def test_no_leader_means_the_follower_read_is_unavailable():
    from badkv.errors import Unavailable

    leader = IndexLeader(7)
    node = read_index_node(leader)
    node.wait_for_leader_in_term = lambda timeout, refused: None
    forwarder = Forwarder(node)
    with pytest.raises(Unavailable, match="no leader"):
        forwarder.read_index(0.2)
    assert leader.calls == 0
