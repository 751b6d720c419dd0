"""The node's tenant administration: tokens, and who a request's token is.

Every change here is an ordinary write of a reserved tenant's record through
the leader's write path (``Writer``), so it is replicated, acknowledged, kept in
snapshots and repaired by take sync like any key. The HTTP layer relays these
requests to the leader; here they run on the leader.
"""

from __future__ import annotations

import logging

from badkv.errors import Conflict, NotFound, PreconditionFailed, TenantExists
from badkv.security.tokens import (AUTH_TENANT, TokenIndex, is_reserved, new_token, read_admin_token,
                                   token_record_value)

logger = logging.getLogger(__name__)


class Tenants:
    """Tenant tokens for ``node``; ``identify`` is on every request's path when auth is on."""

    def __init__(self, node):
        self.node = node
        config = node.config
        admin_token = read_admin_token(config.admin_token_file) if config.admin_token_file else None
        self.admin_token = admin_token  # also opens the leader's take feed for this node's take sync
        self.tokens = TokenIndex(node.store, admin_token)

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

    def listing(self, counts: dict[str, dict]) -> list[dict]:
        """Every client tenant with keys, a token or counted requests: its usage, quota and counters."""
        usage = {t: u for t, u in self.node.store.usage_by_tenant().items() if not is_reserved(t)}
        names = set(usage) | {r.name for r in self.node.store.live_records(AUTH_TENANT)}
        names |= {t for t in counts if not is_reserved(t)}
        return [{"tenant": tenant, "keys": usage.get(tenant, (0, 0))[0], "bytes": usage.get(tenant, (0, 0))[1],
                 "token": self.has_token(tenant), **counts.get(tenant, {"requests": 0, "refusals": 0})}
                for tenant in sorted(names)]
