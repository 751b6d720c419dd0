"""Leases: what one is in replicated state, the log entry that changes leases and keys together, and how a
node counts a lease's time down. No I/O and no threads.

A lease is a record of the reserved tenant ``_leases``, named by its id (the revision of the entry that
granted it), whose value is JSON: the tenant that owns it, its TTL, the time it had left when that record
was written (``remaining_ms``) and the keys attached to it, each with the revision it was attached at (a
later write of the key without the lease detaches it: its revision no longer matches).

Time model. Replicated state holds a *remaining time*, never a deadline, so no two nodes' clocks are ever
compared. Every node counts each lease record down from the moment it first holds that record, on its own
monotonic clock (``Countdown``). The leader writes the record again (a checkpoint) whenever what it holds
is more than ``checkpoint_slack_ms`` (a tenth of the TTL, at least 1 s) above the lease's real remaining time, writing the remaining time it
measures; a keepalive writes the full TTL. A node holds a record only after the leader wrote it, so its
countdown ends no earlier than the leader's: a lease never expires early, whoever leads next, and wall
clock skew between nodes does not matter at all (only each node's monotonic clock rate does). A new leader
ends a lease at most the replication delay plus the election time after the old leader would have; a node
that restarted counts from its restart, at most that slack plus its downtime late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from badkv.records import Record

LEASE_TENANT = "_leases"
MIN_TTL, MAX_TTL = 1, 86400  # seconds
MIN_CHECKPOINT_SLACK_MS = 1000


def checkpoint_slack_ms(ttl: int) -> int:
    """How far a lease record's remaining time may run ahead of the truth before the leader writes it again:
    a tenth of the TTL, at least a second (so a lease costs about ten log entries per TTL at most)."""
    return max(MIN_CHECKPOINT_SLACK_MS, ttl * 100)


@dataclass(slots=True)
class Lease:
    """A lease as its record holds it."""

    id: int
    tenant: str
    ttl: int
    remaining_ms: int
    keys: dict[str, int] = field(default_factory=dict)  # name -> the revision the key was attached at

    def value(self) -> bytes:
        return json.dumps({"tenant": self.tenant, "ttl": self.ttl, "remaining_ms": self.remaining_ms,
                           "keys": self.keys}, sort_keys=True).encode("utf-8")

    def attached(self, lookup) -> list[str]:
        """The names still attached: live, and not written again since (``lookup`` gives a name's record)."""
        names = []
        for name, revision in sorted(self.keys.items()):
            record = lookup(name)
            if record is not None and not record.deleted and record.revision == revision:
                names.append(name)
        return names


def lease_of(record: Record | None) -> Lease | None:
    """The lease a ``_leases`` record holds, or None for a tombstone or no record."""
    if record is None or record.deleted:
        return None
    data = json.loads(record.value)
    return Lease(int(record.name), data["tenant"], data["ttl"], data["remaining_ms"], data["keys"])


def lease_record(lease: Lease, revision: int) -> Record:
    return Record.build(LEASE_TENANT, str(lease.id), lease.value(), revision, revision, False)


def tombstone(record: Record, revision: int) -> Record:
    """A deletion of ``record`` that wins over it by last-writer-wins even if its timestamp is ahead."""
    return Record.build(record.tenant, record.name, b"", max(revision, record.timestamp + 1), revision, True)


def ending(lease: Lease, lookup, revision: int) -> list[Record]:
    """The records a revoke or expiry writes: the lease's tombstone and one for every attached key."""
    lease_gone = Record.build(LEASE_TENANT, str(lease.id), b"", revision, revision, True)
    return [lease_gone] + [tombstone(lookup(name), revision) for name in lease.attached(lookup)]


def lease_entry(revision: int, writes: list[Record]) -> dict:
    """One log entry writing ``writes`` (of any tenants) together: grant, keepalive, checkpoint, attach,
    revoke, expiry. The common fields every entry has, then [tenant, name, value, timestamp, deleted]."""
    return {"op": "lease", "tenant": LEASE_TENANT, "name": "", "value": b"", "timestamp": revision,
            "revision": revision,
            "writes": [[r.tenant, r.name, r.value, r.timestamp, r.deleted] for r in writes]}


def records_of_lease_entry(entry: dict) -> list[Record]:
    revision = entry["revision"]
    return [Record.build(tenant, name, b"" if deleted else bytes(value), int(timestamp), revision, bool(deleted))
            for tenant, name, value, timestamp, deleted in entry["writes"]]


class Countdown:
    """One node's count of each lease's time: from when this node first held the lease's current record,
    on ``monotonic`` (seconds), for the record's ``remaining_ms``."""

    def __init__(self, monotonic):
        self.monotonic = monotonic
        self._seen: dict[str, tuple[int, float, Lease]] = {}  # name -> (record revision, first held at, lease)

    def lease(self, record: Record) -> Lease:
        """The lease of a live ``_leases`` record, its count started now if this node had not held it."""
        seen = self._seen.get(record.name)
        if seen is None or seen[0] != record.revision:
            seen = self._seen[record.name] = (record.revision, self.monotonic(), lease_of(record))
        return seen[2]

    def wrote(self, record: Record) -> None:
        """The leader wrote ``record`` just now: its count starts now, before any node can hold it."""
        self._seen[record.name] = (record.revision, self.monotonic(), lease_of(record))

    def remaining_ms(self, record: Record) -> int:
        """The lease's time left by this node's count (0 once it is up)."""
        lease = self.lease(record)
        started = self._seen[record.name][1]
        return max(0, int(lease.remaining_ms - (self.monotonic() - started) * 1000))

    def forget_except(self, names: set[str]) -> None:
        """Drop the counts of leases that ended."""
        for name in [name for name in self._seen if name not in names]:
            del self._seen[name]
