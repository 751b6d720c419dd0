"""The Node: wires store, log, consensus core and transport together, owns the threads (started and joined
through ``threads.py``), and is the one object the HTTP layer calls.

Views call exactly one Node method per request. The parts behind it share the
node's public state: ``lock`` (held around every call into the core and the
store's bookkeeping), ``core``, ``store``, ``wal``, ``clock``, ``config`` and
``stopping``; each part is one job of the node (see ``badkv/cluster/__init__.py``).
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import threading
import time

from badkv.clock import HybridClock
from badkv.cluster.applier import Applier
from badkv.cluster.boundary import PeerBoundary
from badkv.cluster.driver import Driver
from badkv.cluster.follower import Follower
from badkv.cluster.forwarder import Forwarder
from badkv.cluster.leadership import Leadership
from badkv.cluster.leases import LeaseKeeper
from badkv.cluster.members import Members
from badkv.cluster.reader import Reader
from badkv.cluster.replicator import Replicator
from badkv.cluster.snapshotter import Snapshotter
from badkv.cluster.take_sync import TakeSync
from badkv.cluster.tenants import Tenants
from badkv.cluster.threads import Threads
from badkv.cluster.tombstones import TombstoneCollector
from badkv.cluster.transactions import TransactionWriter
from badkv.cluster.transport import PeerClient, PeerTls
from badkv.cluster.writer import Writer
from badkv.config import Config
from badkv.consensus.core import Core
from badkv.consensus.log import Log
from badkv.consensus.membership import Membership
from badkv.errors import Unavailable
from badkv.security.cluster_secret import load_cluster_secret
from badkv.security.data_ids import DataIds
from badkv.storage.recovery import open_storage
from badkv.records import Record
from badkv.store import Store
from badkv.txn import Outcome, Transaction

logger = logging.getLogger(__name__)

TICKS_PER_HEARTBEAT = 4  # the core's time resolution: a quarter of the heartbeat interval
LEASE_ACTIONS = ("grant", "keepalive", "revoke", "show", "write", "remaining", "leases_of")


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
        self.threads = Threads(self)
        recovered = open_storage(config, self.store, self.clock)
        self.wal = recovered.wal
        self.recovery_seconds = recovered.seconds
        self.core = self._build_core(recovered)
        self.tls = PeerTls(config.ca_file, config.cert_file, config.key_file) if config.cert_file else None
        # A new id per process, so a restarted member can be told from a second process under its name.
        self.instance = secrets.token_hex(8)
        self.cluster_secret = load_cluster_secret(config)
        data_dir = self.wal.data_dir  # None in memory: no data id to tell a restart from an empty dir by
        self.boundary = PeerBoundary(config, self.cluster_secret, instance=self.instance,
                                     data_id=data_dir and data_dir.data_id,
                                     data_ids=data_dir and DataIds(data_dir.peer_data_ids(), data_dir.save_peer_data_ids))
        self.started = False
        # One client and one replicator per member the core talks to (opened and closed by ``members``).
        self.peers: dict[str, PeerClient] = {}
        self.replicators: dict[str, Replicator] = {}
        self.applier, self.driver = Applier(self), Driver(self)
        self.writer, self.reader, self.follower = Writer(self), Reader(self), Follower(self)
        self.forwarder, self.transactions = Forwarder(self), TransactionWriter(self)
        self.tenants, self.leases, self.gc = Tenants(self), LeaseKeeper(self), TombstoneCollector(self)
        self.members = Members(self)
        with self.lock:
            self.members.follow()
        self.take_sync = TakeSync(self.store, self.forwarder.fetch_leader_take, name=self.name)
        self.snapshots = Snapshotter(self, recovered.base_index)
        self.leadership = Leadership(self)
        self.advance(lambda: None)  # a cluster of one led at once: its term's no-op goes to disk now

    def _build_core(self, recovered) -> Core:
        log = Log(recovered.base_index, recovered.base_term)
        log.append(recovered.entries)
        config = self.config
        if recovered.membership is not None:  # the snapshot's; else the first one, from the flags
            membership = Membership.from_wire(recovered.membership)
        else:
            learners = set(config.learners)
            membership = Membership({name: address for name, address in config.cluster if name not in learners},
                                    {name: address for name, address in config.cluster if name in learners})
        return Core(self.name, membership, log, term=recovered.term,
                    voted_for=recovered.voted_for, heartbeat_ticks=TICKS_PER_HEARTBEAT,
                    election_ticks=self.ticks(config.election_timeout), isr_ticks=self.ticks(config.isr_timeout),
                    max_batch_entries=config.max_batch_entries, stamp=self.clock.next, rng=random.Random())

    @property
    def tick_seconds(self) -> float:
        return self.config.heartbeat_interval / TICKS_PER_HEARTBEAT

    def ticks(self, seconds: float) -> int:
        """``seconds`` in the core's ticks, rounded up."""
        return math.ceil(seconds / self.tick_seconds - 1e-9)

    def advance(self, change) -> None:
        """Make a change to the core (``change()`` runs under the node lock), carry out what it asks, and
        flush the log if that appended to it: how every thread but a writer drives the core."""
        with self.lock:
            change()
            appended = self.driver.run().appended
            self.applier.progressed()
        if appended is not None:
            self.writer.make_durable(appended)

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the background threads (in the gunicorn worker, after fork)."""
        self.boundary.warn_if_open()
        with self.lock:
            self.started = True
            for replicator in self.replicators.values():
                self.threads.start_replicator(replicator)
        self.threads.start_loops()
        logger.info("%s: started as %s in term %d in a cluster of %d voters and %d learners", self.name,
                    self.core.role.value, self.core.current_term, len(self.core.membership.voters),
                    len(self.core.membership.learners))

    @property
    def removed_reason(self) -> str | None:
        return self.members.removed_reason()

    def check_not_removed(self) -> None:
        """Raise 503 ``removed`` once this node knows it was removed from the cluster."""
        self.members.check_not_removed()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            self.applier.release_all()
        for replicator in list(self.replicators.values()):
            replicator.wake()
        self.snapshots.due.set()
        self.store.prune_wanted.set()
        self.store.wake_watchers()  # (a watch waiting on a thread answers now)
        self.threads.join_all(2)
        for peer in list(self.peers.values()):
            peer.close()
        self.wal.close()

    def tick(self) -> None:
        """Move the core's time on by one tick (the tick thread calls this; tests may too)."""
        self.advance(self.core.tick)

    # ---- health ---------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.core.is_leader

    @property
    def pending_writes(self) -> int:
        """Writes in the log but not yet applied."""
        return len(self.applier.pending)

    def wait_until_serving(self, timeout: float) -> None:
        self.leadership.wait_until_serving(timeout)

    def wait_for_leader(self, timeout: float, *, other_than: set | frozenset = frozenset()) -> str | None:
        return self.leadership.wait_for_leader(timeout, other_than=other_than)

    def wait_for_leader_in_term(self, timeout: float, refused: set | frozenset) -> tuple[str, int] | None:
        return self.leadership.wait_for_leader_in_term(timeout, refused)

    def transfer_leadership(self, to: str | None, timeout: float) -> str:
        return self.leadership.transfer(to, timeout)

    def hand_over_leadership(self) -> None:
        self.leadership.hand_over()

    def storage_failed(self, error: Exception) -> Unavailable:
        """Record that the log failed (this node takes no more writes until restarted); the 503 to raise."""
        self.storage_error = f"{error.__class__.__name__}: {error}"
        logger.critical("%s: write-ahead log failed, refusing writes until restarted: %s", self.name, error)
        return Unavailable(f"this node's storage failed: {self.storage_error}", retry_after=5)

    # ---- what the views call --------------------------------------------------------
    def write(self, op: str, tenant: str, name: str, value: bytes = b"", timestamp: int | None = None,
              if_match: int | None = None, if_none_match: bool = False) -> Record:
        return self.writer.write(op, tenant, name, value, timestamp, if_match, if_none_match)

    def confirmed_read_index(self, timeout: float) -> int:
        """A follower's ReadIndex: this leader's commit index, confirmed by a majority round."""
        with self.lock:
            self.wait_until_serving(self.config.leader_wait)
        return self.reader.confirmed_read_index(timeout)

    def write_batch(self, writes: list[dict]) -> list:
        """A follower's proposal: each write's Record or the BadkvError that refused it."""
        return self.writer.write_batch(writes)

    def txn(self, tenant: str, txn: Transaction) -> Outcome:
        return self.transactions.run(tenant, txn)

    def lease(self, action: str, *args):
        """A lease call: ``grant``, ``keepalive``, ``revoke``, ``show``, ``write`` (a key put attached to a
        lease), ``remaining`` or ``leases_of`` of ``LeaseKeeper``."""
        if action not in LEASE_ACTIONS:
            raise ValueError(f"no lease action {action}")
        return getattr(self.leases, action)(*args)

    def read(self, tenant: str, name: str, *, consistency: str = "local", min_revision: int | None = None,
             timeout: float | None = None) -> Record:
        return self.reader.read(tenant, name, consistency=consistency, min_revision=min_revision, timeout=timeout)

    def range(self, tenant: str, *, consistency: str = "local", min_revision: int | None = None,
              timeout: float | None = None, **page):
        return self.reader.range(tenant, consistency=consistency, min_revision=min_revision, timeout=timeout, **page)

    def take(self, since: int, limit: int, tenant: str | None = None, prefix: str = "",
             watcher=None) -> tuple[list[Record], int, int]:
        """A page of the take feed; with ``watcher`` (``badkv.watchers``), registered if the page is empty."""
        records, next_cursor = self.store.take(since, limit, tenant, prefix, watcher)
        return records, next_cursor, self.store.applied_revision

    def unwatch(self, watcher) -> bool:
        return self.store.unwatch(watcher)

    def admit_peer_call(self, method: str, path: str, body: bytes, headers, remote: str) -> None:
        """Raise the error to answer a peer call with if it comes from outside this cluster."""
        self.boundary.admit(method, path, body, headers, remote)

    def peer_answer_headers(self) -> dict:
        return self.boundary.answer_headers()

    def handle_append(self, wire: dict) -> dict:
        return self.follower.handle_append(wire)

    def handle_vote(self, wire: dict) -> dict:
        return self.follower.handle_vote(wire)

    def handle_heartbeat(self, wire: dict) -> dict:
        return self.follower.handle_heartbeat(wire)

    def handle_timeout_now(self, wire: dict) -> dict:
        return self.follower.handle_timeout_now(wire)

    def forward(self, method: str, path: str, query: bytes, body: bytes, headers: dict, *, leader_wait: float,
                avoid: frozenset = frozenset()):
        return self.forwarder.forward(method, path, query, body, headers, leader_wait=leader_wait, avoid=avoid)

    def propose(self, write: dict, *, leader_wait: float, avoid: frozenset = frozenset()):
        return self.forwarder.propose(write, leader_wait=leader_wait, avoid=avoid)

    def add_member(self, name: str, address: str) -> str:
        """Add a learner; its one-time join token."""
        return self.members.add(name, address)

    def remove_member(self, name: str) -> None:
        self.members.remove(name)

    def join(self, name: str, token: str, cluster_id: str | None, *, send_secret: bool = True) -> dict:
        """A new node's join: what it needs to start as the learner it is."""
        return self.members.join(name, token, cluster_id, send_secret=send_secret)

    def backup_stream(self):
        """A consistent snapshot of this node's store as snapshot-file bytes (GET /admin/backup)."""
        return self.snapshots.backup_stream()

    @property
    def leader(self) -> str | None:
        return self.core.leader

    @property
    def term(self) -> int:
        return self.core.current_term

    def seconds_without_leader(self) -> float:
        return self.leadership.seconds_without_leader()

    @property
    def fsyncs(self) -> bool:
        """Whether this node's log is on disk (an in-memory node has no fsyncs to observe)."""
        return not self.wal.in_memory

    def observe_fsyncs(self, observer) -> None:
        """Call ``observer(seconds)`` after every fsync of the log (metrics)."""
        self.wal.fsync_observer = observer
