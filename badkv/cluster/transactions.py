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
            node.writer.admit(keys, "transaction")
            revision = node.clock.next()
            outcome = decide(txn, tenant, lambda name: node.store.get(tenant, name), revision)
            node.tenants.admit_txn(tenant, outcome.writes, outcome.replaced)
            entry = node.core.propose(txn_entry(tenant, revision, outcome.writes))
            pending = node.writer.carry(entry, outcome.writes)
        node.writer.await_entry(pending, "transaction")
        return outcome

