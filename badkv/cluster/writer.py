"""A client's write on the leader: admit it, stamp it, log it, and wait until it is acknowledged.

A write is judged against applied state only: checked against a write still
in flight, a 412 could be answered for a value every read still shows (found
by the fault soak), so a write to a key with a write in flight waits for that
one to apply first. It is acknowledged by the rule of ``-acks``: once every
in-sync member applied it (``all``) or once it committed (``majority``). If
the leader is deposed meanwhile, the write is acknowledged once it applies
here, refused (503) once another entry takes its place, else 504.
"""

from __future__ import annotations

from badkv import tracing
from badkv.errors import BadkvError, NotLeader, Timeout, Unavailable
from badkv.records import Record, check_write


class PendingEntry:
    """An entry the leader logged and has not had acknowledged yet: what ``Writer.await_entry`` waits for
    (``record``: a write's stored record, else None)."""

    __slots__ = ("waiter", "appended", "outcome", "revision", "record")

    def __init__(self, waiter, appended: int, outcome: bool | None, revision: int, record: Record | None = None):
        self.waiter, self.appended, self.outcome, self.revision, self.record = (waiter, appended, outcome,
                                                                                revision, record)


class Writer:
    """The leader's write path for ``node``."""

    def __init__(self, node):
        self.node = node

    def write(self, op: str, tenant: str, name: str, value: bytes, timestamp: int | None,
              if_match: int | None, if_none_match: bool) -> Record:
        """Validate, stamp, replicate and apply one put or delete; return the stored record."""
        return self.finish(self.begin(op, tenant, name, value, timestamp, if_match, if_none_match))

    def write_batch(self, writes: list[dict]) -> list:
        """Several writes (``begin``'s keyword arguments each) at once, as a follower's proposal brings
        them: all are logged before one flush, then acknowledged together. Returns, in order, each
        write's Record or the BadkvError that refused it.

        A write to a key that has a write in flight waits for that one (``_admit``); the writes begun
        so far are flushed and finished first, so the batch never waits for an entry of its own that
        it has not flushed yet."""
        results: list = [None] * len(writes)
        begun: list[tuple[int, PendingEntry]] = []
        for position, write in enumerate(writes):
            if begun and (write["tenant"], write["name"]) in self.node.applier.pending:
                self._finish_all(begun, results)
                begun = []
            try:
                begun.append((position, self.begin(**write)))
            except BadkvError as error:
                results[position] = error
        self._finish_all(begun, results)
        return results

    def _finish_all(self, begun: list, results: list) -> None:
        if begun:
            try:
                self.make_durable(max(pending.appended for _, pending in begun))
            except BadkvError:
                pass  # each write's own finish raises it again
        for position, pending in begun:
            try:
                results[position] = self.finish(pending)
            except BadkvError as error:
                results[position] = error

    def begin(self, op: str, tenant: str, name: str, value: bytes, timestamp: int | None,
              if_match: int | None, if_none_match: bool) -> PendingEntry:
        """Admit, check, stamp and log one write (it goes out to the followers now)."""
        node = self.node
        key = (tenant, name)
        tracing.stamp("write-lock-wait")
        with node.lock:
            tracing.stamp("write-locked")
            self.admit((key,))
            current = node.store.get(tenant, name)
            revision = node.clock.next()
            timestamp = revision if timestamp is None else timestamp
            check_write(current, op, timestamp, if_match, if_none_match)
            value = value if op == "put" else b""
            node.tenants.admit_write(tenant, name, current, value, op)
            record = Record.build(tenant, name, value, timestamp, revision, op == "delete")
            entry = node.core.propose({"op": op, "tenant": tenant, "name": name, "value": value,
                                       "timestamp": timestamp, "revision": revision})
            pending = self.carry(entry, (record,))
            tracing.stamp("write-proposed")
        pending.record = record
        return pending

    def carry(self, entry: dict, records=()) -> PendingEntry:
        """(Lock held.) For an entry just proposed here (a write, a transaction, a lease change, a gc or
        membership entry): hold ``records`` as pending until it applies, register its waiter, and run
        the driver, which logs the entry and sends it to the followers. If the disk failed, undo both
        and raise Unavailable."""
        node = self.node
        pending = node.applier.pending
        for record in records:
            pending[record.key] = record
        waiter = node.applier.expect(entry["index"], entry["revision"])
        try:
            appended = node.driver.run().appended
        except Unavailable:
            node.applier.forget(waiter)
            for record in records:
                if pending.get(record.key) is record:
                    del pending[record.key]
            raise
        node.applier.progressed()
        outcome = node.applier.outcome(waiter)  # a single node in memory is done already
        return PendingEntry(waiter, appended or entry["index"], outcome, entry["revision"])

    def finish(self, pending: PendingEntry) -> Record:
        """Flush the log through the write's entry, wait until the ack rule holds; the stored record."""
        self.await_entry(pending)
        return pending.record

    def await_entry(self, pending: PendingEntry, what: str = "write") -> None:
        """(Lock not held.) Flush the log through ``pending``'s entry and wait until the ack rule holds for
        it; raise Unavailable if it was lost, Timeout if its outcome is unknown."""
        node, waiter, outcome = self.node, pending.waiter, pending.outcome
        if outcome is None:
            try:
                self.make_durable(pending.appended)
                tracing.stamp("write-wait")
                outcome = node.applier.wait(waiter, node.config.write_timeout)
                tracing.stamp("write-woken")
            finally:
                if waiter.decided is None:  # (a decided waiter was forgotten when it was decided)
                    with node.lock:
                        node.applier.forget(waiter)
        if outcome is False:
            raise Unavailable(f"the leader changed before the {what} was committed; it did not take effect",
                              retry_after=1)
        if outcome is None:
            raise Timeout(f"the {what} was not acknowledged in time; it may or may not take effect",
                          revision=pending.revision)

    def admit(self, keys, what: str = "write") -> None:
        """(Lock held.) Wait until this node can log a ``what`` (a write, a transaction, a lease change) on
        ``keys``: it leads with current state, a quorum answers it, and no earlier write to any of the keys
        is in flight; raise the error to answer if not."""
        node = self.node
        node.wait_until_serving(node.config.leader_wait)
        # A cluster of one has nobody to evict and is its own quorum.
        if node.core.voter_peers and not node.core.has_quorum():
            raise Unavailable("no quorum: too few members answer the leader", retry_after=2)
        pending = node.applier.pending
        if any(key in pending for key in keys) and not node.applier.changed.wait_for(
                lambda: not any(key in pending for key in keys) or node.stopping.is_set(),
                timeout=node.config.write_timeout):
            raise Unavailable(f"an earlier write to a key of this {what} is still being replicated", retry_after=1)
        if not node.core.is_leader or node.core.transferring:
            raise NotLeader(f"this node stopped leading while the {what} waited", leader=node.core.leader)

    def make_durable(self, index: int) -> None:
        """Group commit (lock not held): fsync this node's log through ``index``, then count it (a leader's
        writers, and a follower before it answers an append).

        A log that is durable through ``index`` already (in memory, or flushed by another writer
        who then counts it) needs nothing more, and of the writers one flush covered, the first to
        count it does so for all."""
        node = self.node
        if node.wal.durable_index >= index:
            return
        tracing.stamp("fsync-start")
        try:
            node.wal.flush_through(index)
        except Exception as error:
            raise node.storage_failed(error) from None
        tracing.stamp("fsync-end")
        if node.core.durable_index >= index:
            return  # the writer whose flush covered this entry counted it already
        with node.lock:
            node.core.persisted(node.wal.durable_index)
            node.driver.run()
            node.applier.progressed()
