"""Tests for badkv/consensus/progress.py: which followers leave the in-sync set, and that each is named once;
which ReadIndex rounds a majority confirmed."""

import random

import pytest

from badkv.consensus.progress import Tracker


def test_evict_silent_names_each_follower_it_evicts_once():
    tracker = Tracker(["n2", "n3"], next_index=1)
    tracker.peers["n3"].ticks_since_ack = 5
    assert tracker.evict_silent(isr_ticks=4) == ["n3"]
    assert not tracker.peers["n3"].in_sync and tracker.peers["n2"].in_sync
    assert tracker.evict_silent(isr_ticks=4) == []  # already out: no second line in the log
    assert tracker.peers["n3"].evictions == 1


@pytest.mark.parametrize("voters, learners, self_votes", [
    (["n2", "n3"], [], True), (["n2", "n3", "n4", "n5"], ["n6"], True), (["n2", "n3"], [], False), ([], [], True),
    (["n2"], [], False),
])
def test_confirmed_through_is_the_highest_call_number_a_majority_confirmed(voters, learners, self_votes):
    """A read waits for ``confirmed_through() >= seq``: the same answer as asking each number in turn."""
    rng = random.Random(7)
    tracker = Tracker(voters, next_index=1, learners=learners, self_votes=self_votes)
    for _ in range(200):
        for progress in tracker.peers.values():
            progress.acked_seq = rng.randrange(10)
        through = tracker.confirmed_through()
        assert [tracker.confirmed_by_majority(seq) for seq in range(1, 12)] == [seq <= through for seq in range(1, 12)]
