"""The Node: wires store, log, consensus core and transport together, owns the threads, and is
the one object the HTTP layer calls.

Views call exactly one Node method per request. The parts behind it share the
node's public state: ``lock`` (held around every call into the core and the
store's bookkeeping), ``core``, ``store``, ``wal``, ``clock``, ``config`` and
``stopping``; each part is one job of the node (see ``badkv/cluster/__init__.py``).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from badkv.clock import HybridClock
from badkv.cluster.applier import Applier
from badkv.cluster.driver import Driver
from badkv.cluster.follower import Follower
from badkv.cluster.forwarder import Forwarder
from badkv.cluster.reader import Reader
from badkv.cluster.replicator import Replicator
from badkv.cluster.snapshotter import Snapshotter
from badkv.cluster.take_sync import TakeSync
from badkv.cluster.terms import starting_term
from badkv.cluster.transport import PeerClient, TransportError
from badkv.cluster.writer import Writer
from badkv.config import Config
from badkv.consensus.core import Core
from badkv.consensus.log import Log
from badkv.errors import Unavailable
from badkv.storage.recovery import open_storage
from badkv.store import Record, Store

logger = logging.getLogger(__name__)

TICKS_PER_HEARTBEAT = 4  # the core's time resolution: a quarter of the heartbeat interval


class Node:
    """One member of a badkv cluster."""

    def __init__(self, config: Config, *, clock: HybridClock | None = None, monotonic=time.monotonic):
        self.config = config
        self.name = config.name
        self.store = Store()
        self.clock = clock or HybridClock()
        self.monotonic = monotonic
        self.started_at = monotonic()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.storage_error: str | None = None  # set once a WAL write or fsync failed: stop taking writes
        self._threads: list[threading.Thread] = []
        recovered = open_storage(config, self.store, self.clock)
        self.wal = recovered.wal
        self.recovery_seconds = recovered.seconds
        term = starting_term(config, recovered.term)
        if term != recovered.term:
            self.wal.save_state(term, None)
        self.core = self._build_core(recovered, term)
        self.peers = {name: PeerClient(name, address, timeout=config.peer_timeout, pool_size=config.threads + 2)
                      for name, address in config.peers.items()}
        self.applier, self.driver = Applier(self), Driver(self)
        self.writer, self.reader, self.follower = Writer(self), Reader(self), Follower(self)
        self.forwarder = Forwarder(self)
        self.replicators = {name: Replicator(self, name, client) for name, client in self.peers.items()}
        self.take_sync = TakeSync(self.store, self.forwarder.fetch_leader_take)
        self.snapshots = Snapshotter(self, recovered.base_index)
        with self.lock:  # the leader's no-op for its term, which the core logged as it started
            appended = self.driver.run().appended
        if appended is not None:
            self.writer.make_durable(appended)

    def _build_core(self, recovered, term: int) -> Core:
        log = Log(recovered.base_index, recovered.base_term)
        log.append(recovered.entries)
        tick_seconds = self.config.heartbeat_interval / TICKS_PER_HEARTBEAT
        return Core(self.name, [name for name, _ in self.config.cluster], log, term=term,
                    leader=self.config.leader_name, heartbeat_ticks=TICKS_PER_HEARTBEAT,
                    isr_ticks=math.ceil(self.config.isr_timeout / tick_seconds - 1e-9),
                    max_batch_entries=self.config.max_batch_entries, stamp=self.clock.next)

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the background threads (in the gunicorn worker, after fork)."""
        if self.core.is_leader:
            for peer, replicator in self.replicators.items():
                self._spawn(f"replicate-{peer}", replicator.loop)
        else:
            self._spawn("take-sync", self._sync_loop)
        if self.peers:
            self._spawn("tick", self._tick_loop)
        self._spawn("snapshot", self.snapshots.loop)
        logger.info("%s: started as %s in a cluster of %d", self.name,
                    "leader" if self.core.is_leader else "follower", len(self.config.cluster))

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=f"{self.name}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            self.applier.release_all()
        for replicator in self.replicators.values():
            replicator.wakeup.set()
        self.snapshots.due.set()
        # One deadline for all threads, so a stop takes at most 2 s however many peers there are.
        deadline = self.monotonic() + 2
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - self.monotonic()))
        still_running = [thread.name for thread in self._threads if thread.is_alive()]
        if still_running:
            logger.warning("%s: stopping without waiting for %s", self.name, ", ".join(still_running))
        for peer in self.peers.values():
            peer.close()
        self.wal.close()

    def _tick_loop(self) -> None:
        interval = self.config.heartbeat_interval / TICKS_PER_HEARTBEAT
        while not self.stopping.wait(interval):
            try:
                self.tick()
            except Exception:
                logger.exception("%s: tick failed; going on", self.name)

    def tick(self) -> None:
        """Move the core's time on by one tick (the tick thread calls this; tests may too)."""
        with self.lock:
            self.core.tick()
            self.driver.run()
            self.applier.progressed()

    def _sync_loop(self) -> None:
        while not self.stopping.wait(self.config.sync_interval):
            try:
                applied = self.take_sync.sync_once()
                if applied:
                    logger.info("%s: take sync applied %d records", self.name, applied)
            except TransportError as error:
                logger.warning("%s: take sync failed: %s", self.name, error)
            except Exception:
                logger.exception("%s: take sync failed; going on", self.name)

    # ---- health ---------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.core.is_leader

    @property
    def pending_writes(self) -> int:
        """Writes in the log but not yet applied."""
        return len(self.applier.pending)

    def check_serving(self) -> None:
        """Refuse leader work (503) while the disk has failed or a restarted leader has not caught up."""
        if self.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {self.storage_error}", retry_after=5)
        if self.store.applied_index < self.core.term_start_index:
            raise Unavailable("the leader is applying its log after a restart", retry_after=1)

    def storage_failed(self, error: Exception) -> Unavailable:
        """Record that the log failed (this node takes no more writes until restarted); the 503 to raise."""
        self.storage_error = f"{error.__class__.__name__}: {error}"
        logger.critical("%s: write-ahead log failed, refusing writes until restarted: %s", self.name, error)
        return Unavailable(f"this node's storage failed: {self.storage_error}", retry_after=5)

    # ---- what the views call --------------------------------------------------------
    def write(self, op: str, tenant: str, name: str, value: bytes = b"", timestamp: int | None = None,
              if_match: int | None = None, if_none_match: bool = False) -> Record:
        return self.writer.write(op, tenant, name, value, timestamp, if_match, if_none_match)

    def read(self, tenant: str, name: str, *, consistency: str = "local", min_revision: int | None = None,
             timeout: float | None = None) -> Record:
        return self.reader.read(tenant, name, consistency=consistency, min_revision=min_revision, timeout=timeout)

    def take(self, since: int, limit: int, tenant: str | None = None) -> tuple[list[Record], int, int]:
        records, next_cursor = self.store.take(since, limit, tenant)
        return records, next_cursor, self.store.applied_revision

    def handle_append(self, wire: dict) -> dict:
        return self.follower.handle_append(wire)

    def forward(self, method: str, path: str, query: bytes, body: bytes, headers: dict, *, leader_wait: float):
        return self.forwarder.forward(method, path, query, body, headers, leader_wait=leader_wait)

    def backup_stream(self):
        """A consistent snapshot of this node's store as snapshot-file bytes (GET /admin/backup)."""
        return self.snapshots.backup_stream()

    @property
    def leader(self) -> str:
        return self.core.leader

    @property
    def fsyncs(self) -> bool:
        """Whether this node's log is on disk (an in-memory node has no fsyncs to observe)."""
        return not self.wal.in_memory

    def observe_fsyncs(self, observer) -> None:
        """Call ``observer(seconds)`` after every fsync of the log (metrics)."""
        self.wal.fsync_observer = observer
