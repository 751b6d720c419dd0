"""The consensus core on a simulated network: no sockets, no threads, time is a number."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from badkv.raft import Log, RaftCore

ISR_TIMEOUT = 2.0
HEARTBEAT = 0.2


class SimulatedCluster:
    """A leader and followers wired by hand: ``deliver`` moves one append and its answer."""

    def __init__(self, size: int = 3, term: int = 1):
        self.names = [f"n{i + 1}" for i in range(size)]
        self.now = 0.0
        self.cores = {name: self._core(name, term) for name in self.names}
        self.applied = {name: 0 for name in self.names}
        self.down: set[str] = set()

    def _core(self, name: str, term: int) -> RaftCore:
        return RaftCore(name, self.names, Log(), term=term if name == "n1" else 0, leader="n1",
                        isr_timeout=ISR_TIMEOUT, heartbeat_interval=HEARTBEAT, max_batch_entries=3, now=self.now)

    @property
    def leader(self) -> RaftCore:
        return self.cores["n1"]

    def propose(self, value: str) -> int:
        entry = self.leader.propose({"op": "put", "value": value})
        self.leader.set_durable(entry["index"])
        self.applied["n1"] = self.leader.commit_index
        return entry["index"]

    def deliver(self, peer: str, *, drop_response: bool = False) -> dict | None:
        """Send the leader's next append to ``peer``; the follower applies what is committed."""
        request = self.leader.append_request(peer, self.now)
        if peer in self.down:
            self.leader.handle_append_failure(peer, self.now)
            return None
        follower = self.cores[peer]
        response, actions = follower.handle_append(request, self.applied[peer])
        if actions.reset_state:
            self.applied[peer] = 0
        self.applied[peer] = max(self.applied[peer], follower.commit_index)
        response["applied_index"] = self.applied[peer]
        if not drop_response:
            self.leader.handle_append_response(peer, request, response, self.now)
            self.applied["n1"] = self.leader.commit_index
        return response

    def round(self) -> None:
        for peer in self.names[1:]:
            self.deliver(peer)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.leader.tick(self.now)


def values(core: RaftCore) -> list:
    return [entry.get("value") for entry in core.log.entries]


def test_an_entry_commits_only_once_every_in_sync_follower_holds_it():
    cluster = SimulatedCluster()
    index = cluster.propose("a")
    assert cluster.leader.commit_index < index
    cluster.deliver("n2")
    assert cluster.leader.commit_index < index, "a majority alone must not commit while n3 is in sync"
    cluster.deliver("n3")
    assert cluster.leader.commit_index == index


def test_a_silent_follower_leaves_the_in_sync_set_and_the_majority_commits():
    cluster = SimulatedCluster()
    cluster.down.add("n3")
    index = cluster.propose("a")
    cluster.deliver("n2")
    cluster.deliver("n3")
    assert cluster.leader.commit_index < index
    cluster.advance(ISR_TIMEOUT + 0.1)
    assert not cluster.leader.progress["n3"].in_sync
    assert cluster.leader.commit_index == index
    cluster.deliver("n2")
    assert cluster.leader.has_quorum(cluster.now)


def test_without_a_majority_nothing_commits_and_the_leader_knows_it_has_no_quorum():
    cluster = SimulatedCluster()
    cluster.down |= {"n2", "n3"}
    index = cluster.propose("a")
    cluster.round()
    cluster.advance(ISR_TIMEOUT + 0.1)
    cluster.round()
    assert cluster.leader.commit_index < index
    assert not cluster.leader.has_quorum(cluster.now)


def test_a_follower_that_comes_back_catches_up_and_rejoins_the_in_sync_set():
    cluster = SimulatedCluster()
    cluster.down.add("n3")
    for value in "abcdefg":
        cluster.propose(value)
        cluster.deliver("n2")
    cluster.advance(ISR_TIMEOUT + 0.1)
    cluster.deliver("n2")
    assert not cluster.leader.progress["n3"].in_sync
    cluster.down.clear()
    for _ in range(5):  # batches of 3 entries
        cluster.deliver("n3")
    assert values(cluster.cores["n3"]) == values(cluster.leader)
    assert cluster.leader.progress["n3"].in_sync
    assert cluster.applied["n3"] == cluster.leader.commit_index


def test_a_restarted_empty_follower_is_walked_back_to_the_start():
    cluster = SimulatedCluster()
    for value in "abcd":
        cluster.propose(value)
        cluster.round()
        cluster.round()
    cluster.cores["n2"] = cluster._core("n2", 0)
    cluster.applied["n2"] = 0
    rejected = cluster.deliver("n2")
    assert rejected["success"] is False
    for _ in range(3):
        cluster.deliver("n2")
    assert values(cluster.cores["n2"]) == values(cluster.leader)


def test_a_conflicting_uncommitted_suffix_is_replaced():
    follower = RaftCore("n2", ["n1", "n2", "n3"], Log(), term=0, leader="n1", isr_timeout=ISR_TIMEOUT,
                        heartbeat_interval=HEARTBEAT, max_batch_entries=10, now=0)
    old = [{"index": 1, "term": 1, "value": "a"}, {"index": 2, "term": 1, "value": "stale"}]
    follower.handle_append({"term": 1, "leader": "n1", "prev_index": 0, "prev_term": 0, "entries": old,
                            "leader_commit": 1, "seq": 1}, 0)
    new = [{"index": 2, "term": 2, "value": "b"}]
    response, actions = follower.handle_append({"term": 2, "leader": "n1", "prev_index": 1, "prev_term": 1,
                                                "entries": new, "leader_commit": 2, "seq": 2}, 1)
    assert response["success"] and actions.truncate_from == 2 and not actions.reset_state
    assert values(follower) == ["a", "b"]
    assert follower.commit_index == 2


def test_a_leader_that_lost_its_log_makes_followers_reset_their_state():
    cluster = SimulatedCluster(term=1)
    for value in "ab":
        cluster.propose(value)
        cluster.round()
        cluster.round()
    assert cluster.applied["n2"] == 2
    cluster.cores["n1"] = cluster._core("n1", 5)  # in-memory restart, higher term
    cluster.propose("c")
    assert cluster.deliver("n2")["success"] is False, "the follower drops its log and asks from the start"
    assert cluster.applied["n2"] == 0
    assert cluster.deliver("n2")["success"]
    assert values(cluster.cores["n2"]) == ["c"]


@pytest.mark.parametrize("acks, expected", [("all", 0), ("majority", 1)])
def test_acks_all_waits_for_followers_to_apply_acks_majority_does_not(acks, expected):
    cluster = SimulatedCluster()
    index = cluster.propose("a")
    cluster.deliver("n2")
    cluster.deliver("n3")
    assert cluster.leader.commit_index == index
    # The followers hold the entry but have not yet heard that it committed.
    assert cluster.leader.acknowledged_index(index, acks) == expected * index
    cluster.round()
    assert cluster.leader.acknowledged_index(index, acks) == index


def test_read_index_needs_a_majority_to_answer_a_fresh_round():
    cluster = SimulatedCluster()
    cluster.round()
    seq = cluster.leader.send_seq + 1
    assert not cluster.leader.confirmed_by_majority(seq)
    cluster.down.add("n3")
    cluster.round()
    assert cluster.leader.confirmed_by_majority(seq)


def test_a_single_node_commits_on_its_own():
    core = RaftCore("n1", ["n1"], Log(), term=1, leader="n1", isr_timeout=ISR_TIMEOUT,
                    heartbeat_interval=HEARTBEAT, max_batch_entries=10, now=0)
    entry = core.propose({"op": "put"})
    core.set_durable(entry["index"])
    assert core.commit_index == entry["index"]
    assert core.acknowledged_index(entry["index"], "all") == entry["index"]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2 ** 32), steps=st.integers(10, 120))
def test_random_drops_never_lose_a_committed_entry_and_logs_match(seed, steps):
    """With messages and answers dropped at random and followers going down and up,
    every committed entry is on a majority, and followers' logs are prefixes of the leader's."""
    rng = random.Random(seed)
    cluster = SimulatedCluster(size=rng.choice([3, 5]))
    proposed = 0
    for _ in range(steps):
        action = rng.random()
        if action < 0.3:
            proposed += 1
            cluster.propose(f"v{proposed}")
        elif action < 0.4:
            peer = rng.choice(cluster.names[1:])
            cluster.down.symmetric_difference_update({peer})
        elif action < 0.5:
            cluster.advance(rng.uniform(0, ISR_TIMEOUT))
        else:
            peer = rng.choice(cluster.names[1:])
            cluster.deliver(peer, drop_response=rng.random() < 0.2)
        leader = cluster.leader
        holders = 1 + sum(1 for name in cluster.names[1:]
                          if cluster.cores[name].log.last_index >= leader.commit_index)
        assert holders >= leader.quorum or leader.commit_index == 0
        for name in cluster.names[1:]:
            follower = cluster.cores[name]
            assert values(follower) == values(leader)[:follower.log.last_index]
            assert follower.commit_index <= leader.commit_index
    assert len(cluster.leader.log.entries) == proposed


def test_the_leader_never_commits_past_its_own_disk():
    cluster = SimulatedCluster()
    entry = cluster.leader.propose({"op": "put", "value": "a"})  # not yet fsync'ed by the leader
    cluster.round()
    assert cluster.leader.commit_index < entry["index"], "two followers alone must not commit it"
    cluster.leader.set_durable(entry["index"])
    assert cluster.leader.commit_index == entry["index"]


def test_a_follower_that_answers_but_cannot_take_entries_leaves_the_in_sync_set():
    cluster = SimulatedCluster()
    for value in "abc":
        cluster.propose(value)
        cluster.round()
    cluster.cores["n3"] = cluster._core("n3", 0)
    cluster.applied["n3"] = 0
    cluster.leader.log.compact(3, cluster.leader.log.term_at(3))  # entries it needs are gone
    index = cluster.propose("d")
    for _ in range(5):
        cluster.advance(ISR_TIMEOUT / 4)
        cluster.round()
    assert not cluster.leader.progress["n3"].in_sync
    assert cluster.leader.commit_index == index
    request = cluster.leader.append_request("n3", cluster.now)
    assert request.get("install") is True, "the leader asks for a state copy once its log cannot help"
