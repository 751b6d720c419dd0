"""One node's snapshots: writing them, compacting the log behind them, copying the leader's state, backups.

It works on the node's state under the node lock; its loop runs in the node's
snapshot thread, woken when enough entries applied or the leader asked for a
copy of its state.
"""

from __future__ import annotations

import logging
import threading
import time

from badkv.consensus.membership import Membership
from badkv.storage.recovery import SnapshotRecords
from badkv.storage.snapshot_files import SnapshotMeta, write_snapshot_stream
from badkv.cluster.transport import TransportError

logger = logging.getLogger(__name__)


class Snapshotter:
    """Snapshots and state transfer for ``node``; ``loop`` runs in the node's snapshot thread."""

    def __init__(self, node, last_index: int):
        self.node = node
        self.last_index = last_index  # the newest snapshot (or install) this node has
        self.due = threading.Event()
        # (index, term, membership) the leader asked this node to install
        self.install_request: tuple[int, int, dict | None] | None = None

    def is_due(self) -> bool:
        return self.node.core.commit_index - self.last_index >= self.node.config.snapshot_entries

    def request_install(self, index: int, term: int, membership: dict | None = None) -> None:
        """Called with the node lock held when the leader's log no longer reaches back far enough."""
        if self.install_request is None:
            logger.info("%s: the leader no longer has the entries this node needs; copying its state",
                        self.node.name)
            self.install_request = (index, term, membership)
            self.due.set()

    def loop(self) -> None:
        node = self.node
        while not node.stopping.is_set():
            self.due.wait(timeout=1.0)
            if node.stopping.is_set():
                return
            self.due.clear()
            try:
                if self.install_request is not None:
                    self.install_from_leader(*self.install_request)
                elif self.is_due():
                    self.take()
            except TransportError as error:
                logger.warning("%s: copying the leader's state failed: %s", node.name, error)
                self.install_request = None
            except Exception:
                logger.exception("%s: snapshot failed; going on", node.name)
                self.install_request = None

    def _consistent_copy(self) -> tuple[int, int, int, list, int, dict]:
        """Index, term, revision, records, gc horizon and membership of the store, taken together under the node
        lock."""
        node = self.node
        with node.lock:
            index, revision = node.store.applied_index, node.store.applied_revision
            term = node.core.log.term_at(index) or node.core.log.base_term
            return (index, term, revision, node.store.records(), node.store.tombstones.horizon,
                    node.core.membership_at(index).to_wire())

    def take(self) -> int:
        """Write the store to a snapshot (when durable) and drop the log entries it covers; returns its index."""
        node = self.node
        index, term, revision, records, horizon, membership = self._consistent_copy()
        node.wal.write_snapshot(index=index, term=term, revision=revision, records=SnapshotRecords(records),
                                horizon=horizon, membership=membership)
        self.last_index = index
        with node.lock:
            keep_from = index
            if node.is_leader:  # keep what lagging followers still need, within bounds
                lagging = [p.match_index for p in node.core.progress.values()
                           if p.match_index >= index - 4 * node.config.snapshot_entries]
                keep_from = min([index] + lagging)
            node.core.compact(keep_from)
        logger.info("%s: snapshot at index %d (%d records)", node.name, index, len(records))
        return index

    def backup_stream(self):
        """A consistent snapshot of the node's store as snapshot-file bytes, for GET /admin/backup."""
        index, term, revision, records, horizon, membership = self._consistent_copy()
        meta = SnapshotMeta(index=index, term=term, revision=revision, node=self.node.name,
                            cluster_id=self.node.config.cluster_id, created=time.time(), record_count=len(records),
                            horizon=horizon, membership=membership)
        return write_snapshot_stream(meta, SnapshotRecords(records))

    def install_from_leader(self, index: int, term: int, membership: dict | None = None) -> None:
        """Catch up from the leader's take feed when its log no longer reaches back far enough.

        The leader's whole state replaces this node's (``TakeSync.copy_whole``), never merges into it: the
        leader's gc may have removed the tombstones of keys this node still holds live, and a merge would
        keep them. The copy's horizon is the leader's, read after it."""
        node = self.node
        copy = node.take_sync.copy_whole()
        with node.lock:  # disk first, then memory, all under the lock: no append may slip in between
            if node.core.log.term_at(index) != term:
                revision = max(node.store.applied_revision, copy.revision)
                node.wal.write_snapshot(index=index, term=term, revision=revision,
                                        records=SnapshotRecords(copy.records), horizon=copy.horizon,
                                        membership=membership)
                self.last_index = index
                node.core.restore(index, term, Membership.from_wire(membership) if membership else None)
                node.store.load(copy.records, revision, index, copy.horizon)
                node.take_sync.resume_from(copy.cursor)
            self.install_request = None
        logger.info("%s: installed the leader's state as of index %d", node.name, index)
