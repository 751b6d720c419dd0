"""Tests for badkv/consensus/progress.py: which followers leave the in-sync set, and that each is named once."""

from badkv.consensus.progress import Tracker


def test_evict_silent_names_each_follower_it_evicts_once():
    tracker = Tracker(["n2", "n3"], next_index=1)
    tracker.peers["n3"].ticks_since_ack = 5
    assert tracker.evict_silent(isr_ticks=4) == ["n3"]
    assert not tracker.peers["n3"].in_sync and tracker.peers["n2"].in_sync
    assert tracker.evict_silent(isr_ticks=4) == []  # already out: no second line in the log
    assert tracker.peers["n3"].evictions == 1
