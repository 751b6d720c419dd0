"""The consensus core's rules, one case at a time, on the simulated network (no sockets, no threads)."""

from __future__ import annotations

import random

import pytest

from badkv.consensus.core import Core
from badkv.consensus.log import Log
from badkv.consensus.messages import AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse
from badkv.testing.sim import SimNetwork

ISR_TICKS = 6


def make_network(size: int = 3, **settings) -> SimNetwork:
    """A cluster whose first member has won term 1 and whose followers hold its no-op."""
    settings.setdefault("leader_syncs_at_once", True)
    network = SimNetwork(size, isr_ticks=ISR_TICKS, **settings)
    assert network.settle() and network.leader.name == "n1" and network.core("n1").current_term == 1
    network.drain()
    return network


def position_of(network: SimNetwork, kind, *, to=None, sender=None) -> int | None:
    for position, envelope in enumerate(network.in_flight):
        if isinstance(envelope.message, kind) and to in (None, envelope.to) and sender in (None, envelope.sender):
            return position
    return None


def exchange(network: SimNetwork, peer: str, *, drop_answer: bool = False) -> AppendResponse | None:
    """Deliver the leader's next append to ``peer`` (ticking until one is due) and then its answer."""
    for _ in range(3 * ISR_TICKS):
        position = position_of(network, AppendRequest, to=peer)
        if position is not None:
            break
        network.tick("n1")
    else:
        return None  # the leader had nothing to send (the peer is cut off)
    network.deliver(position)
    answer = position_of(network, AppendResponse, sender=peer)
    response = network.in_flight[answer].message
    (network.drop if drop_answer else network.deliver)(answer)
    return response


def catch_up(network: SimNetwork, peer: str) -> None:
    """Exchange appends with ``peer`` until the leader has nothing more to send it."""
    for _ in range(20):
        if position_of(network, AppendRequest, to=peer) is None:
            return
        exchange(network, peer)


def full_round(network: SimNetwork) -> None:
    """One exchange with every follower, then more until the leader has nothing left to send."""
    for peer in network.names[1:]:
        exchange(network, peer)
    for _ in range(10):
        for peer in network.names[1:]:
            catch_up(network, peer)
        if position_of(network, AppendRequest) is None:
            return


def advance(network: SimNetwork, ticks: int) -> None:
    """Move the leader's time on; what it sends meanwhile is lost."""
    for _ in range(ticks):
        network.core("n1").tick()
    network.in_flight = [e for e in network.in_flight if e.to == "n1"]
    for progress in network.core("n1").progress.values():
        progress.inflight = False


def test_an_entry_commits_only_once_every_in_sync_follower_holds_it():
    network = make_network()
    index = network.propose("a")
    leader = network.core("n1")
    assert leader.commit_index < index
    exchange(network, "n2")
    assert leader.commit_index < index, "a majority alone must not commit while n3 is in sync"
    exchange(network, "n3")
    assert leader.commit_index == index


def test_a_silent_follower_leaves_the_in_sync_set_and_the_majority_commits():
    network = make_network()
    network.isolate("n3")
    index = network.propose("a")
    exchange(network, "n2")
    leader = network.core("n1")
    assert leader.commit_index < index
    advance(network, ISR_TICKS + 1)
    assert not leader.progress["n3"].in_sync
    assert leader.commit_index == index
    exchange(network, "n2")
    assert leader.has_quorum()


def test_without_a_majority_nothing_commits_and_the_leader_knows_it_has_no_quorum():
    network = make_network()
    network.isolate("n1")
    index = network.propose("a")
    advance(network, ISR_TICKS + 1)
    assert network.core("n1").commit_index < index
    assert not network.core("n1").has_quorum()


def test_a_follower_that_comes_back_catches_up_and_rejoins_the_in_sync_set():
    network = make_network(max_batch_entries=3)
    network.isolate("n3")
    for value in "abcdefg":
        network.propose(value)
        exchange(network, "n2")
    advance(network, ISR_TICKS + 1)
    exchange(network, "n2")
    leader = network.core("n1")
    assert not leader.progress["n3"].in_sync
    network.heal()
    for _ in range(5):  # batches of 3 entries
        exchange(network, "n3")
    assert network.values("n3") == network.values("n1")
    assert leader.progress["n3"].in_sync
    assert max(network.nodes["n3"].applied) == leader.commit_index


def test_a_restarted_empty_follower_is_walked_back_to_the_start():
    network = make_network()
    for value in "abcd":
        network.propose(value)
        full_round(network)
        full_round(network)
    network.crash("n2")
    network.disks["n2"].entries.clear()  # its disk was replaced
    network.restart("n2")
    rejected = exchange(network, "n2")
    assert rejected.success is False
    for _ in range(3):
        exchange(network, "n2")
    assert network.values("n2") == network.values("n1")


def follower_core(name: str = "n2") -> Core:
    return Core(name, ["n1", "n2", "n3"], Log(), term=0, heartbeat_ticks=2, election_ticks=10,
                isr_ticks=ISR_TICKS, max_batch_entries=10, stamp=lambda: 0, rng=random.Random(1))


def test_a_conflicting_uncommitted_suffix_is_replaced():
    follower = follower_core()
    old = [{"index": 1, "term": 1, "value": "a"}, {"index": 2, "term": 1, "value": "stale"}]
    follower.step(AppendRequest(1, "n1", 0, 0, old, 1, 1, to="n2"))
    first = follower.ready()
    assert [entry["index"] for entry in first.entries] == [1, 2] and first.hard_state.term == 1
    assert [entry["value"] for entry in first.committed] == ["a"]
    follower.step(AppendRequest(2, "n1", 1, 1, [{"index": 2, "term": 2, "value": "b"}], 2, 2, to="n2"))
    ready = follower.ready()
    assert ready.truncate_from == 2
    assert [entry["value"] for entry in ready.entries] == ["b"]
    assert ready.messages[0].success and ready.messages[0].to == "n1"
    assert [entry["value"] for entry in follower.log.entries] == ["a", "b"]
    assert follower.commit_index == 2


def test_a_replaced_suffix_no_longer_counts_as_durable():
    """The log is durable only through the cut until the replacing entries are fsync'ed: were this node
    elected meanwhile, it would otherwise count itself for entries its disk does not hold yet."""
    follower = follower_core()
    old = [{"index": i, "term": 1, "value": f"old{i}"} for i in (1, 2, 3)]
    follower.step(AppendRequest(1, "n1", 0, 0, old, 0, 1, to="n2"))
    follower.ready()
    follower.persisted(3)
    assert follower.durable_index == 3
    follower.step(AppendRequest(2, "n1", 1, 1, [{"index": 2, "term": 2, "value": "new"}], 0, 2, to="n2"))
    assert follower.ready().truncate_from == 2
    assert follower.durable_index == 1
    follower.persisted(2)
    assert follower.durable_index == 2


def test_a_follower_answers_only_what_it_was_told_to_persist_first():
    follower = follower_core()
    follower.step(AppendRequest(1, "n1", 0, 0, [{"index": 1, "term": 1, "value": "a"}], 0, 1, to="n2"))
    ready = follower.ready()
    assert ready.hard_state is not None and ready.entries and ready.messages, "persist, then answer"
    assert not follower.has_ready()


def test_a_stale_leader_is_refused_with_the_newer_term():
    follower = follower_core()
    follower.step(AppendRequest(5, "n1", 0, 0, [], 0, 1, to="n2"))
    follower.ready()
    follower.step(AppendRequest(4, "n1", 0, 0, [{"index": 1, "term": 4, "value": "x"}], 1, 2, to="n2"))
    ready = follower.ready()
    assert ready.messages[0].success is False and ready.messages[0].term == 5
    assert not ready.entries and follower.log.last_index == 0


def test_a_follower_never_rewrites_an_entry_it_applied_and_says_why_once():
    follower = follower_core()
    follower.step(AppendRequest(1, "n1", 0, 0, [{"index": 1, "term": 1, "value": "a"}], 1, 1, to="n2"))
    assert [entry["value"] for entry in follower.ready().committed] == ["a"]
    for seq in (2, 3):  # a leader that lost its disk, with another entry 1
        follower.step(AppendRequest(5, "n9", 0, 0, [{"index": 1, "term": 5, "value": "b"}], 1, seq, to="n2"))
    ready = follower.ready()
    assert [m.success for m in ready.messages] == [False, False]
    assert [entry["value"] for entry in follower.log.entries] == ["a"] and not ready.entries
    assert follower.counters["conflicts_with_applied"] == 2 and len(ready.notes) == 1
    assert "lost committed data" in ready.notes[0][1]


@pytest.mark.parametrize("acks, expected", [("all", 0), ("majority", 1)])
def test_acks_all_waits_for_followers_to_apply_acks_majority_does_not(acks, expected):
    network = make_network()
    full_round(network)  # the followers learn that the no-op committed
    index = network.propose("a")
    exchange(network, "n2")
    exchange(network, "n3")
    leader = network.core("n1")
    assert leader.commit_index == index
    # The followers hold the entry but have not yet heard that it committed.
    assert leader.acknowledged_index(index, acks) == (index if expected else index - 1)
    full_round(network)
    assert leader.acknowledged_index(index, acks) == index


def test_read_index_needs_a_majority_to_answer_a_fresh_round():
    network = make_network()
    full_round(network)
    leader = network.core("n1")
    read_index, seq = leader.read_index()
    assert read_index == leader.commit_index
    assert not leader.confirmed_by_majority(seq)
    network.isolate("n3")
    network.tick("n1")  # the read round goes out at once
    exchange(network, "n2")
    assert leader.confirmed_by_majority(seq)


def test_a_read_round_sends_to_every_idle_follower_at_once():
    network = make_network()
    full_round(network)
    assert position_of(network, AppendRequest) is None
    network.core("n1").read_index()
    network.tick("n1")
    assert {e.to for e in network.in_flight if isinstance(e.message, AppendRequest)} == {"n2", "n3"}


def test_a_read_does_not_wait_for_an_append_in_flight():
    """The append the followers hold (their disks are slow, say) stays unanswered: a heartbeat sent for the
    read confirms leadership on its own."""
    network = make_network()
    full_round(network)
    leader = network.core("n1")
    network.propose("a")
    assert position_of(network, AppendRequest, to="n2") is not None  # in flight, and it stays so
    _, seq = leader.read_index()
    network.tick("n1")
    heartbeats = [e for e in network.in_flight if isinstance(e.message, Heartbeat)]
    assert {e.to for e in heartbeats} == {"n2", "n3"}
    network.deliver(network.in_flight.index(heartbeats[0]))  # one follower answers the heartbeat only
    network.deliver(position_of(network, HeartbeatResponse))
    assert leader.confirmed_by_majority(seq)
    assert position_of(network, AppendRequest, to="n2") is not None or position_of(network, AppendRequest,
                                                                                  to="n3") is not None


def test_a_read_behind_an_append_without_entries_waits_for_the_next_append_and_sends_no_heartbeat():
    """An empty append in flight (the previous read's round) waits for no disk: the next read's round is
    the append sent when it is answered, not a heartbeat beside it."""
    network = make_network()
    full_round(network)
    leader = network.core("n1")
    leader.read_index()
    network.tick("n1")
    first_round = [e for e in network.in_flight if isinstance(e.message, AppendRequest)]
    assert {e.to for e in first_round} == {"n2", "n3"} and not any(e.message.entries for e in first_round)
    _, seq = leader.read_index()  # while the first round is on its way
    network.tick("n1")
    assert not any(isinstance(e.message, Heartbeat) for e in network.in_flight)
    assert not leader.confirmed_by_majority(seq)
    exchange(network, "n2")  # the first round's answer: the read's own round goes out at once
    assert not leader.confirmed_by_majority(seq)
    exchange(network, "n2")
    assert leader.confirmed_by_majority(seq)


def test_a_single_node_leads_at_once_and_commits_on_its_own():
    core = Core("n1", ["n1"], Log(), term=0, heartbeat_ticks=2, election_ticks=10, isr_ticks=ISR_TICKS,
                max_batch_entries=10, stamp=lambda: 7, rng=random.Random(1))
    assert core.is_leader and core.current_term == 1
    entry = core.propose({"op": "put"})
    core.persisted(entry["index"])
    assert core.commit_index == entry["index"]
    assert core.acknowledged_index(entry["index"], "all") == entry["index"]
    assert [e["op"] for e in core.ready().committed] == ["noop", "put"]


def test_the_leader_never_commits_past_its_own_disk():
    network = make_network(leader_syncs_at_once=False)
    index = network.propose("a")  # not yet fsync'ed by the leader
    full_round(network)
    leader = network.core("n1")
    assert leader.commit_index < index, "two followers alone must not commit it"
    network.fsync("n1")
    assert leader.commit_index == index


def test_a_follower_that_answers_but_cannot_take_entries_leaves_the_in_sync_set():
    network = make_network()
    for value in "abc":
        network.propose(value)
        full_round(network)
    network.crash("n3")
    network.disks["n3"].entries.clear()
    network.restart("n3")
    leader = network.core("n1")
    leader.compact(4)  # entries it needs are gone
    index = network.propose("d")
    for _ in range(4):
        advance(network, ISR_TICKS // 2)
        full_round(network)
    assert not leader.progress["n3"].in_sync
    assert leader.commit_index == index
    network.in_flight.clear()
    leader.progress["n3"].inflight = False
    [request] = [message for message in leader.ready().messages if message.to == "n3"]
    assert request.install is True, "the leader asks for a state copy"


def test_a_follower_asked_to_install_says_so_in_its_ready_and_restore_moves_its_log_on():
    follower = follower_core()
    follower.step(AppendRequest(1, "n1", 10, 1, [], 10, 1, install=True, to="n2"))
    ready = follower.ready()
    assert ready.install == (10, 1, None) and ready.messages[0].success is False
    follower.restore(10, 1)
    assert (follower.log.base_index, follower.commit_index, follower.applied_index) == (10, 10, 10)
    follower.step(AppendRequest(1, "n1", 10, 1, [{"index": 11, "term": 1, "value": "x"}], 11, 2, to="n2"))
    ready = follower.ready()
    assert [entry["index"] for entry in ready.entries] == [11] and ready.messages[0].success


def test_a_leader_that_hears_of_a_newer_term_steps_down():
    network = make_network()
    network.crash("n2")
    network.disks["n2"].term = 7  # its disk says it saw a newer term
    network.restart("n2")
    full_round(network)
    leader = network.core("n1")
    assert not leader.is_leader and leader.current_term == 7 and network.disks["n1"].term == 7
    assert network.settle() and network.leader.core.current_term > 7


def test_failed_persistence_forgets_the_entries_and_their_messages():
    network = make_network()
    leader = network.core("n1")
    entry = leader.propose({"op": "put", "value": "lost", "revision": 99})
    ready = leader.ready()
    assert ready.entries == [entry] and {m.to for m in ready.messages} == {"n2", "n3"}
    leader.forget_unpersisted(entry["index"], ready.messages)
    assert leader.log.last_index == entry["index"] - 1
    assert all(not progress.inflight for progress in leader.progress.values())
