"""What a node reports about itself: members, readiness and stats for the admin API and metrics."""

from __future__ import annotations

from badkv import __version__


def members(node) -> list[dict]:
    """Every member as this node sees it: role, reachability, in-sync state, replication position."""
    now = node.monotonic()
    isr_timeout = node.config.isr_timeout
    leader_contact = node.follower.last_leader_contact
    members = []
    membership = node.core.membership
    for name, address in _listed(node):
        voter = name in membership.voters
        if not voter:
            role = "learner" if name in membership.learners else "removed"
        elif name == node.name:
            role = node.core.role.value
        else:
            role = "leader" if name == node.core.leader else "follower"
        entry = {"name": name, "address": address, "role": role, "voter": voter, "self": name == node.name}
        progress = node.core.progress.get(name) if node.is_leader else None
        if name == node.name:
            entry.update(reachable=True, in_sync=True, last_contact_ms=0, match_index=node.core.log.last_index,
                         applied_index=node.store.applied_index)
        elif progress is not None:
            ago = now - node.replicators[name].last_ack_at
            entry.update(reachable=progress.reachable and ago <= isr_timeout, in_sync=progress.in_sync and voter,
                         last_contact_ms=round(ago * 1000), match_index=progress.match_index,
                         applied_index=progress.applied_index, isr_evictions=progress.evictions)
        elif name == node.core.leader and leader_contact is not None:
            ago = now - leader_contact
            entry.update(reachable=ago <= isr_timeout, in_sync=None, last_contact_ms=round(ago * 1000),
                         match_index=None, applied_index=None)
        else:
            entry.update(reachable=None, in_sync=None, last_contact_ms=None, match_index=None, applied_index=None)
        members.append(entry)
    return members


def _listed(node) -> list[tuple[str, str]]:
    """The members (voters first), this node if it was removed, and removed members the leader still tells."""
    listed = dict(node.core.membership.nodes)
    listed.setdefault(node.name, node.config.listen)
    for name, client in node.peers.items():
        listed.setdefault(name, client.address)
    return list(listed.items())


ROLES = ("leader", "follower")


def readiness(node, role: str | None = None) -> tuple[bool, str]:
    """Ready when a leader is known, reachable, and this node has applied what it knows is committed;
    with ``role`` ("leader" or "follower"), also only when this node has that role. A load balancer
    sends writes to the one node that answers ``role="leader"`` ready."""
    ready, reason = _readiness(node)
    if not ready or role is None or role == ("leader" if node.is_leader else "follower"):
        return ready, reason
    if role == "leader":
        return False, f"this node is a follower; {node.core.leader} leads term {node.core.current_term}"
    return False, f"this node is the leader of term {node.core.current_term}"


def _readiness(node) -> tuple[bool, str]:
    if node.storage_error is not None:
        return False, f"storage failed: {node.storage_error}"
    if node.removed_reason is not None:
        return False, node.removed_reason
    leader = node.core.leader
    if leader is None:
        return False, f"no leader is known (term {node.core.current_term}, {node.core.role.value})"
    if node.is_leader:
        if not node.core.has_quorum():
            return False, "the leader has no quorum"
        if node.store.applied_index < node.core.term_start_index:
            return False, "the leader is applying its log at the start of its term"
        if node.core.transferring:
            return False, f"the leader is handing over to {node.core.transfer_target}"
        return True, "leader"
    contact = node.follower.last_leader_contact
    if contact is None:
        return False, f"no contact with the leader {leader} yet"
    if node.monotonic() - contact > node.config.isr_timeout:
        return False, f"no contact with the leader {leader} for over {node.config.isr_timeout:g}s"
    if node.store.applied_index < node.core.commit_index:
        return False, "catching up with the leader"
    return True, "follower"


def stats(node) -> dict:
    """What /admin/stats shows: role, positions, store sizes, sync and storage counters."""
    store = node.store.stats()
    store["tenant_bytes"] = _largest(store["tenant_bytes"], node.config.tenant_metrics_top)
    core = node.core
    return {"node": node.name, "version": __version__, "role": core.role.value, "term": core.current_term,
            "leader": core.leader, "voted_for": core.voted_for, **core.counters,
            "seconds_without_leader": round(node.seconds_without_leader(), 3),
            "cluster_size": len(core.membership.voters), "learners": len(core.membership.learners),
            "acks": node.config.acks, "commit_index": node.core.commit_index,
            "last_index": node.core.log.last_index, "applied_index": store.pop("applied_index"),
            "applied_revision": store.pop("applied_revision"), **store,
            "gc_entries_proposed": node.gc.proposed, "tombstone_retention": node.config.tombstone_retention,
            "pending_writes": node.pending_writes, "watchers": len(node.store.watchers),
            "take_sync": node.take_sync.stats(),
            "storage": _storage(node), "uptime_seconds": round(node.monotonic() - node.started_at, 3)}


def _largest(sizes: dict[str, int], count: int) -> dict[str, int]:
    """The ``count`` largest entries, the rest summed under ``_other``: a million tenants stay a short list."""
    if len(sizes) <= count:
        return sizes
    kept = dict(sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:count])
    kept["_other"] = sum(sizes.values()) - sum(kept.values())
    return kept


def _storage(node) -> dict:
    if node.wal.in_memory:
        return {"in_memory": True}
    wal = node.wal.stats()
    return {"in_memory": False, "data_dir": node.config.data_dir, "wal_bytes": wal["wal_bytes"],
            "wal_segments": wal["segments"], "last_snapshot_index": wal["last_snapshot_index"],
            "last_snapshot_time": wal["last_snapshot_time"], "fsyncs": wal["fsyncs"],
            "fsync_seconds_total": round(wal["fsync_seconds_total"], 6),
            "recovery_seconds": round(node.recovery_seconds, 3)}
