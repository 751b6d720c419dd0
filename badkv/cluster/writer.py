"""A client's write on the leader: admit it, stamp it, log it, and wait until it is acknowledged.

A write is judged against applied state only: checked against a write still
in flight, a 412 could be answered for a value every read still shows (found
by the fault soak), so a write to a key with a write in flight waits for that
one to apply first. It is acknowledged by the rule of ``-acks``: once every
in-sync member applied it (``all``) or once it committed (``majority``).
"""

from __future__ import annotations

from badkv.errors import NotLeader, Timeout, Unavailable
from badkv.store import Record, check_write


class Writer:
    """The leader's write path for ``node``."""

    def __init__(self, node):
        self.node = node

    def write(self, op: str, tenant: str, name: str, value: bytes, timestamp: int | None,
              if_match: int | None, if_none_match: bool) -> Record:
        """Validate, stamp, replicate and apply one put or delete; return the stored record."""
        node = self.node
        if not node.core.is_leader:
            raise NotLeader("this node is not the leader", leader=node.core.leader)
        node.check_serving()
        key = (tenant, name)
        with node.lock:
            # A cluster of one has nobody to evict and is its own quorum.
            if node.peers and not node.core.has_quorum():
                raise Unavailable("no quorum: too few members answer the leader", retry_after=2)
            if key in node.applier.pending and not node.applier.changed.wait_for(
                    lambda: key not in node.applier.pending or node.stopping.is_set(),
                    timeout=node.config.write_timeout):
                raise Unavailable("an earlier write to this key is still being replicated", retry_after=1)
            current = node.store.get(tenant, name)
            revision = node.clock.next()
            timestamp = revision if timestamp is None else timestamp
            check_write(current, op, timestamp, if_match, if_none_match)
            value = value if op == "put" else b""
            record = Record.build(tenant, name, value, timestamp, revision, op == "delete")
            entry = node.core.propose({"op": op, "tenant": tenant, "name": name, "value": value,
                                       "timestamp": timestamp, "revision": revision})
            node.applier.pending[key] = record
            try:
                appended = node.driver.run().appended
            except Unavailable:
                if node.applier.pending.get(key) is record:
                    del node.applier.pending[key]
                raise
            node.applier.progressed()
            acknowledged = node.applier.acknowledged(entry["index"])  # a single node in memory is done
        if not acknowledged:
            self._wait_acknowledged(appended or entry["index"], entry["index"], revision)
        return record

    def _wait_acknowledged(self, flush_through: int, index: int, revision: int) -> None:
        """Make the log durable here, then wait until the ack rule holds for ``index`` (or time out: 504)."""
        node = self.node
        self.make_durable(flush_through)
        if not node.applier.wait_acknowledged(index, node.config.write_timeout):
            raise Timeout("the write was not acknowledged in time; it may or may not take effect",
                          revision=revision)

    def make_durable(self, index: int) -> None:
        """Group commit (lock not held): fsync the leader's log through ``index``, then count it.

        A log that is durable through ``index`` already (in memory, or flushed by another writer
        who then counts it) needs nothing more."""
        node = self.node
        if node.wal.durable_index >= index:
            return
        try:
            node.wal.flush_through(index)
        except Exception as error:
            raise node.storage_failed(error) from None
        with node.lock:
            node.core.persisted(node.wal.durable_index)
            node.driver.run()
            node.applier.progressed()
