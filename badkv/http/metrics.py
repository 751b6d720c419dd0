"""Prometheus metrics: request counts and latency per route, store gauges read at scrape time, and
per-tenant series for the busiest tenants only (``-tenant-metrics-top``), the rest summed as ``_other``.

Each app gets its own registry so several apps (tests) never collide.
"""

from __future__ import annotations

import time

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from badkv.cluster import status
from badkv.http.parking import Parked
from badkv.http.tenant_counters import OTHER, TenantCounters
from badkv.security.tokens import is_reserved

disable_created_metrics()  # the *_created series only add noise to every scrape

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


UNOPENED = frozenset({400, 401, 403})


class NodeCollector:
    """Gauges computed from the node's stats when scraped, not on the request path."""

    def __init__(self, node):
        self.node = node

    def collect(self):
        stats = status.stats(self.node)
        for name, help_text in (("keys", "Live keys"), ("tombstones", "Deleted keys kept as tombstones"),
                                ("bytes", "Bytes of live values"), ("commit_index", "Commit index"),
                                ("applied_index", "Applied log index"), ("last_index", "Last log index"),
                                ("applied_revision", "Revision of the last applied write"),
                                ("horizon", "Tombstone gc horizon: take cursors below it (but 0) are refused"),
                                ("term", "Current term"), ("watchers", "Watches waiting here for a change")):
            yield GaugeMetricFamily(f"badkv_{name}", help_text, value=stats[name])
        leader = GaugeMetricFamily("badkv_is_leader", "1 on the leader", value=int(stats["role"] == "leader"))
        yield leader
        for name, help_text in (("elections_started", "Elections this node stood in (after a won pre-vote)"),
                                ("elections_won", "Elections this node won"),
                                ("pre_votes_started", "Pre-vote rounds this node started"),
                                ("pre_votes_refused", "Pre-votes this node refused another node"),
                                ("leader_changes", "Times this node saw a new leader"),
                                ("tombstones_removed", "Tombstones removed by gc entries since this process started"),
                                ("gc_entries_proposed", "Tombstone gc entries this node proposed as leader")):
            yield CounterMetricFamily(f"badkv_{name}", help_text, value=stats[name])
        yield CounterMetricFamily("badkv_seconds_without_leader", "Seconds this node knew no leader",
                                  value=stats["seconds_without_leader"])
        sync = stats["take_sync"]
        yield GaugeMetricFamily("badkv_take_sync_runs", "Take sync runs", value=sync["runs"])
        yield GaugeMetricFamily("badkv_take_sync_applied", "Records applied by take sync", value=sync["records_applied"])
        yield GaugeMetricFamily("badkv_take_sync_errors", "Failed take sync runs", value=sync["errors"])
        storage = stats["storage"]
        if not storage["in_memory"]:
            yield GaugeMetricFamily("badkv_wal_bytes", "Bytes in write-ahead log segments", value=storage["wal_bytes"])
            yield GaugeMetricFamily("badkv_wal_segments", "Write-ahead log segment files",
                                    value=storage["wal_segments"])
            yield GaugeMetricFamily("badkv_last_snapshot_index", "Log index of the newest snapshot",
                                    value=storage["last_snapshot_index"] or 0)


class TenantCollector:
    """Per-tenant series with bounded label values: the busiest tenants by requests, the rest as ``_other``."""

    def __init__(self, metrics: "Metrics"):
        self.metrics = metrics

    def collect(self):
        summary = self.metrics.tenant_summary()
        families = [(CounterMetricFamily, "requests", "Key and take requests per tenant (the busiest by name)"),
                    (CounterMetricFamily, "refusals", "Requests per tenant refused with 401, 403, 429 or 507"),
                    (GaugeMetricFamily, "keys", "Live keys per tenant"),
                    (GaugeMetricFamily, "bytes", "Bytes of live values per tenant")]
        for family_class, field, help_text in families:
            family = family_class(f"badkv_tenant_{field}", help_text, labels=["tenant"])
            for tenant, values in summary.items():
                family.add_metric([tenant], values[field])
            yield family


class Metrics:
    """The registry of one app and the hooks that count its requests."""

    def __init__(self, node):
        self.registry = CollectorRegistry()
        self.requests = Counter("badkv_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("badkv_http_request_duration_seconds", "HTTP request latency by route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.node = node
        self.registry.register(NodeCollector(node))
        self.registry.register(TenantCollector(self))
        if node.fsyncs:  # nothing to fsync in memory: no empty histogram either
            fsync = Histogram("badkv_wal_fsync_seconds", "Time of one write-ahead log fsync",
                              buckets=LATENCY_BUCKETS, registry=self.registry)
            node.observe_fsyncs(fsync.observe)
        self.counts: dict[tuple[str, str, int], int] = {}
        self.tenants = TenantCounters()

    def instrument(self, app: Flask) -> None:
        """Count and time every request in a WSGI wrapper: cheaper than Flask's hooks."""
        inner = app.wsgi_app
        children: dict[tuple, tuple] = {}

        class RememberedRequest(app.request_class):
            """Leaves itself in the environ so the wrapper can read the matched route afterwards."""

            def __init__(self, environ, *args, **kwargs):
                super().__init__(environ, *args, **kwargs)
                environ["badkv.request"] = self

        app.request_class = RememberedRequest

        def counted_wsgi_app(environ, start_response):
            started = time.perf_counter()
            statuses = []

            def capture_status(status, headers, exc_info=None):
                statuses.append(status)
                return start_response(status, headers, exc_info)

            parked = False
            try:
                return inner(environ, capture_status)
            except Parked:
                parked = True  # not answered yet: counted when it is, once
                raise
            finally:
                if not parked:
                    count(environ, statuses, started)

        def count(environ, statuses, started):
            request = environ.get("badkv.request")
            rule = request.url_rule if request is not None else None
            key = (id(rule), environ.get("REQUEST_METHOD", ""), statuses[0][:3] if statuses else "500")
            child = children.get(key)
            if child is None:
                route = rule.rule if rule is not None else "unmatched"
                child = children[key] = (self.requests.labels(route, key[1], key[2]),
                                         self.latency.labels(route, key[1]))
            child[0].inc()
            child[1].observe(time.perf_counter() - started)
            if request is not None and request.blueprint in ("api", "txn", "leases") and key[2] != "400":
                self._count_tenant(request, int(key[2]))

        app.wsgi_app = counted_wsgi_app

    def _count_tenant(self, request, status_code: int) -> None:
        # Not for a request the tenant's token did not open (400 a bad name, 401, 403): anyone could
        # then fill the table, and the top-N series, with tenants that do not exist.
        if status_code in UNOPENED:
            return
        tenant = (request.view_args or {}).get("tenant")
        if tenant is None and request.endpoint == "api.take":
            tenant = request.args.get("tenant")
        if tenant is not None:
            self.tenants.count(tenant, status_code)

    def tenant_counts(self) -> dict[str, dict]:
        """Requests and refusals per tenant this node answered (for /admin/tenants)."""
        return self.tenants.by_tenant()

    def tenant_summary(self) -> dict[str, dict]:
        """Requests, refusals, keys and bytes of the ``tenant_metrics_top`` busiest tenants by requests,
        everyone else summed under ``_other``: bounded however many tenants there are."""
        top = self.node.config.tenant_metrics_top
        summary = {tenant: {**counts, "keys": 0, "bytes": 0}
                   for tenant, counts in self.tenants.top(top).items()}
        other = summary.get(OTHER, {"requests": 0, "refusals": 0, "keys": 0, "bytes": 0})
        for tenant, (keys, size) in self.node.store.usage_by_tenant().items():
            if is_reserved(tenant):
                continue
            target = summary[tenant] if tenant in summary and tenant != OTHER else other
            target["keys"] += keys
            target["bytes"] += size
        if any(other.values()):
            summary[OTHER] = other
        return summary

    def request_counts(self) -> dict:
        """Requests so far by route and status, for /admin/stats."""
        counts: dict[str, dict[str, float]] = {}
        for metric in self.requests.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    labels = sample.labels
                    by_route = counts.setdefault(f"{labels['method']} {labels['route']}", {})
                    by_route[labels["status"]] = int(sample.value)
        return counts

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
