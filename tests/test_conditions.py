"""Tests for badkv/conditions.py's OneShot: it wakes its waiter once, stays set, and times out unset."""

from __future__ import annotations

import threading

from badkv.conditions import OneShot


def test_a_one_shot_wakes_a_thread_that_waits_and_stays_set():
    shot, woken = OneShot(), []
    waiter = threading.Thread(target=lambda: woken.append(shot.wait(timeout=10)))
    waiter.start()
    assert not shot.is_set()
    shot.set()
    waiter.join(timeout=10)
    assert woken == [True] and shot.is_set()
    assert shot.wait(timeout=0) is True and shot.wait() is True  # set once, set for good
    shot.set()  # a second set changes nothing
    assert shot.wait(timeout=0) is True


def test_a_one_shot_not_set_times_out():
    shot = OneShot()
    assert shot.wait(timeout=0.01) is False
    assert shot.wait(timeout=0) is False and not shot.is_set()
    shot.set()
    assert shot.wait(timeout=0) is True
