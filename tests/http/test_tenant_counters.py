"""Tests for badkv/http/tenant_counters.py and the per-tenant series: bounded however many tenants there are."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from badkv.http.tenant_counters import OTHER, TenantCounters


def test_requests_and_refusals_are_counted_per_tenant():
    counters = TenantCounters()
    for status in (202, 200, 403, 507, 429, 401, 404):
        counters.count("acme", status)
    assert counters.by_tenant() == {"acme": {"requests": 7, "refusals": 4}}


def test_tenants_past_the_cap_are_summed_as_other():
    counters = TenantCounters(max_tenants=2)
    for tenant in ("a", "b", "c", "d", "a"):
        counters.count(tenant, 200)
    assert counters.by_tenant() == {"a": {"requests": 2, "refusals": 0}, "b": {"requests": 1, "refusals": 0},
                                    OTHER: {"requests": 2, "refusals": 0}}


def test_top_keeps_the_busiest_and_sums_the_rest():
    counters = TenantCounters()
    for tenant, times in (("a", 5), ("b", 1), ("c", 3), ("d", 2)):
        for _ in range(times):
            counters.count(tenant, 200)
    assert counters.top(2) == {"a": {"requests": 5, "refusals": 0}, "c": {"requests": 3, "refusals": 0},
                               OTHER: {"requests": 3, "refusals": 0}}
    assert set(counters.top(10)) == {"a", "b", "c", "d"}


def tenant_labels(client, name):
    text = client.get("/admin/metrics").get_data(as_text=True)
    return {sample.labels["tenant"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


@pytest.mark.parametrize("config_values", [{"tenant_metrics_top": 2}])
def test_prometheus_labels_only_the_top_tenants(client):
    for tenant, times in (("a", 3), ("b", 2), ("c", 1), ("d", 1)):
        for i in range(times):
            assert client.post(f"/api/v1/keys/{tenant}/k{i}", data=b"xy").status_code == 202
    assert tenant_labels(client, "badkv_tenant_requests_total") == {"a": 3, "b": 2, OTHER: 2}
    assert tenant_labels(client, "badkv_tenant_keys") == {"a": 3, "b": 2, OTHER: 2}
    assert tenant_labels(client, "badkv_tenant_bytes") == {"a": 12, "b": 8, OTHER: 8}  # values and names
    stats = client.get("/admin/stats").get_json()
    assert set(stats["tenant_top"]) == {"a", "b", OTHER}
    assert stats["tenant_top"][OTHER] == {"requests": 2, "refusals": 0, "keys": 2, "bytes": 8}  # as quotas count
    assert stats["tenant_bytes"] == {"a": 6, "b": 4, OTHER: 4}  # the values alone, as the store's "bytes"


def test_refusals_show_in_prometheus(client):
    client.put("/admin/tenants/acme/quota", json={"keys": 1})
    client.post("/api/v1/keys/acme/a", data=b"x")
    client.post("/api/v1/keys/acme/b", data=b"x")
    assert tenant_labels(client, "badkv_tenant_refusals_total") == {"acme": 1}
