"""The applier's acknowledgements, with the node around it reduced to what it reads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from badkv.cluster.applier import Applier


class FakeCore:
    """A leader whose ack rule holds through ``acknowledged`` (set by the test)."""

    is_leader = True

    def __init__(self, acknowledged: int):
        self.acknowledged = acknowledged

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
