"""Elections on the simulated network: who leads, when, and who must not (Raft §5.2, §5.4.1; the
dissertation's pre-vote §9.6, check-quorum §6.2 and leadership transfer §3.10)."""

from __future__ import annotations

import random

import pytest

from badkv.consensus.core import Core
from badkv.consensus.log import Log
from badkv.consensus.messages import AppendRequest, TimeoutNow, VoteRequest, VoteResponse
from badkv.testing.sim import SimNetwork

ELECTION_TICKS = 10


def run(network: SimNetwork, ticks: int) -> None:
    """Let the cluster work for ``ticks`` ticks: every message in flight is delivered each tick."""
    for _ in range(ticks):
        network.drain()
        network.tick()
        for name in network.names:
            network.fsync(name)
    network.drain()


def voter(name: str = "n2", log: Log | None = None, term: int = 0) -> Core:
    return Core(name, ["n1", "n2", "n3"], log or Log(), term=term, heartbeat_ticks=2,
                election_ticks=ELECTION_TICKS, isr_ticks=20, max_batch_entries=10, stamp=lambda: 0,
                rng=random.Random(7))


def log_of(*terms: int) -> Log:
    log = Log()
    log.append([{"index": index, "term": term, "revision": index} for index, term in enumerate(terms, 1)])
    return log


@pytest.mark.parametrize("size", [1, 3, 5])
def test_a_fresh_cluster_elects_its_first_member_in_term_1(size):
    network = SimNetwork(size)
    assert network.settle()
    assert network.leader.name == "n1" and network.leader.core.current_term == 1
    assert all(network.core(name).leader == "n1" for name in network.names)


def test_a_dead_leader_is_replaced_in_the_next_term_and_nothing_committed_is_lost():
    network = SimNetwork(3, leader_syncs_at_once=True)
    assert network.settle()
    for value in "abc":
        network.propose(value)
    assert network.settle()
    network.crash("n1")
    assert network.settle()
    assert network.leader.name in ("n2", "n3") and network.leader.core.current_term == 2
    assert network.values(network.leader.name) == ["a", "b", "c"]
    network.restart("n1")
    assert network.settle() and network.core("n1").leader == network.leader.name


def test_a_vote_is_persisted_before_it_is_answered_and_given_once_per_term():
    node = voter()
    node.step(VoteRequest(1, "n1", 0, 0, to="n2"))
    ready = node.ready()
    assert ready.hard_state.term == 1 and ready.hard_state.voted_for == "n1"
    assert [m.granted for m in ready.messages] == [True], "the answer travels in the Ready that persists it"
    node.step(VoteRequest(1, "n3", 0, 0, to="n2"))
    assert [m.granted for m in node.ready().messages] == [False]


def test_a_candidate_with_a_shorter_or_older_log_is_refused():
    node = voter(log=log_of(1, 2))
    node.step(VoteRequest(3, "n1", 5, 1, to="n2"))  # longer, but its last term is older
    node.step(VoteRequest(4, "n3", 1, 2, to="n2"))  # same last term, shorter
    assert [m.granted for m in node.ready().messages] == [False, False]
    node.step(VoteRequest(5, "n1", 2, 2, to="n2"))  # as up to date as the voter
    assert [m.granted for m in node.ready().messages] == [True]


def test_a_pre_vote_changes_no_term_and_no_vote():
    node = voter(term=3)
    node.step(VoteRequest(4, "n1", 0, 0, pre_vote=True, to="n2"))
    ready = node.ready()
    assert ready.hard_state is None and node.current_term == 3 and node.voted_for is None
    assert [(m.granted, m.term) for m in ready.messages] == [(True, 4)]


def test_a_follower_that_hears_from_its_leader_refuses_votes_without_changing_its_term():
    node = voter(term=1)
    node.step(AppendRequest(1, "n1", 0, 0, [], 0, 1, to="n2"))
    node.ready()
    node.step(VoteRequest(2, "n3", 0, 0, pre_vote=True, to="n2"))
    node.step(VoteRequest(9, "n3", 0, 0, to="n2"))
    ready = node.ready()
    assert [m.granted for m in ready.messages] == [False, False]
    assert node.current_term == 1 and node.leader == "n1" and ready.hard_state is None
    assert node.counters["pre_votes_refused"] == 1
    node.step(VoteRequest(2, "n3", 0, 0, transfer=True, to="n2"))  # a campaign the leader asked for
    assert [m.granted for m in node.ready().messages] == [True]


def test_with_pre_vote_a_follower_back_from_a_partition_leaves_the_term_unchanged():
    network = SimNetwork(3)
    run(network, 30)
    term = network.leader.core.current_term
    network.isolate("n3")
    run(network, 10 * ELECTION_TICKS)  # n3 asks for pre-votes again and again, and never raises its term
    assert network.core("n3").counters["pre_votes_started"] >= 3
    assert network.core("n3").current_term == term
    network.heal()
    run(network, 5 * ELECTION_TICKS)
    assert [network.core(name).current_term for name in network.names] == [term] * 3
    assert network.leader.name == "n1" and network.converged()


def test_an_isolated_leader_steps_down_within_two_election_timeouts_and_the_majority_elects():
    network = SimNetwork(3)
    run(network, 30)
    network.isolate("n1")
    run(network, ELECTION_TICKS)
    assert network.core("n1").is_leader, "a silence of one election timeout (a slow disk) is tolerated"
    run(network, ELECTION_TICKS + 2)
    assert not network.core("n1").is_leader, "check-quorum: it heard from nobody for two election timeouts"
    assert network.leader.name in ("n2", "n3") and network.leader.core.current_term == 2
    network.heal()
    run(network, 5 * ELECTION_TICKS)
    assert network.converged() and network.core("n1").current_term == 2


def test_a_candidate_that_hears_from_the_leader_of_its_term_follows_it():
    node = voter(term=1)
    for _ in range(3 * ELECTION_TICKS):
        node.tick()
    node.ready()
    node.step(VoteResponse(2, True, pre_vote=True, sender="n3",
                           reply_to=VoteRequest(2, "n2", 0, 0, pre_vote=True)))
    assert node.current_term == 2 and node.campaign == "vote"
    node.step(AppendRequest(2, "n3", 0, 0, [], 0, 1, to="n2"))
    assert node.role.value == "follower" and node.leader == "n3"


def test_leadership_moves_to_the_named_follower_in_one_term():
    network = SimNetwork(3, leader_syncs_at_once=True)
    assert network.settle()
    network.propose("a")
    network.transfer("n3")
    run(network, 3)
    assert network.leader.name == "n3" and network.leader.core.current_term == 2
    assert network.values("n3") == ["a"]


def test_a_transfer_catches_a_lagging_target_up_before_it_hands_over():
    network = SimNetwork(3, leader_syncs_at_once=True)
    assert network.settle()
    network.isolate("n3")
    for value in "abc":
        network.propose(value)
    run(network, 3)
    network.heal()
    leader = network.core("n1")
    leader.transfer_leadership("n3")
    assert not any(isinstance(e.message, TimeoutNow) for e in network.in_flight), "not before n3 caught up"
    run(network, 5)
    assert network.leader.name == "n3" and network.values("n3") == ["a", "b", "c"]


def test_a_transfer_waits_until_every_write_in_flight_is_acknowledged():
    network = SimNetwork(3, leader_syncs_at_once=True)
    assert network.settle()
    network.propose("a")
    network.core("n1").transfer_leadership("n2")
    network.drain(2)  # the appends carrying "a" arrive; n2 is caught up, but "a" is not yet applied everywhere
    assert not any(isinstance(e.message, TimeoutNow) for e in network.in_flight)
    assert network.propose("b") is None, "no proposals while leadership moves"
    run(network, 3)
    assert network.leader.name == "n2" and network.values("n2") == ["a"]


def test_a_transfer_to_a_dead_follower_gives_up_after_an_election_timeout_and_the_leader_stays():
    network = SimNetwork(3, leader_syncs_at_once=True)
    assert network.settle()
    network.crash("n3")
    network.propose("a")
    network.core("n1").transfer_leadership("n3")
    run(network, ELECTION_TICKS + 1)
    leader = network.core("n1")
    assert leader.is_leader and not leader.transferring and leader.current_term == 1


@pytest.mark.parametrize("target, message", [("n1", "is the leader already"), ("n9", "not a member")])
def test_a_transfer_to_itself_or_a_stranger_is_refused(target, message):
    network = SimNetwork(3)
    assert network.settle()
    with pytest.raises(ValueError, match=message):
        network.core("n1").transfer_leadership(target)
    with pytest.raises(ValueError, match="not the leader"):
        network.core("n2").transfer_leadership(None)


def test_the_five_node_cluster_survives_two_crashed_members():
    network = SimNetwork(5, leader_syncs_at_once=True)
    assert network.settle()
    network.propose("a")
    assert network.settle()
    network.crash("n1")
    network.crash("n2")
    assert network.settle()
    network.propose("b")
    assert network.settle()
    assert network.values(network.leader.name) == ["a", "b"]


@pytest.mark.parametrize("seed", range(10))
def test_a_follower_without_a_committed_entry_cannot_win(seed):
    """n3 misses an entry a bare majority committed, then the leader dies: whichever of n2 and n3 times
    out first, only n2 (which holds the entry) can win, so the entry survives (Raft §5.4.1)."""
    network = SimNetwork(3, isr_ticks=1, leader_syncs_at_once=True, seed=seed)
    assert network.settle()
    network.drain()
    network.isolate("n3")
    index = network.propose("a")
    for _ in range(5):
        network.drain()
        network.tick("n1")
    assert network.core("n1").commit_index >= index
    network.crash("n1")
    network.heal()
    for _ in range(6 * ELECTION_TICKS):
        network.drain()
        network.tick("n2")
        network.tick("n3")
    assert network.leader.name == "n2" and network.values("n3") == ["a"]


def deliver_all_but(network: SimNetwork, held: type) -> None:
    """Deliver everything in flight except messages of type ``held`` (left where they are)."""
    position = 0
    while position < len(network.in_flight):
        if isinstance(network.in_flight[position].message, held):
            position += 1
        else:
            network.deliver(position)


@pytest.mark.parametrize("with_heartbeats", [True, False])
def test_appends_stuck_on_slow_disks_cost_no_election_while_heartbeats_get_through(with_heartbeats, monkeypatch):
    """Every follower's disk stalls (its append answers wait) for three election timeouts: the leader's
    heartbeats, answered without the disk, keep it leading and the followers from standing."""
    network = SimNetwork(3)
    run(network, 30)
    leader, term = network.leader.name, network.leader.core.current_term
    pre_votes = sum(network.core(name).counters["pre_votes_started"] for name in network.names)
    if not with_heartbeats:  # the check can fail: without heartbeats the stall costs the leadership
        monkeypatch.setattr(Core, "_heartbeat", lambda self, peer, progress: None)
    network.propose("during the stall")
    for _ in range(3 * ELECTION_TICKS):
        network.tick()
        deliver_all_but(network, AppendRequest)
    still_leading = network.leader is not None and network.leader.name == leader
    assert still_leading is with_heartbeats
    if with_heartbeats:
        assert [network.core(name).current_term for name in network.names] == [term] * 3
        assert sum(network.core(name).counters["pre_votes_started"] for name in network.names) == pre_votes
        run(network, 10)  # the disks answer again
        assert network.converged() and "during the stall" in network.values(leader)
