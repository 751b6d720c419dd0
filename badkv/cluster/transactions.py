"""A client's transaction on the leader: decide it, log its writes as one entry, wait until acknowledged.

It follows the write path (``writer.py``) with a set of keys in place of one:
it waits until no write to any key it compares, reads or writes is in flight,
then decides it against applied state under the node lock and proposes the
entry in the same hold of the lock. Every entry before it that touches those
keys has applied then, and none after it can be admitted until it applies, so
the compares see exactly the state at the entry's place in the log. The entry
carries the writes of the branch that ran (``badkv.txn``); a transaction with
no writes still goes through the log, which makes its compares and gets
linearizable like a write.
"""

from __future__ import annotations

import logging

from badkv.errors import NotLeader, Timeout, Unavailable
from badkv.store import DROPPED_TENANT
from badkv.txn import Outcome, Transaction, decide, txn_entry

logger = logging.getLogger(__name__)


class TransactionWriter:
    """The leader's transaction path for ``node``."""

    def __init__(self, node):
        self.node = node

    def run(self, tenant: str, txn: Transaction) -> Outcome:
        """Decide, replicate and apply ``txn``; return its outcome once acknowledged (raise as a write would)."""
        node = self.node
        # A drop of the tenant in flight changes every key of it: the transaction waits for it too.
        keys = [(tenant, name) for name in sorted(txn.names())] + [(DROPPED_TENANT, tenant)]
        with node.lock:
            self._admit(keys)
            revision = node.clock.next()
            outcome = decide(txn, tenant, lambda name: node.store.get(tenant, name), revision)
            node.tenants.admit_txn(tenant, outcome.writes, outcome.replaced)
            entry = node.core.propose(txn_entry(tenant, revision, outcome.writes))
            for record in outcome.writes:
                node.applier.pending[record.key] = record
            waiter = node.applier.expect(entry["index"], revision)
            try:
                appended = node.driver.run().appended
            except Unavailable:
                node.applier.forget(waiter)
                self._unpend(outcome)
                raise
            node.applier.progressed()
            acknowledged = node.applier.outcome(waiter)  # a single node in memory is done already
        if acknowledged is None:
            try:
                node.writer.make_durable(appended or entry["index"])
                acknowledged = node.applier.wait(waiter, node.config.write_timeout)
            finally:
                with node.lock:
                    node.applier.forget(waiter)
        if acknowledged is False:
            raise Unavailable("the leader changed before the transaction was committed; it did not take effect",
                              retry_after=1)
        if acknowledged is None:
            raise Timeout("the transaction was not acknowledged in time; it may or may not take effect",
                          revision=revision)
        return outcome

    def _unpend(self, outcome: Outcome) -> None:
        pending = self.node.applier.pending
        for record in outcome.writes:
            if pending.get(record.key) is record:
                del pending[record.key]

    def _admit(self, keys: list) -> None:
        """(Lock held.) The checks of ``Writer`` before a write, for every key of the transaction: this node
        leads with current state, a quorum answers it, and no write to any of the keys is in flight."""
        node = self.node
        node.wait_until_serving(node.config.leader_wait)
        if node.peers and not node.core.has_quorum():
            raise Unavailable("no quorum: too few members answer the leader", retry_after=2)
        pending = node.applier.pending
        if any(key in pending for key in keys) and not node.applier.changed.wait_for(
                lambda: not any(key in pending for key in keys) or node.stopping.is_set(),
                timeout=node.config.write_timeout):
            raise Unavailable("an earlier write to a key of the transaction is still being replicated",
                              retry_after=1)
        if not node.core.is_leader or node.core.transferring:
            raise NotLeader("this node stopped leading while the transaction waited", leader=node.core.leader)
