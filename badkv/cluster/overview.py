"""The cluster at a glance, as one node sees it: each member with its term and lag, the election
counters and the largest tenants, for ``GET /admin/overview`` and the dashboard.

Only the leader knows where every member is (its per-follower progress); a follower knows itself and
when it last heard from the leader. ``badkv.http.dashboard`` therefore asks the leader for this view
and falls back to the node's own when no leader answers.
"""

from __future__ import annotations

import heapq

from badkv.cluster import status
from badkv.security.tokens import is_reserved


def view(node) -> dict:
    """This node's view of the cluster (see ``members`` for what each member row holds)."""
    core = node.core
    return {"node": node.name, "role": core.role.value, "term": core.current_term, "leader": core.leader,
            "commit_index": core.commit_index, "last_index": core.log.last_index,
            "applied_index": node.store.applied_index, "members": members(node),
            "elections_started": core.counters["elections_started"],
            "elections_won": core.counters["elections_won"], "leader_changes": core.counters["leader_changes"],
            "uptime_seconds": round(node.monotonic() - node.started_at, 3)}


def members(node) -> list[dict]:
    """``status.members`` with two more fields per member.

    ``term``: this node's own term; for another member, the leader's term when that member is known to
    be in it (on the leader: it answered within the in-sync timeout, and a member answering with a
    higher term would have made the leader step down; on a follower: the leader it heard from lately);
    else null. ``lag``: log entries the member is behind the leader's last index, known on the leader
    only (0 for the leader itself), else null."""
    core = node.core
    rows = status.members(node)
    for row in rows:
        known_in_term = row["self"] or (row["reachable"] and (node.is_leader or row["role"] == "leader"))
        row["term"] = core.current_term if known_in_term else None
        if node.is_leader and row["match_index"] is not None:
            row["lag"] = max(0, core.log.last_index - row["match_index"])
        else:
            row["lag"] = None
    return rows


def tenants_by_keys(node, count: int) -> list[dict]:
    """The ``count`` tenants with the most live keys on this node (system tenants left out)."""
    usage = ((tenant, keys, size) for tenant, (keys, size) in node.store.usage_by_tenant().items()
             if not is_reserved(tenant))
    largest = heapq.nlargest(count, usage, key=lambda item: (item[1], item[2]))
    return [{"tenant": tenant, "keys": keys, "bytes": size} for tenant, keys, size in largest]
