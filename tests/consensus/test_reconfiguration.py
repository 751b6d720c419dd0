"""Membership changes on the simulated network: config entries, learners, promotion, removal, and the
rules that keep one change at a time safe (dissertation §4.1-4.3)."""

from __future__ import annotations

import random

import pytest

from badkv.consensus.core import Core
from badkv.consensus.log import Log
from badkv.consensus.membership import Membership, MembershipError, config_entry
from badkv.consensus.messages import AppendRequest, VoteRequest
from badkv.testing.sim import SimNetwork


def settled(size: int = 3, **settings) -> SimNetwork:
    settings.setdefault("leader_syncs_at_once", True)
    network = SimNetwork(size, **settings)
    assert network.settle()
    return network


def voters(network: SimNetwork) -> list[str]:
    return list(network.leader.core.membership.voters)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_a_new_node_joins_as_a_learner_catches_up_and_is_promoted(size):
    network = settled(size)
    network.propose("before")
    name = network.add()
    assert network.leader.core.membership.role_of(name) == "learner"
    assert network.settle(), "the cluster did not take the learner in"
    assert voters(network)[-1] == name
    assert network.values(name) == network.values("n1")  # the learner got the whole log
    network.propose("after")
    assert network.settle() and network.values(name)[-1] == "after"


def test_clusters_grow_from_one_to_seven_and_shrink_back_one_server_at_a_time():
    network = settled(1)
    for size in range(2, 8):
        assert network.add() is not None and network.settle(600)
        assert len(voters(network)) == size
        network.propose(f"at {size}")
        assert network.settle()
    assert network.add() is not None and network.settle(600)  # an eighth node stays a learner
    assert len(voters(network)) == 7 and "n8" in network.leader.core.membership.learners
    for name in ["n8", "n7", "n6", "n5", "n4", "n3", "n2"]:
        assert network.remove(name) and network.settle(600), f"removing {name}"
        network.propose(f"without {name}")
        assert network.settle()
    assert voters(network) == ["n1"] and network.leader.name == "n1"


def test_a_learner_never_counts_for_commit():
    network = settled(3)
    leader = network.leader.core
    assert network.add("n4", token_hash="h") == "n4"
    assert network.settle()
    network.crash("n2")
    network.crash("n3")
    index = network.propose("only the learner holds this")
    for _ in range(60):
        network.drain()
        network.tick()
    assert network.core("n4").log.last_index >= index, "the learner got the entry"
    assert network.core("n1").commit_index < index, "an entry committed on the leader and a learner alone"
    assert "n4" in network.core("n1").membership.learners, "a learner with an unused join token was promoted"


def test_one_change_at_a_time():
    network = settled(3)
    leader = network.leader.core
    leader.propose_membership(leader.membership.with_learner("n4", ""))
    with pytest.raises(MembershipError) as refused:
        leader.propose_membership(leader.membership.without("n3"))
    assert refused.value.kind == "pending" and "one change at a time" in str(refused.value)


def test_a_change_of_two_servers_is_refused():
    network = settled(3)
    leader = network.leader.core
    two = leader.membership.with_learner("n4", "").with_learner("n5", "")
    with pytest.raises(MembershipError, match="one server at a time"):
        leader.propose_membership(two)


def test_the_leader_commits_an_entry_of_its_term_before_its_first_change():
    network = settled(3)
    network.crash("n1")
    for _ in range(100):
        network.tick()
        for position in reversed(range(len(network.in_flight))):
            if not isinstance(network.in_flight[position].message, AppendRequest):
                network.deliver(position)  # votes go through, appends (and so the no-op's commit) do not
        if network.leader is not None:
            break
    core = network.leader.core
    assert core.commit_index < core.term_start_index
    with pytest.raises(MembershipError) as refused:
        core.propose_membership(core.membership.without("n1"))
    assert refused.value.kind == "not_ready"
    assert network.settle()
    assert network.remove("n1")


def test_a_configuration_applies_when_appended_and_reverts_when_cut():
    network = settled(3, leader_syncs_at_once=False)
    network.drain()
    leader = network.core("n1")
    leader.propose_membership(leader.membership.with_learner("n4", ""))
    network.flush("n1")
    position = next(i for i, e in enumerate(network.in_flight) if e.to == "n2" and isinstance(e.message, AppendRequest))
    network.deliver(position)
    assert "n4" in network.core("n2").membership.learners  # in its log, not committed: in effect
    assert network.core("n2").membership_pending
    network.crash("n1")  # its copy was never fsync'ed: only n2 holds the entry
    network.in_flight.clear()
    network.restart("n1")
    network.isolate("n2")
    for _ in range(300):
        network.tick()
        network.drain()
        if network.leader is not None:
            break
    assert network.leader.name in ("n1", "n3")
    network.heal()
    network.propose("overwrites")
    assert network.settle()
    assert "n4" not in network.core("n2").membership.nodes


def test_an_uncommitted_config_entry_cut_from_a_follower_gives_back_the_old_membership():
    follower = Core("n2", ["n1", "n2", "n3"], Log(), term=1, heartbeat_ticks=2, election_ticks=10, isr_ticks=20,
                    max_batch_entries=10, stamp=lambda: 0, rng=random.Random(1))
    grown = Membership.of(["n1", "n2", "n3"]).with_learner("n4", "a:1")
    change = dict(config_entry(grown, 5), index=1, term=1)
    follower.step(AppendRequest(1, "n1", 0, 0, [change], 0, 1, to="n2"))
    assert follower.membership == grown
    other = {"op": "noop", "tenant": "", "name": "", "value": b"", "timestamp": 0, "revision": 6, "index": 1, "term": 2}
    follower.step(AppendRequest(2, "n3", 0, 0, [other], 0, 2, to="n2"))
    assert follower.membership == Membership.of(["n1", "n2", "n3"])
    assert any("membership" in text for _, text in follower.ready().notes)


def test_a_removed_leader_leads_until_its_removal_commits_then_hands_over():
    network = settled(3)
    entry = network.core("n1").propose_membership(network.core("n1").membership.without("n1"))
    network.flush("n1")
    assert network.core("n1").is_leader  # still leading, not counting itself
    assert network.settle()
    assert network.leader.name in ("n2", "n3") and network.core("n1").commit_index >= entry["index"]
    assert network.core("n1").removed and not network.core("n1").is_leader
    network.propose("after the old leader left")
    assert network.settle()
    assert network.values(network.leader.name)[-1] == "after the old leader left"


def test_a_removed_node_takes_no_more_part_in_elections():
    network = settled(3)
    assert network.remove("n3") and network.settle()
    removed = network.core("n3")
    assert removed.removed, "n3 did not learn of its removal"
    network.isolate("n3")
    for _ in range(100):
        network.tick("n3")
    assert not any(isinstance(e.message, VoteRequest) and e.sender == "n3" for e in network.in_flight)
    assert removed.counters["pre_votes_started"] == 0
    network.heal()
    network.propose("two voters commit")
    assert network.settle()


def test_a_dead_removed_node_is_forgotten_by_the_leader():
    network = settled(3)
    network.crash("n3")
    assert network.remove("n3") and network.settle()
    for _ in range(60):
        network.tick()
        network.drain()
    assert "n3" not in network.core("n1").progress


def test_learners_are_not_asked_for_votes():
    network = settled(3)
    leader = network.leader.core
    assert network.add("n4", token_hash="h") == "n4"
    assert network.settle()
    network.crash("n1")
    for _ in range(200):
        network.tick()
        assert not any(isinstance(e.message, VoteRequest) and e.to == "n4" for e in network.in_flight)
        network.drain()
        if network.leader is not None:
            break
    assert network.leader is not None and network.leader.name in ("n2", "n3")
    assert network.core("n4").counters["elections_started"] == 0


def test_a_learner_cannot_be_handed_leadership():
    network = settled(3)
    leader = network.leader.core
    leader.propose_membership(leader.membership.with_learner("n4", "", token_hash="h", expires=0))
    with pytest.raises(ValueError, match="learner"):
        leader.transfer_leadership("n4")


def test_a_used_join_token_lets_the_learner_be_promoted():
    network = settled(3)
    leader = network.leader.core
    assert network.add("n4", token_hash="h") == "n4"
    assert network.settle()
    assert "n4" in leader.membership.learners
    leader.propose_membership(leader.membership.token_used("n4"))
    assert network.settle()
    assert "n4" in network.leader.core.membership.voters


def test_compaction_keeps_the_membership_and_an_install_carries_it():
    network = settled(3)
    assert network.add() and network.settle()
    network.propose("x")
    assert network.settle()
    leader = network.core("n1")
    grown = leader.membership
    leader.compact(leader.commit_index)
    assert leader.base_membership == grown and leader.membership == grown
    progress = leader.progress["n2"]
    progress.next_index, progress.inflight, progress.send_now = 1, False, True
    request = leader._append_request("n2", progress)
    assert request.install and Membership.from_wire(AppendRequest.from_wire(request.to_wire()).membership) == grown
    fresh = Core("n9", ["n1"], Log(), term=0, heartbeat_ticks=2, election_ticks=10, isr_ticks=20,
                 max_batch_entries=10, stamp=lambda: 0, rng=random.Random(1))
    fresh.restore(request.prev_index, request.prev_term, grown)
    assert fresh.membership == grown and fresh.base_membership == grown


def test_a_node_restarts_with_the_membership_of_its_log():
    network = settled(3)
    assert network.add() and network.settle()
    grown = network.leader.core.membership
    network.crash("n2")
    network.restart("n2")
    assert network.core("n2").membership == grown
