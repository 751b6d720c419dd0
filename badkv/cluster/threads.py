"""The node's threads: starting each by name, the loops the node runs itself (tick, prune, take sync), and
joining them all against one deadline when it stops.

``Node.start()`` starts them and ``Node.stop()`` joins them; the one other caller is ``members``, which
starts a new link's replicator threads when the membership changes on a running node.
"""

from __future__ import annotations

import logging
import threading
import time

from badkv.cluster.transport import TransportError

logger = logging.getLogger(__name__)

PRUNE_CHUNK = 500  # dropped records taken out of the revision index per hold of the store lock (~3 ms)


class Threads:
    """The threads of ``node`` and the loops of its own that they run."""

    def __init__(self, node):
        self.node = node
        self._threads: list[threading.Thread] = []

    def start_loops(self) -> None:
        """The node's background threads (always, even alone: a cluster of one can grow)."""
        node = self.node
        for name, target in (("take-sync", self.sync_loop), ("tick", self.tick_loop), ("snapshot", node.snapshots.loop),
                             ("prune", self.prune_loop), ("leases", node.leases.loop), ("gc", node.gc.loop)):
            self.spawn(name, target)

    def start_replicator(self, replicator) -> None:
        self._threads = [thread for thread in self._threads if thread.is_alive()]  # (retired ones)
        self.spawn(f"send-{replicator.peer}", replicator.loop)
        self.spawn(f"beat-{replicator.peer}", replicator.heartbeat_loop)

    def spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=f"{self.node.name}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join_all(self, seconds: float) -> None:
        """Join every thread, all against one deadline ``seconds`` away (a stop takes at most that long however
        many peers there are); log the ones still running."""
        monotonic = self.node.monotonic
        deadline = monotonic() + seconds
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - monotonic()))
        still_running = [thread.name for thread in self._threads if thread.is_alive()]
        if still_running:
            logger.warning("%s: stopping without waiting for %s", self.node.name, ", ".join(still_running))

    def tick_loop(self) -> None:
        # Ticks keep to a schedule (a slow tick is not followed by a late one), so time in the core
        # runs at the wall clock's pace even when the node is busy.
        node = self.node
        next_tick = node.monotonic() + node.tick_seconds
        while not node.stopping.wait(max(0.0, next_tick - node.monotonic())):
            next_tick = max(next_tick + node.tick_seconds, node.monotonic())
            try:
                node.tick()
            except Exception:
                logger.exception("%s: tick failed; going on", node.name)

    def prune_loop(self) -> None:
        """Take a dropped tenant's records out of the store's index a chunk at a time, letting other
        requests have the store lock between chunks."""
        node = self.node
        while not node.stopping.is_set():
            node.store.prune_wanted.wait()
            try:
                while not node.stopping.is_set() and node.store.prune_some(PRUNE_CHUNK):
                    time.sleep(0)  # (yield the GIL to request threads between chunks)
            except Exception:
                logger.exception("%s: pruning dropped records failed; going on", node.name)
                node.stopping.wait(1)

    def sync_loop(self) -> None:
        node = self.node
        while not node.stopping.wait(node.config.sync_interval):
            if node.core.is_leader:
                continue  # the leader is the source; only followers pull
            try:
                applied = node.take_sync.sync_once()
                if applied:
                    logger.info("%s: take sync applied %d records", node.name, applied)
            except TransportError as error:
                logger.warning("%s: take sync failed: %s", node.name, error)
            except Exception:
                logger.exception("%s: take sync failed; going on", node.name)
