"""Tests for badkv/security/instances.py: a restart changes a member's instance once and is accepted; two
processes under one name keep alternating and the later one is refused."""

import pytest

from badkv.errors import DuplicateMember
from badkv.security.instances import InstanceTracker


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tracker(clock):
    return InstanceTracker("n1", "me", clock=clock, window=10)


def hear(tracker, clock, sequence, step=0.1):
    for instance in sequence:
        clock.now += step
        tracker.observe("n3", instance, f"addr-{instance}")


def test_a_restart_with_stragglers_is_accepted(tracker, clock):
    # The old process's last in-flight answers may arrive among the new one's first calls.
    hear(tracker, clock, ["A"] * 20 + ["B", "A", "B", "B"] + ["B"] * 20)


def test_restarts_in_a_row_are_accepted(tracker, clock):
    hear(tracker, clock, ["A"] * 5 + ["B"] * 5 + ["C"] * 5 + ["D"] * 5 + ["E"] * 5)


def test_two_processes_alternating_are_refused_the_later_one_only(tracker, clock):
    # Three switches back to an instance heard before; the last was to the first process, which stays.
    hear(tracker, clock, ["A", "A", "B", "A", "A", "B", "A"])
    with pytest.raises(DuplicateMember, match="refusing B at addr-B") as refused:
        hear(tracker, clock, ["B"])
    assert refused.value.extra == {"member": "n3", "address": "addr-B"}
    hear(tracker, clock, ["A"])  # the first process keeps its place
    with pytest.raises(DuplicateMember):
        hear(tracker, clock, ["B"])


def test_the_other_instances_are_named_only_while_the_name_is_claimed_twice(tracker, clock):
    hear(tracker, clock, ["A", "B", "B", "A"])  # one switch back: could be a restart's straggler
    assert tracker.others_than_first("n3") is None
    hear(tracker, clock, ["B", "A"])
    assert tracker.others_than_first("n3") == "instance B at addr-B"
    clock.now += 11
    assert tracker.others_than_first("n3") is None
    assert tracker.others_than_first("n9") is None


def test_a_duplicate_that_stops_is_forgotten_after_the_window(tracker, clock):
    hear(tracker, clock, ["A", "B", "A", "B", "A"])
    with pytest.raises(DuplicateMember):
        hear(tracker, clock, ["B"])
    hear(tracker, clock, ["A"] * 110)  # 11 s of the first process alone
    hear(tracker, clock, ["B"])  # heard again after the window: taken as a restart


def test_after_a_restart_the_new_instance_keeps_its_place_against_a_duplicate(tracker, clock):
    hear(tracker, clock, ["old"] * 5 + ["new"] * 5)  # a restart, the old instance still remembered
    hear(tracker, clock, ["dup", "new", "dup", "new"])
    with pytest.raises(DuplicateMember, match="refusing dup"):
        hear(tracker, clock, ["dup"])
    hear(tracker, clock, ["new"])
    assert tracker.others_than_first("n3") == "instance dup at addr-dup"


def test_this_nodes_own_name_from_another_instance_is_refused(tracker):
    with pytest.raises(DuplicateMember, match="claims this node's name 'n1'") as refused:
        tracker.observe("n1", "other", "127.0.0.1:5000")
    assert refused.value.extra["address"] == "127.0.0.1:5000"
