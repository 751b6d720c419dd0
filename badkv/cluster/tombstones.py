"""Tombstone gc on the leader: when tombstones are due, one replicated ``gc`` entry removes them everywhere.

A tombstone is due once it is older than ``-tombstone-retention`` and every member has applied past it. Age is
read on the revisions themselves (hybrid-clock nanoseconds, ``badkv/clock.py``): the leader's clock, which is
never behind the newest revision, less the retention. "Every member" is the leader's own store and the applied
index each follower last reported in an append answer (``Progress.applied_index``); a member the leader has not
heard from in this term counts as having applied nothing, so a member that is down holds gc back for as long
as it is down and a member of the configuration. The entry carries the horizon H and every node removes the
tombstones with revision < H (``Store.collect_tombstones``): the same set on every node, whatever its clock.
"""

from __future__ import annotations

import logging

from badkv.errors import NotLeader, Timeout, Unavailable

logger = logging.getLogger(__name__)

GC_BATCH = 10_000  # tombstones one gc entry removes at most (its apply holds the store lock for ~50 ms)
MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0  # how often the leader looks: a tenth of the retention, within these


def gc_entry(revision: int, horizon: int) -> dict:
    """The log entry that removes every tombstone with revision < ``horizon`` (the common fields first)."""
    return {"op": "gc", "tenant": "", "name": "", "value": b"", "timestamp": revision, "revision": revision,
            "horizon": horizon}


class TombstoneCollector:
    """Proposes gc entries for ``node`` while it leads; ``loop`` runs in the node's gc thread."""

    def __init__(self, node):
        self.node = node
        self.proposed = 0  # gc entries this node proposed as leader

    @property
    def interval(self) -> float:
        return min(MAX_INTERVAL, max(MIN_INTERVAL, self.node.config.tombstone_retention / 10))

    def loop(self) -> None:
        refused = None  # the last refusal logged: one line per change, not one per look
        while not self.node.stopping.wait(self.interval):
            try:
                while self.tick() and not self.node.stopping.is_set():
                    pass  # more were due than one entry removes
                refused = None
            except (NotLeader, Unavailable, Timeout) as error:
                if str(error) != refused:
                    logger.warning("%s: tombstones not collected for now: %s", self.node.name, error)
                    refused = str(error)
            except Exception:
                logger.exception("%s: tombstone gc failed; going on", self.node.name)

    def applied_everywhere(self) -> int:
        """(Lock held, leading.) A revision every member has applied all entries below: the revision of the
        first entry some member has not applied, or one past the leader's applied revision if all applied
        everything; 0 if a member is behind the leader's log (it must copy the leader's state anyway)."""
        node = self.node
        log = node.core.log
        index = min([node.store.applied_index] + [p.applied_index for p in node.core.progress.values()])
        if index < log.base_index:
            return 0
        if index < log.last_index:
            return log.entry(index + 1).get("revision", 0)
        return node.store.applied_revision + 1

    def due_horizon(self) -> int | None:
        """(Lock held, leading.) The horizon of the gc entry to propose now, or None if no tombstone is due."""
        node = self.node
        older_than = node.clock.now() - int(node.config.tombstone_retention * 1e9)
        return node.store.gc_horizon(min(older_than, self.applied_everywhere()), GC_BATCH)

    def tick(self) -> bool:
        """On the leader, propose one gc entry if tombstones are due and wait until it is acknowledged; return
        whether one was proposed."""
        node = self.node
        if not node.core.is_leader:
            return False
        with node.lock:
            node.writer.admit((), "gc")
            horizon = self.due_horizon()
            if horizon is None:
                return False
            revision = node.clock.next()
            entry = node.core.propose(gc_entry(revision, horizon))
            pending = node.writer.carry(entry)
        self.proposed += 1
        logger.info("%s: gc entry %d removes the tombstones older than revision %d", node.name, entry["index"],
                    horizon)
        node.writer.await_entry(pending, "gc")
        return True
