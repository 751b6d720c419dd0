"""The Node: wires store, log, consensus core and transport together and owns the threads.

Views call exactly one Node method per request. On the leader a write is
validated against the latest state (committed or still pending), stamped,
appended to the log, replicated by one thread per follower, and answered once
the ack rule of ``-acks`` holds. Followers forward writes to the leader.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from badkv.conditions import QuietCondition
from badkv.config import Config
from badkv.errors import BadkvError, NotFound, NotLeader, Timeout, Unavailable
from badkv.raft import Log, RaftCore
from badkv.snapshots import Snapshots
from badkv.storage.recovery import open_storage
from badkv.store import HybridClock, Record, Store, check_write
from badkv.sync import TakeSync
from badkv.terms import starting_term
from badkv.transport import PeerClient, TransportError, TransportTimeout

logger = logging.getLogger(__name__)


class Node:
    """One member of a badkv cluster."""

    def __init__(self, config: Config, *, clock: HybridClock | None = None, monotonic=time.monotonic):
        self.config = config
        self.name = config.name
        self.store = Store()
        self.clock = clock or HybridClock()
        self.monotonic = monotonic
        self.started_at = monotonic()
        self._lock = threading.Lock()
        self._changed = QuietCondition(self._lock)  # read barriers wait on it
        # Writers wait on an event each and replicators on one per peer, so progress wakes exactly
        # who can go on; one condition for all of them woke every waiting thread on every change.
        self._ack_waiters: collections.deque[tuple[int, threading.Event]] = collections.deque()
        self._pending: dict[tuple[str, str], Record] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_leader_contact = None
        self.storage_error: str | None = None  # set once a WAL write or fsync failed: stop taking writes
        self.term_start_index = 0  # the leader's no-op of this term: state is current once it is applied
        members = [name for name, _ in config.cluster]
        recovered = open_storage(config, self.store, self.clock)
        self.wal = recovered.wal
        self.recovery_seconds = recovered.seconds
        term = starting_term(config, recovered.term)
        if term != recovered.term:
            self.wal.save_state(term, None)
        log = Log(recovered.base_index, recovered.base_term)
        log.append(recovered.entries)
        self.core = RaftCore(config.name, members, log, term=term, leader=config.leader_name,
                             isr_timeout=config.isr_timeout, heartbeat_interval=config.heartbeat_interval,
                             max_batch_entries=config.max_batch_entries, now=monotonic())
        self._peer_wakeups = {name: threading.Event() for name in config.peers}
        self.peers = {name: PeerClient(name, address, timeout=config.peer_timeout, pool_size=config.threads + 2)
                      for name, address in config.peers.items()}
        self.take_sync = TakeSync(self.store, self._fetch_leader_take)
        self.snapshots = Snapshots(self, recovered.base_index)
        if self.core.is_leader:
            with self._lock:
                entry = self._propose({"op": "noop", "tenant": "", "name": "", "value": b"", "timestamp": 0})
                self.term_start_index = entry["index"]
            self._make_durable(entry["index"])

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the background threads (in the gunicorn worker, after fork)."""
        if self.core.is_leader:
            for peer in self.peers:
                self._spawn(f"replicate-{peer}", self._replicate_loop, peer)
        else:
            self._spawn("take-sync", self._sync_loop)
        self._spawn("snapshot", self.snapshots.loop)
        logger.info("%s: started as %s in a cluster of %d", self.name,
                    "leader" if self.core.is_leader else "follower", len(self.config.cluster))

    def _spawn(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=f"{self.name}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._progressed()
            for _, event in self._ack_waiters:
                event.set()
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

    # ---- roles -------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.core.is_leader

    @property
    def pending_writes(self) -> int:
        """Writes in the log but not yet applied."""
        return len(self._pending)

    @property
    def leader_peer(self) -> PeerClient | None:
        return self.peers.get(self.core.leader)

    # ---- writes ------------------------------------------------------------------------
    def write(self, op: str, tenant: str, name: str, value: bytes = b"", timestamp: int | None = None,
              if_match: int | None = None, if_none_match: bool = False) -> Record:
        """Validate, stamp, replicate and apply one put or delete; return the stored record."""
        if not self.is_leader:
            raise NotLeader("this node is not the leader", leader=self.core.leader)
        key = (tenant, name)
        self._check_serving()
        with self._lock:
            if self.peers:  # a cluster of one has nobody to evict and is its own quorum
                self.core.tick(self.monotonic())
                if not self.core.has_quorum(self.monotonic()):
                    raise Unavailable("no quorum: too few members answer the leader", retry_after=2)
            # Conditions (CAS, last-writer-wins, delete of a missing key) are judged against applied
            # state only: checked against a write still in flight, a 412 could be answered for a
            # value every read still shows (found by the fault soak). So wait for it to apply first.
            if key in self._pending and not self._changed.wait_for(
                    lambda: key not in self._pending or self._stopping.is_set(),
                    timeout=self.config.write_timeout):
                raise Unavailable("an earlier write to this key is still being replicated", retry_after=1)
            current = self.store.get(tenant, name)
            revision = self.clock.next()
            timestamp = revision if timestamp is None else timestamp
            check_write(current, op, timestamp, if_match, if_none_match)
            value = value if op == "put" else b""
            record = Record.build(tenant, name, value, timestamp, revision, op == "delete")
            index = self._propose({"op": op, "tenant": tenant, "name": name, "value": value,
                                   "timestamp": timestamp, "revision": revision}, record)["index"]
            acknowledged = self.wal.in_memory and self._acknowledged(index)  # a single node in memory
        if not acknowledged:
            self._wait_acknowledged(index, revision)
        return record

    def _wait_acknowledged(self, index: int, revision: int) -> None:
        """Make the entry durable here, then wait until the ack rule holds for it (or time out: 504)."""
        self._make_durable(index)
        with self._lock:
            acknowledged = self._acknowledged(index)
            if not acknowledged:  # a single node is done already; a cluster waits for its followers
                waiter = (index, threading.Event())
                self._ack_waiters.append(waiter)  # appended in index order: proposals hold the lock
        if not acknowledged:
            waiter[1].wait(self.config.write_timeout)
            with self._lock:
                acknowledged = self._acknowledged(index)
                if waiter in self._ack_waiters:
                    self._ack_waiters.remove(waiter)
        if not acknowledged or self._stopping.is_set():
            raise Timeout("the write was not acknowledged in time; it may or may not take effect",
                          revision=revision)

    def _acknowledged(self, index: int) -> bool:
        return self.core.acknowledged_index(self.store.applied_index, self.config.acks) >= index

    def _progressed(self) -> None:
        """After any change (lock held): wake writers whose entry is acknowledged, the replicators, and
        read barriers."""
        acknowledged = self.core.acknowledged_index(self.store.applied_index, self.config.acks)
        while self._ack_waiters and self._ack_waiters[0][0] <= acknowledged:
            self._ack_waiters.popleft()[1].set()
        for wakeup in self._peer_wakeups.values():
            wakeup.set()
        self._changed.notify_all()

    def _check_serving(self) -> None:
        """Refuse leader work (503) while the disk has failed or a restarted leader has not caught up."""
        if self.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {self.storage_error}", retry_after=5)
        if self.store.applied_index < self.term_start_index:
            raise Unavailable("the leader is applying its log after a restart", retry_after=1)

    def _storage_failed(self, error: Exception) -> Unavailable:
        self.storage_error = f"{error.__class__.__name__}: {error}"
        logger.critical("%s: write-ahead log failed, refusing writes until restarted: %s", self.name, error)
        return Unavailable(f"this node's storage failed: {self.storage_error}", retry_after=5)

    def _propose(self, entry: dict, record: Record | None = None) -> dict:
        """Append to the leader's log (lock held); the log is durable at once while in memory.

        ``record`` is what the entry will store (None for a no-op); it is built once, by the
        caller, and is the very object the store holds once the entry applies."""
        if "revision" not in entry:  # (setdefault would stamp a revision even when one is given)
            entry["revision"] = self.clock.next()
        entry = self.core.propose(entry)
        if not self.wal.in_memory:
            try:
                self.wal.append([entry])
            except Exception as error:
                self.core.log.truncate_from(entry["index"])  # never replicate what is not in our WAL
                raise self._storage_failed(error) from None
        if record is not None:
            self._pending[(entry["tenant"], entry["name"])] = record
        if self.wal.in_memory:  # durable as proposed: commit and apply under this lock
            self.core.set_durable(entry["index"])
            self._apply_committed()
            self._progressed()
        return entry

    def _make_durable(self, index: int) -> None:
        """Group commit (lock not held): fsync the leader's log through ``index``, then count it."""
        if self.wal.in_memory:  # made durable, and counted, when proposed
            return
        try:
            self.wal.flush_through(index)
        except Exception as error:
            raise self._storage_failed(error) from None
        with self._lock:
            self.core.set_durable(self.wal.durable_index)
            self._apply_committed()
            self._progressed()

    def _apply_committed(self) -> None:
        """Apply committed entries in log order (lock held)."""
        if self.snapshots.is_due():
            self.snapshots.due.set()
        for index in range(max(self.store.applied_index, self.core.log.base_index) + 1, self.core.commit_index + 1):
            entry = self.core.log.entry(index)
            self.clock.observe(entry["revision"])
            if entry["op"] == "noop":
                self.store.apply_noop(entry["revision"], index)
                continue
            record = self._pending_record(entry)
            self.store.apply(record, index=index)
            if self._pending.get(record.key) is record:
                del self._pending[record.key]

    def _pending_record(self, entry: dict) -> Record:
        """The record the leader built for ``entry`` when it proposed it, or a new one."""
        record = self._pending.get((entry["tenant"], entry["name"]))
        if record is not None and record.revision == entry["revision"]:
            return record
        return Record.from_entry(entry)

    # ---- replication (leader) -------------------------------------------------------------
    def _replicate_loop(self, peer: str) -> None:
        client = self.peers[peer]
        while not self._stopping.is_set():
            try:
                wakeup = self._peer_wakeups[peer]
                wakeup.wait(self.config.heartbeat_interval)
                wakeup.clear()
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self.core.tick(self.monotonic())
                    if not self.core.wants_to_send(peer, self.monotonic()):
                        continue
                    request = self.core.append_request(peer, self.monotonic())
                try:
                    response = client.append(request)
                except TransportError as error:
                    logger.debug("%s: append to %s failed: %s", self.name, peer, error)
                    with self._lock:
                        self.core.handle_append_failure(peer, self.monotonic())
                        self._apply_committed()
                        self._progressed()
                    self._stopping.wait(min(0.05 * 2 ** min(self.core.progress[peer].failures, 4), 0.5))
                    continue
                new_term_entry = None
                with self._lock:
                    self.core.handle_append_response(peer, request, response, self.monotonic())
                    if self.core.higher_term_seen > self.core.current_term:
                        new_term_entry = self._start_term_above(self.core.higher_term_seen)
                    self._apply_committed()
                    self._progressed()
                if new_term_entry is not None:
                    self._make_durable(new_term_entry)
            except Exception:
                logger.exception("%s: replicator for %s failed; going on", self.name, peer)
                self._stopping.wait(0.1)

    def _start_term_above(self, term: int) -> int:
        """A follower knows a newer term than this static leader (its disk was replaced): move past it."""
        logger.warning("%s: a follower is in term %d, above this leader's %d; starting term %d",
                       self.name, term, self.core.current_term, term + 1)
        self.core.current_term = term + 1
        self.wal.save_state(self.core.current_term, None)
        entry = self._propose({"op": "noop", "tenant": "", "name": "", "value": b"", "timestamp": 0})
        self.term_start_index = entry["index"]
        return entry["index"]

    # ---- replication (follower) -------------------------------------------------------------
    def handle_append(self, request: dict) -> dict:
        """AppendEntries from the leader: check, persist, apply what is committed, answer."""
        if self.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {self.storage_error}", retry_after=5)
        with self._lock:
            term_before = self.core.current_term
            response, actions = self.core.handle_append(request, self.store.applied_index)
            if response["success"] or actions.install is not None:
                self.last_leader_contact = self.monotonic()
            if actions.install is not None:
                self.snapshots.request_install(*actions.install)
            if actions.reset_state:
                logger.warning("%s: the leader rewrote applied history; rebuilding state from its log", self.name)
                self.store.load([], 0, 0)
                self.take_sync.reset()
            if not self.wal.in_memory and not actions.reset_state:
                try:
                    if self.core.current_term != term_before:
                        self.wal.save_state(self.core.current_term, None)
                    if actions.truncate_from is not None:
                        self.wal.truncate_from(actions.truncate_from)
                    if actions.append:
                        self.wal.append(actions.append)
                        self.wal.flush_through(actions.append[-1]["index"])
                except Exception as error:
                    # The in-memory log is ahead of the disk now: never answer an append again.
                    raise self._storage_failed(error) from None
            self._apply_committed()
            response["applied_index"] = self.store.applied_index
            self._changed.notify_all()
            return response

    def _fetch_leader_take(self, cursor: int, limit: int) -> dict:
        leader = self.leader_peer
        if leader is None:
            raise TransportError("no leader known")
        return leader.take(cursor, limit)

    def _sync_loop(self) -> None:
        while not self._stopping.wait(self.config.sync_interval):
            try:
                applied = self.take_sync.sync_once()
                if applied:
                    logger.info("%s: take sync applied %d records", self.name, applied)
            except TransportError as error:
                logger.warning("%s: take sync failed: %s", self.name, error)
            except Exception:
                logger.exception("%s: take sync failed; going on", self.name)

    # ---- reads -----------------------------------------------------------------------
    def read(self, tenant: str, name: str, *, consistency: str = "local", min_revision: int | None = None,
             timeout: float | None = None) -> Record:
        """The live record of a key at the asked consistency; NotFound if missing or deleted."""
        timeout = self.config.read_timeout if timeout is None else timeout
        if consistency in ("leader", "linearizable"):
            if not self.is_leader:
                raise NotLeader("this node is not the leader", leader=self.core.leader)
            self._check_serving()
        if consistency == "linearizable":
            self._read_barrier(timeout)
        if min_revision is not None and not self.store.wait_for_revision(min_revision, timeout):
            raise Timeout(f"revision {min_revision} was not applied here within {timeout:g}s",
                          applied_revision=self.store.applied_revision)
        record = self.store.get(tenant, name)
        if record is None or record.deleted:
            raise NotFound("no such key")
        return record

    def _read_barrier(self, timeout: float) -> None:
        """ReadIndex: confirm leadership with a majority round, then wait to apply the commit index."""
        deadline = self.monotonic() + timeout
        with self._lock:
            read_index = self.core.commit_index
            seq = self.core.send_seq + 1
            for progress in self.core.progress.values():
                progress.last_sent = float("-inf")
            self._progressed()
            confirmed = self._changed.wait_for(lambda: self.core.confirmed_by_majority(seq),
                                               timeout=max(0.0, deadline - self.monotonic()))
        if not confirmed:
            raise Unavailable("the leader could not confirm it still has a quorum", retry_after=1)
        if not self.store.wait_for_index(read_index, max(0.0, deadline - self.monotonic())):
            raise Timeout("the leader did not apply its commit index in time")

    def take(self, since: int, limit: int, tenant: str | None = None) -> tuple[list[Record], int, int]:
        records, next_cursor = self.store.take(since, limit, tenant)
        return records, next_cursor, self.store.applied_revision

    # ---- forwarding ---------------------------------------------------------------------
    def forward(self, method: str, path: str, query: bytes, body: bytes, headers: dict, *, leader_wait: float):
        """Relay a client's request to the leader; returns (status, headers, body).

        ``leader_wait`` is how long the leader may take over the request before it answers."""
        leader = self.leader_peer
        if leader is None:
            raise Unavailable("no leader is known", retry_after=1)
        try:
            response = leader.forward(method, path, query=query, body=body, headers=headers,
                                      forwarded_by=self.name,
                                      timeout=leader_wait + self.config.peer_timeout)
        except TransportTimeout as error:
            logger.warning("%s: forwarding %s %s: %s", self.name, method, path, error)
            raise Timeout("the leader did not answer in time; the outcome is unknown") from None
        except TransportError as error:
            logger.warning("%s: forwarding %s %s: %s", self.name, method, path, error)
            raise Unavailable(f"the leader {self.core.leader} is unreachable", retry_after=1) from None
        relayed = {k: v for k, v in response.headers.items()
                   if k.lower() in ("content-type", "etag", "retry-after", "allow") or k.lower().startswith("x-badkv-")}
        return response.status_code, relayed, response.content

