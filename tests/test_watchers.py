"""Tests for badkv/watchers.py: who is woken by which change, once."""

import pytest

from badkv.records import Record
from badkv.watchers import Watcher, WatcherRegistry


def record(tenant: str, name: str, revision: int = 1) -> Record:
    return Record(tenant, name, b"v", revision, revision)


def counting(tenant, prefix=""):
    calls = []
    return Watcher(tenant, prefix, lambda: calls.append(1)), calls


@pytest.mark.parametrize("tenant, prefix, changed, wakes", [
    (None, "", ("t1", "a"), True),
    ("t1", "", ("t1", "a"), True),
    ("t1", "", ("t2", "a"), False),
    ("t1", "ab", ("t1", "abc"), True),
    ("t1", "ab", ("t1", "ab"), True),
    ("t1", "ab", ("t1", "a"), False),
    ("t1", "ab", ("t2", "abc"), False),
])
def test_a_change_wakes_exactly_the_watchers_whose_filter_it_matches(tenant, prefix, changed, wakes):
    registry = WatcherRegistry()
    watcher, calls = counting(tenant, prefix)
    registry.add(watcher)
    assert registry.changed([record(*changed)]) == int(wakes)
    assert (calls, watcher.woken, len(registry)) == (([1], True, 0) if wakes else ([], False, 1))


def test_a_watcher_wakes_once_and_leaves_the_registry():
    registry = WatcherRegistry()
    watcher, calls = counting("t1")
    registry.add(watcher)
    registry.changed([record("t1", "a"), record("t1", "b")])
    registry.changed([record("t1", "c")])
    assert calls == [1]
    assert not registry and not registry.remove(watcher)


def test_removed_watchers_are_not_woken():
    registry = WatcherRegistry()
    watcher, calls = counting("t1")
    registry.add(watcher)
    assert registry.remove(watcher)
    assert registry.changed([record("t1", "a")]) == 0 and calls == []


def test_a_watcher_is_registered_once():
    registry = WatcherRegistry()
    watcher, _ = counting(None)
    registry.add(watcher)
    with pytest.raises(ValueError):
        registry.add(watcher)


def test_a_prefix_needs_a_tenant():
    with pytest.raises(ValueError):
        Watcher(None, "a")


def test_a_watcher_due_at_a_revision_wakes_when_the_applied_revision_reaches_it():
    registry = WatcherRegistry()
    watcher, calls = counting("t1")
    registry.add(watcher, due_at=10)
    assert registry.applied(9) == 0 and calls == []
    assert registry.applied(10) == 1 and calls == [1]
    assert registry.applied(11) == 0


def test_wake_all_wakes_every_watcher_of_every_filter():
    registry = WatcherRegistry()
    watchers = [counting(tenant, prefix) for tenant, prefix in ((None, ""), ("t1", ""), ("t2", "p"))]
    for watcher, _ in watchers:
        registry.add(watcher)
    assert registry.wake_all() == 3
    assert [calls for _, calls in watchers] == [[1], [1], [1]] and not registry


def test_many_watchers_of_one_tenant_are_woken_by_one_change_and_the_others_stay():
    registry = WatcherRegistry()
    matching = [counting("t1", "a")[0] for _ in range(100)]
    others = [counting("t1", "b")[0] for _ in range(100)] + [counting("t2")[0] for _ in range(100)]
    for watcher in matching + others:
        registry.add(watcher)
    assert registry.changed([record("t1", "apple")]) == 100
    assert all(watcher.woken for watcher in matching) and not any(watcher.woken for watcher in others)
    assert len(registry) == 200
