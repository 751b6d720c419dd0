"""Leases on the node: grant, keepalive, revoke, show, key writes that attach to a lease, and the loop that
counts leases down on every node and, on the leader, expires and checkpoints them.

Every change is one ``lease`` log entry (``badkv.leases``) decided on the leader under the node lock, as a
transaction is: it waits until no write to any key it touches is in flight, judges applied state, and
proposes in the same hold of the lock. Only the leader ends a lease, by its own count, which never runs
ahead of the time the lease really has (see the time model in ``badkv/leases.py``).
"""

from __future__ import annotations

import logging

from badkv.errors import InvalidParameter, LeaseNotFound, NotFound, NotLeader, Timeout, Unavailable
from badkv.leases import (LEASE_TENANT, MAX_TTL, MIN_TTL, Countdown, Lease, checkpoint_slack_ms, ending,
                          lease_entry, lease_of, lease_record)
from badkv.records import Record, check_write
from badkv.store import DROPPED_TENANT

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.1  # how often every node looks at its leases (the leader ends them this close to their time)


class LeaseKeeper:
    """The leases of ``node``; every public method but ``tick`` and ``loop`` runs on the leader."""

    def __init__(self, node):
        self.node = node
        self.countdown = Countdown(node.monotonic)
        self._attached: tuple[int, dict] = (-1, {})  # (store.system_version, (tenant, name) -> (id, revision))

    # ---- what the views call ---------------------------------------------------------
    def grant(self, tenant: str, ttl: int) -> Lease:
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise InvalidParameter(f"ttl must be an integer number of seconds from {MIN_TTL} to {MAX_TTL}")
        granted = []

        def decide(revision: int) -> list[Record]:
            granted.append(Lease(revision, tenant, ttl, ttl * 1000))
            return [lease_record(granted[0], revision)]

        self._commit([(DROPPED_TENANT, tenant)], decide)
        logger.info("%s: lease %d granted to tenant %s for %d s", self.node.name, granted[0].id, tenant, ttl)
        return granted[0]

    def keepalive(self, tenant: str, lease_id: int) -> Lease:
        """Start the lease's full TTL again; NotFound once it has ended."""
        kept = []

        def decide(revision: int) -> list[Record]:
            lease, _ = self._live(tenant, lease_id, NotFound)
            lease.remaining_ms = lease.ttl * 1000
            kept.append(lease)
            return [lease_record(lease, revision)]

        self._commit([(LEASE_TENANT, str(lease_id))], decide)
        return kept[0]

    def revoke(self, tenant: str, lease_id: int) -> None:
        """End the lease now: one entry deletes it and every key attached to it."""
        self._end(lease_id, lambda: self._live(tenant, lease_id, NotFound)[0])
        logger.info("%s: lease %d of tenant %s revoked", self.node.name, lease_id, tenant)

    def show(self, tenant: str, lease_id: int) -> dict:
        """The lease's TTL, the time it has left by the leader's count, and its attached keys (by name)."""
        with self.node.lock:
            self.node.wait_until_serving(self.node.config.leader_wait)
            lease, remaining_ms = self._live(tenant, lease_id, NotFound)
            names = lease.attached(lambda name: self.node.store.get(tenant, name))
        return {"id": str(lease.id), "ttl": lease.ttl, "remaining": remaining_ms / 1000, "keys": names}

    def remaining(self, lease: Lease) -> float:
        """(After a grant or keepalive.) The seconds the lease has left by this node's count."""
        record = self.node.store.get(LEASE_TENANT, str(lease.id))
        return self.countdown.remaining_ms(record) / 1000 if record is not None and not record.deleted else 0.0

    def write(self, tenant: str, name: str, value: bytes, timestamp: int | None, if_match: int | None,
              if_none_match: bool, lease_id: int) -> Record:
        """Put a key attached to the lease (one entry with the lease's record); LeaseNotFound if none."""
        written = []
        store = self.node.store

        def decide(revision: int) -> list[Record]:
            lease, remaining_ms = self._live(tenant, lease_id, LeaseNotFound)
            current = store.get(tenant, name)
            stamp = revision if timestamp is None else timestamp  # (as Writer: the stale rule holds for it too)
            check_write(current, "put", stamp, if_match, if_none_match)
            self.node.tenants.admit_write(tenant, name, current, value, "put")
            record = Record.build(tenant, name, value, stamp, revision, False)
            # The lease's record is written again: with its real time left, else every node would count
            # the old remaining time again from now; and without keys written since without the lease.
            lease.keys = {key: lease.keys[key] for key in lease.attached(lambda key: store.get(tenant, key))
                          if key != name}
            lease.keys[name] = revision
            lease.remaining_ms = remaining_ms
            written.append(record)
            return [record, lease_record(lease, revision)]

        self._commit([(tenant, name), (LEASE_TENANT, str(lease_id)), (DROPPED_TENANT, tenant)], decide)
        return written[0]

    def leases_of(self, records: list[Record]) -> list[str | None]:
        """The id of the lease each of ``records`` is attached to, or None (range listing shows them)."""
        version, index = self._attached
        if version != self.node.store.system_version:  # a reserved tenant changed: perhaps a lease
            version, index = self.node.store.system_version, {}
            for record in self.node.store.live_records(LEASE_TENANT):
                lease = lease_of(record)
                for name, revision in lease.keys.items():
                    index[(lease.tenant, name)] = (record.name, revision)
            self._attached = (version, index)
        found = [index.get(record.key) for record in records]
        return [attached[0] if attached is not None and attached[1] == record.revision else None
                for attached, record in zip(found, records)]

    # ---- counting down ---------------------------------------------------------------
    def loop(self) -> None:
        refused = None  # the last refusal logged: one line per change, not ten a second while it lasts
        while not self.node.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
                refused = None
            except (NotLeader, Unavailable, Timeout) as error:
                if str(error) != refused:
                    logger.warning("%s: leases not ended or checkpointed for now: %s", self.node.name, error)
                    refused = str(error)
            except Exception:
                logger.exception("%s: lease tick failed; going on", self.node.name)

    def tick(self) -> None:
        """Start the count of lease records this node has not held before; on the leader, end the leases
        whose time is up and write the time left of those whose record runs too far ahead of it."""
        node = self.node
        records = node.store.live_records(LEASE_TENANT)
        countdown = self.countdown
        counts = [(record, countdown.lease(record), countdown.remaining_ms(record)) for record in records]
        countdown.forget_except({record.name for record in records})
        if not node.core.is_leader:
            return
        for record, lease, remaining_ms in counts:
            if remaining_ms == 0:
                self._expire(lease.id)
        stale = [lease.id for _, lease, remaining_ms in counts
                 if remaining_ms > 0 and lease.remaining_ms - remaining_ms > checkpoint_slack_ms(lease.ttl)]
        if stale:
            self._checkpoint(stale)

    def _expire(self, lease_id: int) -> None:
        def due() -> Lease | None:
            record = self.node.store.get(LEASE_TENANT, str(lease_id))
            if record is None or record.deleted or self.countdown.remaining_ms(record) > 0:
                return None  # kept alive or ended meanwhile
            return self.countdown.lease(record)

        if self._end(lease_id, due):
            logger.info("%s: lease %d expired", self.node.name, lease_id)

    def _checkpoint(self, lease_ids: list[int]) -> None:
        def decide(revision: int) -> list[Record]:
            writes = []
            for lease_id in lease_ids:
                record = self.node.store.get(LEASE_TENANT, str(lease_id))
                if record is not None and not record.deleted:
                    lease = lease_of(record)
                    lease.remaining_ms = self.countdown.remaining_ms(record)
                    writes.append(lease_record(lease, revision))
            return writes

        self._commit([(LEASE_TENANT, str(lease_id)) for lease_id in lease_ids], decide)

    # ---- the leader's path -----------------------------------------------------------
    def _live(self, tenant: str, lease_id: int, missing) -> tuple[Lease, int]:
        """(Lock held.) The tenant's lease and its time left by this node's count; ``missing`` if it has
        none by that id (another tenant's lease is not told apart from no lease)."""
        record = self.node.store.get(LEASE_TENANT, str(lease_id))
        if record is not None and not record.deleted:
            remaining_ms = self.countdown.remaining_ms(record)
            lease = lease_of(record)  # a copy: the caller may change it
            if lease.tenant == tenant and remaining_ms > 0:
                return lease, remaining_ms
        raise missing(f"no lease {lease_id} in tenant {tenant} (it may have expired or been revoked)")

    def _end(self, lease_id: int, find) -> bool:
        """One entry deleting the lease ``find()`` returns (None: nothing to end) and its attached keys."""
        store = self.node.store
        ended = []

        def decide(revision: int) -> list[Record]:
            lease = find()
            if lease is None:
                return []
            ended.append(lease)
            return ending(lease, lambda name: store.get(lease.tenant, name), revision)

        def keys() -> list:
            record = store.get(LEASE_TENANT, str(lease_id))
            lease = lease_of(record)
            attached = [] if lease is None else [(lease.tenant, name) for name in lease.keys]
            return [(LEASE_TENANT, str(lease_id))] + attached

        self._commit(keys, decide)
        return bool(ended)

    def _commit(self, keys, decide) -> None:
        """Admit (``keys``: a list, or a callable giving it under the lock), decide the records at a new
        revision, log them as one entry and wait until it is acknowledged, as a transaction does."""
        node = self.node
        with node.lock:
            node.writer.admit(keys() if callable(keys) else keys, "lease change")
            if callable(keys):
                node.writer.admit(keys(), "lease change")  # the lease may have gained keys while this waited
            revision = node.clock.next()
            writes = decide(revision)
            if not writes:
                return
            entry = node.core.propose(lease_entry(revision, writes))
            for record in writes:
                if record.tenant == LEASE_TENANT and not record.deleted:
                    self.countdown.wrote(record)
            pending = node.writer.carry(entry, writes)
        node.writer.await_entry(pending, "lease change")

