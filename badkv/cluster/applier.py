"""Applying committed entries to the store, and waking whoever waits for that.

The leader builds each write's Record once, when it admits the write; the
record waits in ``pending`` until its entry commits and is then the very object
the store holds. A writer waits on an event of its own, and so does a
linearizable read on the leader for its round (``ReadWaiter``): progress wakes
exactly who can go on, not every waiting thread to look again. Writers of a busy
key and leadership changes wait on one condition.

A write's entry can also be lost: if its leader is deposed before the entry
reaches a majority, the next leader's log replaces it. The writer then learns
that it did not take effect (the entry at its index is cut, or another one is
applied there) instead of waiting for its timeout.
"""

from __future__ import annotations

import collections

from badkv import tracing
from badkv.conditions import OneShot, QuietCondition
from badkv.records import Key, Record
from badkv.leases import records_of_lease_entry
from badkv.txn import records_of_entry


class AckWaiter:
    """One writer waiting for its entry (index and revision)."""

    __slots__ = ("index", "revision", "event", "applied", "decided")

    def __init__(self, index: int, revision: int):
        self.index, self.revision = index, revision
        self.event = OneShot()
        self.applied: bool | None = None  # True: its entry applied here; False: another one took its index
        # The outcome once known, kept: the ack rule's index can move back (a follower that rejoins the
        # in-sync set has not applied everything yet), and an acknowledged write stays acknowledged.
        self.decided: bool | None = None


class ReadWaiter:
    """A linearizable read on the leader waiting for a majority to confirm its round (call number ``seq``)."""

    __slots__ = ("seq", "event", "confirmed")

    def __init__(self, seq: int):
        self.seq = seq
        self.event = OneShot()
        self.confirmed: bool | None = None  # False: this node stopped leading (or stops) first


class Applier:
    """The node's state machine side; every method runs with the node lock held unless it says so."""

    def __init__(self, node):
        self.node = node
        self.pending: dict[Key, Record] = {}
        self.changed = QuietCondition(node.lock)  # read barriers and writers of a pending key wait on it
        self._waiters: list[AckWaiter] = []
        self._waiting_at: dict[int, list[AckWaiter]] = {}
        self._reads: collections.deque[ReadWaiter] = collections.deque()  # in call-number order

    def apply(self, entries: list[dict]) -> None:
        """Apply committed entries in log order."""
        node = self.node
        if node.snapshots.is_due():
            node.snapshots.due.set()
        for entry in entries:
            index = entry["index"]
            tracing.stamp(f"apply {index}")
            node.clock.observe(entry["revision"])
            for waiter in self._waiting_at.get(index, ()):
                waiter.applied = waiter.revision == entry["revision"]
            if entry["op"] in ("noop", "config"):  # (a config entry acts in the core, not in the store)
                node.store.apply_noop(entry["revision"], index)
                continue
            if entry["op"] == "gc":  # (badkv/cluster/tombstones.py)
                node.store.collect_tombstones(entry["horizon"], entry["revision"], index)
                continue
            if entry["op"] in ("txn", "lease"):
                self._apply_txn(entry, index)
                continue
            record = self._record_for(entry)
            node.store.apply(record, index=index)
            if self.pending.get(record.key) is record:
                del self.pending[record.key]

    def _apply_txn(self, entry: dict, index: int) -> None:
        """A transaction's (or a lease entry's) records, all in one step of the store; the leader's pending
        ones if it built them."""
        revision, records = entry["revision"], []
        built_records = records_of_entry(entry) if entry["op"] == "txn" else records_of_lease_entry(entry)
        for built in built_records:
            pending = self.pending.get(built.key)
            records.append(pending if pending is not None and pending.revision == revision else built)
        self.node.store.apply_all(records, revision, index)
        for record in records:
            if self.pending.get(record.key) is record:
                del self.pending[record.key]

    def _record_for(self, entry: dict) -> Record:
        """The record the leader built for ``entry`` when it admitted it, or a new one."""
        record = self.pending.get((entry["tenant"], entry["name"]))
        if record is not None and record.revision == entry["revision"]:
            return record
        return Record.from_entry(entry)

    def lost_from(self, index: int) -> None:
        """The log was cut from ``index``: the writes waiting there will never apply."""
        for waiter in self._waiters:
            if waiter.index >= index and waiter.applied is None:
                waiter.applied = False
        for key, record in list(self.pending.items()):
            if self.node.store.get(*key) is not record:
                del self.pending[key]  # (only the leader keeps pending records; a cut means it no longer leads)

    def _acknowledged_index(self) -> int | None:
        """How far the ack rule of ``-acks`` holds while this node leads; None once it does not lead."""
        node = self.node
        if not node.core.is_leader:
            return None
        return node.core.acknowledged_index(node.store.applied_index, node.config.acks)

    @staticmethod
    def _outcome_at(waiter: AckWaiter, acknowledged: int | None) -> bool | None:
        """True once the waiter's entry applied here and, while leading, the ack rule holds for it (a
        deposed leader knows only that it committed); False once lost; None while neither."""
        if waiter.applied is None:
            return None
        if not waiter.applied:
            return False
        return True if acknowledged is None or waiter.index <= acknowledged else None

    def progressed(self) -> None:
        """After any change: wake writers whose entry is acknowledged or lost, and read barriers."""
        if self._waiters:
            acknowledged = self._acknowledged_index()  # once, not once per waiter
            for waiter in list(self._waiters):
                if waiter.decided is None:
                    waiter.decided = self._outcome_at(waiter, acknowledged)
                if waiter.decided is not None:
                    self.forget(waiter)
                    tracing.stamp("ack-decided")
                    waiter.event.set()
        if self._reads:
            self._wake_reads()
        self.changed.notify_all()

    def expect_read(self, seq: int) -> ReadWaiter:
        """Register a read waiting for round ``seq`` (lock held, after ``Core.read_index``). Call numbers
        only grow, so the queue stays in order."""
        waiter = ReadWaiter(seq)
        self._reads.append(waiter)
        return waiter

    def _wake_reads(self) -> None:
        """Wake the reads whose round a majority confirmed; all of them, unconfirmed, once this node no
        longer leads (a round it sent before may still be answered, but no longer proves anything)."""
        core = self.node.core
        self._end_reads(core.confirmed_through() if core.is_leader else None)

    def _end_reads(self, through: float | None) -> None:
        """Wake, confirmed, the reads of rounds through ``through``; with None, every read, unconfirmed."""
        reads = self._reads
        while reads and (through is None or reads[0].seq <= through):
            waiter = reads.popleft()
            waiter.confirmed = through is not None
            waiter.event.set()

    def wait_read(self, waiter: ReadWaiter, timeout: float) -> bool:
        """Block (lock not held) until the read's round is confirmed (True), or not within ``timeout``,
        or this node stopped leading (False)."""
        if waiter.event.wait(timeout):
            return bool(waiter.confirmed)
        with self.node.lock:
            if waiter.confirmed is None:
                waiter.confirmed = False
                self._reads.remove(waiter)
            return waiter.confirmed

    def expect(self, index: int, revision: int) -> AckWaiter:
        """Register a writer for entry ``index`` (lock held, before the entry can apply)."""
        waiter = AckWaiter(index, revision)
        self._waiters.append(waiter)
        self._waiting_at.setdefault(index, []).append(waiter)
        return waiter

    def outcome(self, waiter: AckWaiter) -> bool | None:
        """True once acknowledged, False once lost, None while neither (lock held)."""
        if waiter.decided is None:
            waiter.decided = self._outcome_at(waiter, self._acknowledged_index())
        return waiter.decided

    def wait(self, waiter: AckWaiter, timeout: float) -> bool | None:
        """Block (lock not held) until the waiter's entry is acknowledged (True) or lost (False);
        None on timeout or stop."""
        node = self.node
        if waiter.event.wait(timeout) and waiter.decided is not None:
            return waiter.decided  # (``progressed`` decided and forgot it before it woke this thread)
        with node.lock:
            self.forget(waiter)
            if waiter.decided is None and node.stopping.is_set():
                return None
            return self.outcome(waiter)

    def forget(self, waiter: AckWaiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            at = self._waiting_at[waiter.index]
            at.remove(waiter)
            if not at:
                del self._waiting_at[waiter.index]

    def release_all(self) -> None:
        """Wake every waiter (the node is stopping)."""
        for waiter in self._waiters:
            waiter.event.set()
        self._end_reads(None)
        self.changed.notify_all()
