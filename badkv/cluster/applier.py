"""Applying committed entries to the store, and waking whoever waits for that.

The leader builds each write's Record once, when it admits the write; the
record waits in ``pending`` until its entry commits and is then the very object
the store holds. Writers wait on an event each, read barriers and writers of a
busy key on one condition: progress wakes exactly who can go on.
"""

from __future__ import annotations

import collections
import threading

from badkv.conditions import QuietCondition
from badkv.store import Key, Record


class Applier:
    """The node's state machine side; every method runs with the node lock held unless it says so."""

    def __init__(self, node):
        self.node = node
        self.pending: dict[Key, Record] = {}
        self.changed = QuietCondition(node.lock)  # read barriers and writers of a pending key wait on it
        self._ack_waiters: collections.deque[tuple[int, threading.Event]] = collections.deque()

    def apply(self, entries: list[dict]) -> None:
        """Apply committed entries in log order."""
        node = self.node
        if node.snapshots.is_due():
            node.snapshots.due.set()
        for entry in entries:
            node.clock.observe(entry["revision"])
            if entry["op"] == "noop":
                node.store.apply_noop(entry["revision"], entry["index"])
                continue
            record = self._record_for(entry)
            node.store.apply(record, index=entry["index"])
            if self.pending.get(record.key) is record:
                del self.pending[record.key]

    def _record_for(self, entry: dict) -> Record:
        """The record the leader built for ``entry`` when it admitted it, or a new one."""
        record = self.pending.get((entry["tenant"], entry["name"]))
        if record is not None and record.revision == entry["revision"]:
            return record
        return Record.from_entry(entry)

    def acknowledged(self, index: int) -> bool:
        """Whether the ack rule of ``-acks`` holds for entry ``index``."""
        node = self.node
        return node.core.acknowledged_index(node.store.applied_index, node.config.acks) >= index

    def progressed(self) -> None:
        """After any change: wake writers whose entry is acknowledged, and read barriers."""
        node = self.node
        acknowledged = node.core.acknowledged_index(node.store.applied_index, node.config.acks)
        while self._ack_waiters and self._ack_waiters[0][0] <= acknowledged:
            self._ack_waiters.popleft()[1].set()
        self.changed.notify_all()

    def wait_acknowledged(self, index: int, timeout: float) -> bool:
        """Block (lock not held) until entry ``index`` is acknowledged; False on timeout or stop."""
        node = self.node
        with node.lock:
            if self.acknowledged(index):
                return not node.stopping.is_set()
            waiter = (index, threading.Event())
            self._ack_waiters.append(waiter)  # appended in index order: proposals hold the lock
        waiter[1].wait(timeout)
        with node.lock:
            if waiter in self._ack_waiters:
                self._ack_waiters.remove(waiter)
            return self.acknowledged(index) and not node.stopping.is_set()

    def release_all(self) -> None:
        """Wake every waiter (the node is stopping)."""
        for _, event in self._ack_waiters:
            event.set()
        self.changed.notify_all()
