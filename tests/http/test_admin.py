"""Tests for badkv/http/admin.py: stats, metrics, members, health and readiness."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

import badkv
from badkv.testing.drive import hear_from

FOLLOWER = {"name": "n2", "cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3"}
KEY_ROUTE = "/api/v1/keys/<tenant>/<name>"
STATS_FIELDS = {"node": str, "version": str, "role": str, "term": int, "leader": (str, type(None)),
                "voted_for": (str, type(None)), "elections_started": int, "elections_won": int,
                "pre_votes_refused": int, "leader_changes": int, "seconds_without_leader": (int, float),
                "commit_index": int,
                "applied_index": int, "applied_revision": int, "keys": int, "tombstones": int, "bytes": int,
                "tenant_bytes": dict, "requests": dict, "uptime_seconds": (int, float)}


def stats(client) -> dict:
    response = client.get("/admin/stats")
    assert response.status_code == 200
    return response.get_json()


def metric_samples(client) -> list:
    """Every sample of a /admin/metrics scrape, parsed as Prometheus text."""
    response = client.get("/admin/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return [sample for family in families for sample in family.samples]


def sample_value(samples, name: str, **labels) -> float | None:
    values = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(values) <= 1, (name, labels)
    return values[0] if values else None


def test_stats_has_every_field_with_its_type(client):
    body = stats(client)
    for field, kind in STATS_FIELDS.items():
        assert isinstance(body[field], kind), field
    assert (body["node"], body["role"], body["leader"]) == ("t1", "leader", "t1")
    assert body["version"] == badkv.__version__
    assert body["uptime_seconds"] >= 0
    assert (body["keys"], body["tombstones"], body["bytes"], body["tenant_bytes"]) == (0, 0, 0, {})


def test_stats_follow_writes_and_deletes(client):
    before = stats(client)
    client.post("/api/v1/keys/one/a", data=b"abc")
    client.post("/api/v1/keys/two/b", data=b"hello")
    last = client.delete("/api/v1/keys/one/a").get_json()
    after = stats(client)
    assert (after["keys"], after["tombstones"], after["bytes"]) == (1, 1, 5)
    assert after["tenant_bytes"] == {"one": 0, "two": 5}
    assert after["commit_index"] == after["applied_index"] == before["commit_index"] + 3
    assert after["applied_revision"] == last["revision"] > before["applied_revision"]
    assert after["requests"][f"POST {KEY_ROUTE}"] == {"202": 2}
    assert after["requests"][f"DELETE {KEY_ROUTE}"] == {"202": 1}
    assert after["requests"]["GET /admin/stats"] == {"200": 1}


def test_stats_count_requests_by_status(client):
    client.get("/api/v1/keys/t/missing")
    client.get("/api/v1/keys/bad tenant/k")
    client.get("/api/v1/keys/t/missing")
    assert stats(client)["requests"][f"GET {KEY_ROUTE}"] == {"404": 2, "400": 1}


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_stats_on_a_follower(app, client, config_values):
    body = stats(client)
    assert (body["node"], body["role"], body["leader"], body["term"]) == ("n2", "follower", None, 0)
    hear_from(app.extensions["badkv_node"], "n1", term=3)
    body = stats(client)
    assert (body["role"], body["leader"], body["term"], body["leader_changes"]) == ("follower", "n1", 3, 1)


def test_metrics_count_requests_by_route_method_and_status(client):
    client.post("/api/v1/keys/t/k", data=b"v")
    client.post("/api/v1/keys/t/k/1", data=b"v")
    client.get("/api/v1/keys/t/missing")
    client.get("/no/such/route")
    samples = metric_samples(client)
    total = "badkv_http_requests_total"
    assert sample_value(samples, total, route=KEY_ROUTE, method="POST", status="202") == 1
    assert sample_value(samples, total, route=f"{KEY_ROUTE}/<timestamp>", method="POST", status="409") == 1
    assert sample_value(samples, total, route=KEY_ROUTE, method="GET", status="404") == 1
    assert sample_value(samples, total, route="unmatched", method="GET", status="404") == 1


def test_metrics_have_the_latency_histogram(client):
    client.post("/api/v1/keys/t/k", data=b"v")
    client.post("/api/v1/keys/t/k", data=b"v")
    samples = metric_samples(client)
    name = "badkv_http_request_duration_seconds"
    labels = {"route": KEY_ROUTE, "method": "POST"}
    assert sample_value(samples, f"{name}_count", **labels) == 2
    assert sample_value(samples, f"{name}_sum", **labels) > 0
    assert sample_value(samples, f"{name}_bucket", le="+Inf", **labels) == 2
    buckets = [s.value for s in samples if s.name == f"{name}_bucket" and s.labels["route"] == KEY_ROUTE
               and s.labels["method"] == "POST"]
    assert len(buckets) > 5 and buckets == sorted(buckets)


def test_metrics_gauges_follow_the_store(client):
    empty = metric_samples(client)
    assert (sample_value(empty, "badkv_keys"), sample_value(empty, "badkv_bytes")) == (0, 0)
    client.post("/api/v1/keys/t/a", data=b"1234")
    client.post("/api/v1/keys/t/b", data=b"12")
    client.delete("/api/v1/keys/t/b")
    samples = metric_samples(client)
    assert sample_value(samples, "badkv_keys") == 1
    assert sample_value(samples, "badkv_bytes") == 4
    assert sample_value(samples, "badkv_tombstones") == 1
    assert sample_value(samples, "badkv_tenant_bytes", tenant="t") == 5  # values and live keys' names
    assert sample_value(samples, "badkv_is_leader") == 1


def test_members_of_a_single_node(client, config):
    response = client.get("/admin/members")
    assert response.status_code == 200
    (member,) = response.get_json()
    assert member["name"] == "t1"
    assert member["address"] == config.listen
    assert (member["role"], member["self"], member["reachable"], member["in_sync"]) == ("leader", True, True, True)
    assert member["last_contact_ms"] == 0
    assert member["match_index"] == stats(client)["commit_index"]


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_members_on_a_follower_list_the_whole_cluster(app, client, config_values):
    members = client.get("/admin/members").get_json()
    assert [(m["name"], m["role"], m["self"], m["voter"]) for m in members] == [
        ("n1", "follower", False, True), ("n2", "follower", True, True), ("n3", "follower", False, True)]
    assert members[0]["reachable"] is None  # never heard from
    hear_from(app.extensions["badkv_node"], "n1")
    members = client.get("/admin/members").get_json()
    assert [m["role"] for m in members] == ["leader", "follower", "follower"] and members[0]["reachable"]


def test_health_is_200(client):
    response = client.get("/admin/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "node": "t1"}


def test_ready_on_a_single_node(client):
    response = client.get("/admin/ready")
    assert response.status_code == 200
    assert response.get_json()["ready"] is True


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_follower_that_never_heard_from_its_leader_is_not_ready(client, config_values):
    response = client.get("/admin/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ready"] is False
    assert "no leader is known" in body["reason"]
    assert client.get("/admin/health").status_code == 200


def test_ready_as_leader_only_on_the_leader(client):
    leader = client.get("/admin/ready?role=leader")
    assert leader.status_code == 200 and leader.get_json()["reason"] == "leader"
    follower = client.get("/admin/ready?role=follower")
    assert follower.status_code == 503
    assert follower.get_json() == {"ready": False, "reason": "this node is the leader of term 1", "node": "t1"}


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_ready_as_follower_only_on_a_ready_follower(app, client, config_values):
    assert client.get("/admin/ready?role=follower").status_code == 503  # no leader known yet
    hear_from(app.extensions["badkv_node"], "n1", term=4)
    assert client.get("/admin/ready?role=follower").status_code == 200
    leader = client.get("/admin/ready?role=leader")
    assert leader.status_code == 503
    assert leader.get_json()["reason"] == "this node is a follower; n1 leads term 4"


def test_ready_refuses_an_unknown_role(client):
    response = client.get("/admin/ready?role=boss")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_parameter", "message": "role must be leader or follower"}
