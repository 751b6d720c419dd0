"""The applier's acknowledgements and read wake-ups, with the node around it reduced to what it reads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from badkv.cluster.applier import Applier


class FakeCore:
    """A leader whose ack rule holds through ``acknowledged`` (set by the test)."""

    is_leader = True

    def __init__(self, acknowledged: int):
        self.acknowledged = acknowledged
        self.through = 0  # the highest ReadIndex round a majority confirmed

    def confirmed_through(self) -> int:
        return self.through

    def acknowledged_index(self, leader_applied: int, acks: str) -> int:
        return min(self.acknowledged, leader_applied)


def make_applier(acknowledged: int) -> tuple[Applier, SimpleNamespace]:
    node = SimpleNamespace(lock=threading.Lock(), core=FakeCore(acknowledged), store=SimpleNamespace(applied_index=10),
                           config=SimpleNamespace(acks="all"), stopping=threading.Event())
    return Applier(node), node


def test_an_acknowledged_write_stays_acknowledged_when_the_ack_rule_moves_back():
    """A follower that rejoins the in-sync set has not applied everything yet, so the index the ack
    rule allows can go down; a writer already woken as acknowledged must still be told 202."""
    applier, node = make_applier(acknowledged=5)
    with node.lock:
        waiter = applier.expect(5, revision=123)
        waiter.applied = True
        applier.progressed()
    assert waiter.event.is_set()
    node.core.acknowledged = 3  # the rejoined follower has applied through 3 only
    assert applier.wait(waiter, timeout=1) is True


def test_a_write_is_not_acknowledged_before_the_ack_rule_holds_for_it():
    applier, node = make_applier(acknowledged=4)
    with node.lock:
        waiter = applier.expect(5, revision=123)
        waiter.applied = True
        applier.progressed()
        assert applier.outcome(waiter) is None
    assert not waiter.event.is_set()
    assert applier.wait(waiter, timeout=0.01) is None  # the writer answers 504


def test_a_lost_write_is_refused_and_a_stopping_node_leaves_undecided_writes_unknown():
    applier, node = make_applier(acknowledged=10)
    with node.lock:
        lost = applier.expect(5, revision=1)
        applier.lost_from(5)
        applier.progressed()
        undecided = applier.expect(5, revision=2)
    assert applier.wait(lost, timeout=1) is False
    node.stopping.set()
    with node.lock:
        applier.release_all()
    assert applier.wait(undecided, timeout=1) is None


def test_a_read_wakes_once_its_round_is_confirmed_and_later_rounds_wait_on():
    applier, node = make_applier(acknowledged=10)
    with node.lock:
        first, second = applier.expect_read(3), applier.expect_read(4)
        node.core.through = 2
        applier.progressed()
    assert not first.event.is_set() and not second.event.is_set()
    with node.lock:
        node.core.through = 3
        applier.progressed()
    assert applier.wait_read(first, timeout=1) is True
    assert not second.event.is_set()
    assert applier.wait_read(second, timeout=0.01) is False  # not confirmed in time: the read answers 503
    with node.lock:
        node.core.through = 4
        applier.progressed()  # (a round confirmed after the read gave up wakes nobody)
    assert second.confirmed is False


def test_reads_are_woken_unconfirmed_once_the_node_stops_leading_or_stops():
    applier, node = make_applier(acknowledged=10)
    with node.lock:
        deposed = applier.expect_read(5)
        node.core.is_leader = False
        applier.progressed()
    assert applier.wait_read(deposed, timeout=1) is False
    node.core.is_leader = True
    with node.lock:
        stopping = applier.expect_read(6)
        applier.release_all()
    assert applier.wait_read(stopping, timeout=1) is False
