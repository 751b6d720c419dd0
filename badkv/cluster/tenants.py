"""The node's tenant administration: tokens, quotas, and who a request's token is.

Every change here is an ordinary write of a reserved tenant's record through
the leader's write path (``Writer``), so it is replicated, acknowledged, kept in
snapshots and repaired by take sync like any key. The HTTP layer relays these
requests to the leader; here they run on the leader.
"""

from __future__ import annotations

import json
import logging

from badkv.errors import Conflict, NotFound, PreconditionFailed, TenantExists
from badkv.security.quotas import (QUOTA_TENANT, Quota, RateLimiter, check_usage, effective_quota,
                                   parse_quota_body, quotas_by_tenant)
from badkv.security.tokens import (AUTH_TENANT, SystemTable, TokenIndex, is_reserved, new_token, read_admin_token,
                                   token_record_value)
from badkv.records import stored_size
from badkv.store import DROPPED_TENANT

logger = logging.getLogger(__name__)


class Tenants:
    """Tenant tokens, quotas and drop for ``node``; ``identify`` is on every request's path with auth on,
    ``admit_write`` on every write's path on the leader."""

    def __init__(self, node):
        self.node = node
        config = node.config
        admin_token = read_admin_token(config.admin_token_file) if config.admin_token_file else None
        self.admin_token = admin_token  # also opens the leader's take feed for this node's take sync
        self.tokens = TokenIndex(node.store, admin_token)
        self.default_quota = Quota(config.tenant_max_keys, config.tenant_max_bytes, config.tenant_writes_per_second)
        self.quotas = SystemTable(node.store, QUOTA_TENANT, quotas_by_tenant)
        self.rates = RateLimiter(node.monotonic)

    def identify(self, token: str | None):
        """``TokenIndex.ADMIN``, the tenant the token opens, or None."""
        return self.tokens.identify(token)

    def create(self, tenant: str) -> str:
        """A new token for a tenant that has none; the token is returned once and never stored."""
        token = new_token()
        try:
            self.node.write("put", AUTH_TENANT, tenant, token_record_value(token), if_none_match=True)
        except PreconditionFailed:
            raise TenantExists(f"tenant {tenant} has a token already; rotate it to get a new one",
                               tenant=tenant) from None
        logger.info("%s: token created for tenant %s", self.node.name, tenant)
        return token

    def rotate(self, tenant: str) -> str:
        """Replace the tenant's token: the old one stops opening anything wherever this entry applies."""
        current = self.node.store.get(AUTH_TENANT, tenant)
        if current is None or current.deleted:
            raise NotFound(f"tenant {tenant} has no token; create one first", tenant=tenant)
        token = new_token()
        try:
            self.node.write("put", AUTH_TENANT, tenant, token_record_value(token), if_match=current.revision)
        except PreconditionFailed:
            raise Conflict(f"tenant {tenant}'s token changed while it was rotated; try again",
                           tenant=tenant) from None
        logger.info("%s: token rotated for tenant %s", self.node.name, tenant)
        return token

    def revoke(self, tenant: str) -> None:
        """Delete the tenant's token (NotFound if it has none); its keys stay."""
        try:
            self.node.write("delete", AUTH_TENANT, tenant)
        except NotFound:
            raise NotFound(f"tenant {tenant} has no token", tenant=tenant) from None
        logger.info("%s: token revoked for tenant %s", self.node.name, tenant)

    def has_token(self, tenant: str) -> bool:
        record = self.node.store.get(AUTH_TENANT, tenant)
        return record is not None and not record.deleted

    def quota_of(self, tenant: str) -> Quota:
        return effective_quota(self.quotas.current().get(tenant), self.default_quota)

    def set_quota(self, tenant: str, body) -> Quota:
        """Store the tenant's own quota fields (absent ones follow the defaults); returns the quota in force."""
        fields = parse_quota_body(body)
        self.node.write("put", QUOTA_TENANT, tenant, json.dumps(fields, sort_keys=True).encode())
        logger.info("%s: quota of tenant %s set to %s", self.node.name, tenant, fields)
        return self.quota_of(tenant)

    def admit_write(self, tenant: str, name: str, current, value: bytes, op: str) -> None:
        """(Leader, node lock held.) Raise QuotaExceeded or RateLimited if this write may not go on.

        Writes in flight count: the pending records of the tenant (one per key at most, since a write
        to a key waits for the one in flight) are added to the applied usage, and admission is
        serialised by the node lock, so two writes cannot both take the last key or byte."""
        if is_reserved(tenant):
            return
        quota = self.quota_of(tenant)
        if quota.keys or quota.bytes:
            live = current is not None and not current.deleted
            size = len(name.encode("utf-8", "surrogatepass")) + len(value) if op == "put" else 0
            change = ((op == "put") - live, size - stored_size(current))
            keys, size = self.node.store.usage(tenant)
            in_flight = self._in_flight(tenant, (name,))
            check_usage(quota, tenant, (keys + in_flight[0], size + in_flight[1]), change)
        self.rates.admit(tenant, quota.writes_per_second)

    def admit_txn(self, tenant: str, writes: list, replaced: dict) -> None:
        """(Leader, node lock held.) ``admit_write`` for a transaction's writes as a whole: their net change
        of keys and bytes against the quota, and each of them as one write against the rate; ``replaced``
        holds the applied record each write replaces. Refused, nothing of it is stored."""
        if is_reserved(tenant) or not writes:
            return
        quota = self.quota_of(tenant)
        if quota.keys or quota.bytes:
            change = (sum(_is_live(record) - _is_live(replaced[record.name]) for record in writes),
                      sum(stored_size(record) - stored_size(replaced[record.name]) for record in writes))
            keys, size = self.node.store.usage(tenant)
            in_flight = self._in_flight(tenant, replaced)
            check_usage(quota, tenant, (keys + in_flight[0], size + in_flight[1]), change)
        self.rates.admit(tenant, quota.writes_per_second, cost=len(writes))

    def _in_flight(self, tenant: str, names) -> tuple[int, int]:
        """Keys and bytes the tenant's admitted, not yet applied writes add (to other keys than ``names``)."""
        keys = size = 0
        store = self.node.store
        for (pending_tenant, pending_name), record in self.node.applier.pending.items():
            if pending_tenant != tenant or pending_name in names:
                continue
            applied = store.get(tenant, pending_name)
            keys += (not record.deleted) - (applied is not None and not applied.deleted)
            size += stored_size(record) - stored_size(applied)
        return keys, size

    def drop(self, tenant: str) -> None:
        """Remove every key of the tenant with one replicated entry: a marker record of ``_dropped``
        that the store of every node applies by dropping the tenant's older records (its token and
        quota stay: revoke the token too to lock the tenant out)."""
        self.node.write("put", DROPPED_TENANT, tenant, b"")
        logger.info("%s: tenant %s dropped", self.node.name, tenant)

    def listing(self, counts: dict[str, dict]) -> list[dict]:
        """Every client tenant with keys, a token or counted requests: its usage, quota and counters."""
        usage = {t: u for t, u in self.node.store.usage_by_tenant().items() if not is_reserved(t)}
        names = set(usage) | {r.name for r in self.node.store.live_records(AUTH_TENANT)}
        names |= {t for t in counts if not is_reserved(t)} | set(self.quotas.current())
        no_counts = {"requests": 0, "refusals": 0}
        return [{"tenant": tenant, "keys": usage.get(tenant, (0, 0))[0], "bytes": usage.get(tenant, (0, 0))[1],
                 "token": self.has_token(tenant), "quota": self.quota_of(tenant).to_json(),
                 **counts.get(tenant, no_counts)} for tenant in sorted(names)]


def _is_live(record) -> int:
    return int(record is not None and not record.deleted)
