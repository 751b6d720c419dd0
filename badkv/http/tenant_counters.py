"""Per-tenant request and refusal counters, and their bounded summary for /admin/stats and Prometheus.

Counting happens on every key request, so it is one dict update under a lock.
The number of tenants counted by name is capped (a client can make up tenant
names in URLs); past the cap, requests are summed under ``_other``. Prometheus
gets labels only for the busiest ``tenant_metrics_top`` tenants, the rest summed
under ``tenant="_other"``, so a million tenants are still a handful of series.
"""

from __future__ import annotations

import heapq
import threading

OTHER = "_other"
MAX_COUNTED_TENANTS = 100_000
REFUSALS = frozenset({401, 403, 429, 507})  # a token or a quota said no


class TenantCounters:
    """Requests and refusals per tenant on this node, thread-safe, with at most ``max_tenants`` names."""

    def __init__(self, max_tenants: int = MAX_COUNTED_TENANTS):
        self._lock = threading.Lock()
        self.max_tenants = max_tenants
        self._counts: dict[str, list[int]] = {}  # tenant -> [requests, refusals]

    def count(self, tenant: str, status: int) -> None:
        with self._lock:
            counts = self._counts.get(tenant)
            if counts is None:
                if len(self._counts) >= self.max_tenants:
                    tenant = OTHER
                counts = self._counts.setdefault(tenant, [0, 0])
            counts[0] += 1
            counts[1] += status in REFUSALS

    def by_tenant(self) -> dict[str, dict]:
        with self._lock:
            return {tenant: {"requests": c[0], "refusals": c[1]} for tenant, c in self._counts.items()}

    def top(self, n: int) -> dict[str, dict]:
        """The ``n`` busiest tenants by requests, and everyone else summed under ``_other``."""
        counts = self.by_tenant()
        busiest = heapq.nlargest(n, (t for t in counts if t != OTHER), key=lambda t: counts[t]["requests"])
        summary = {tenant: counts.pop(tenant) for tenant in busiest}
        if counts:
            summary[OTHER] = {"requests": sum(c["requests"] for c in counts.values()),
                              "refusals": sum(c["refusals"] for c in counts.values())}
        return summary
