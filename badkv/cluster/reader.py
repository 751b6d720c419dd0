"""Reads at each consistency level: local, min_revision (read-your-writes), leader, linearizable.

A linearizable read follows ReadIndex (Ongaro's dissertation §6.4): note the
commit index, confirm leadership with a round that a majority answers, then
wait until that index is applied here. On a follower the leader does the first
two steps for it (``/cluster/v1/read-index``, one call for every read that
queued meanwhile, see cluster/batcher.py) and the read is served here, once
this node applied that index: the read costs the leader one small peer call
instead of a relayed request, and the follower's own answer.
"""

from __future__ import annotations

from badkv import tracing
from badkv.errors import NotFound, Timeout, Unavailable
from badkv.records import KeyPage, Record


class Reader:
    """The read path for ``node``."""

    def __init__(self, node):
        self.node = node

    def read(self, tenant: str, name: str, *, consistency: str, min_revision: int | None,
             timeout: float | None) -> Record:
        """The live record of a key at the asked consistency; NotFound if missing or deleted."""
        self._be_consistent(consistency, min_revision, timeout)
        record = self.node.store.get(tenant, name)
        if record is None or record.deleted:
            raise NotFound("no such key")
        return record

    def range(self, tenant: str, *, consistency: str, min_revision: int | None, timeout: float | None,
              **page) -> KeyPage:
        """A page of the tenant's live keys in name order (``Store.range``), at the asked consistency."""
        self._be_consistent(consistency, min_revision, timeout)
        return self.node.store.range(tenant, **page)

    def _be_consistent(self, consistency: str, min_revision: int | None, timeout: float | None) -> None:
        """Wait until this node may answer at ``consistency`` and has applied ``min_revision``."""
        node = self.node
        timeout = node.config.read_timeout if timeout is None else timeout
        if consistency == "linearizable" and not node.is_leader:
            self._follower_read_barrier(timeout)
        elif consistency in ("leader", "linearizable"):
            with node.lock:
                node.wait_until_serving(node.config.leader_wait)
            if consistency == "linearizable":
                self._read_barrier(timeout)
        if min_revision is not None and not node.store.wait_for_revision(min_revision, timeout):
            raise Timeout(f"revision {min_revision} was not applied here within {timeout:g}s",
                          applied_revision=node.store.applied_revision)

    def _read_barrier(self, timeout: float) -> None:
        """ReadIndex: confirm leadership with a majority round, then wait to apply the commit index."""
        node = self.node
        deadline = node.monotonic() + timeout
        read_index = self.confirmed_read_index(timeout)
        if not node.store.wait_for_index(read_index, max(0.0, deadline - node.monotonic())):
            raise Timeout("the leader did not apply its commit index in time")

    def _follower_read_barrier(self, timeout: float) -> None:
        """ReadIndex for a follower: the leader's confirmed commit index, then wait to apply it here."""
        node = self.node
        deadline = node.monotonic() + timeout
        read_index = node.forwarder.read_index(timeout)
        if not node.store.wait_for_index(read_index, max(0.0, deadline - node.monotonic())):
            raise Timeout(f"this node did not apply the leader's commit index {read_index} within {timeout:g}s",
                          applied_index=node.store.applied_index)

    def confirmed_read_index(self, timeout: float) -> int:
        """(On the leader.) The commit index as of now, once a majority confirmed this node still leads;
        a follower's read barrier asks for it."""
        node = self.node
        deadline = node.monotonic() + timeout
        tracing.stamp("read-lock-wait")
        with node.lock:
            tracing.stamp("read-locked")
            if not node.core.is_leader:
                raise Unavailable("this node stopped leading during the read", retry_after=1)
            read_index, seq = node.core.read_index()
            node.driver.run()  # the round goes out now, not at the next heartbeat
            tracing.stamp("read-round-sent")
            waiter = None if node.core.confirmed_by_majority(seq) else node.applier.expect_read(seq)
        confirmed = waiter is None or node.applier.wait_read(waiter, max(0.0, deadline - node.monotonic()))
        tracing.stamp("read-confirmed")
        if not confirmed:
            raise Unavailable("the leader could not confirm it still has a quorum", retry_after=1)
        return read_index
