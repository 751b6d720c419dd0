"""Tests for badkv/api.py: every status code of the public API through Flask's test client."""

import base64
import json
import time
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badkv.app import create_app
from badkv.cluster.node import Node
from badkv.config import Config
from badkv.testing.drive import answer_appends, elect, hear_from

MAX_TIMESTAMP = 2 ** 63
FOLLOWER = {"name": "n2", "cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3",
            "peer_timeout": 0.5, "write_timeout": 0.5, "leader_wait": 0.3}
LONELY_LEADER = {"name": "n1", "cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3",
                 "heartbeat_interval": 0.01, "election_timeout": 0.05, "isr_timeout": 0.05,
                 "write_timeout": 0.05, "leader_wait": 0.05}


def key_url(tenant: str, name: str, timestamp=None) -> str:
    url = f"/api/v1/keys/{quote(tenant, safe='')}/{quote(name, safe='')}"
    return url if timestamp is None else f"{url}/{quote(str(timestamp), safe='')}"


def put(client, tenant="acme", name="greeting", value=b"hello", timestamp=None, headers=None):
    return client.post(key_url(tenant, name, timestamp), data=value, headers=headers or {})


def delete(client, tenant="acme", name="greeting", timestamp=None, headers=None):
    return client.delete(key_url(tenant, name, timestamp), headers=headers or {})


def get(client, tenant="acme", name="greeting", **query):
    return client.get(key_url(tenant, name), query_string=query)


def take_all(client, since=0, limit=1000, tenant=None, max_pages=1000) -> list[dict]:
    """Page through the take feed from ``since`` until a page comes back empty."""
    records, cursor = [], since
    for _ in range(max_pages):
        query = {"limit": limit} if tenant is None else {"limit": limit, "tenant": tenant}
        page = client.get(f"/api/v1/take/{cursor}", query_string=query)
        assert page.status_code == 200
        body = page.get_json()
        assert len(body["records"]) <= limit
        if not body["records"]:
            return records
        assert body["next"] > body["records"][-1]["revision"]
        records.extend(body["records"])
        cursor = body["next"]
    raise AssertionError("take never came to an empty page")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def assert_record_headers(response, timestamp: int, revision: int) -> None:
    assert response.headers["X-Badkv-Timestamp"] == str(timestamp)
    assert response.headers["X-Badkv-Revision"] == str(revision)
    assert response.headers["ETag"] == f'"{revision}"'


@pytest.fixture
def lonely_node():
    """A leader of three, elected by hand, whose followers took its start-of-term no-op and then never
    answered again (no threads run); its time moves only when the test ticks it."""
    config = Config.from_sources({**LONELY_LEADER, "in_memory": True})
    node = Node(config)
    elect(node)
    answer_appends(node, rounds=2)  # one round carries the no-op, the next tells the followers it committed
    assert node.store.applied_index == node.core.term_start_index
    yield node
    node.stop()


@pytest.fixture
def lonely_leader(lonely_node):
    return create_app(lonely_node.config, node=lonely_node).test_client()


# ---- GET ----------------------------------------------------------------------------------------

def test_get_returns_the_value_with_its_headers(client):
    written = put(client, value=b"\x00\xffbinary")
    response = get(client)
    assert response.status_code == 200
    assert response.data == b"\x00\xffbinary"
    assert response.mimetype == "application/octet-stream"
    body = written.get_json()
    assert_record_headers(response, body["timestamp"], body["revision"])


def test_get_of_an_empty_value(client):
    assert put(client, value=b"").status_code == 202
    response = get(client)
    assert (response.status_code, response.data) == (200, b"")


@pytest.mark.parametrize("history", ["missing", "deleted"])
def test_get_missing_or_deleted_is_404(client, history):
    if history == "deleted":
        put(client)
        assert delete(client).status_code == 202
    assert_error(get(client), 404, "not_found")


# ---- POST ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("timestamp", [None, 0, 1234, MAX_TIMESTAMP - 1])
def test_post_is_202_with_consistent_body_and_headers(client, timestamp):
    response = put(client, value=b"v1", timestamp=timestamp)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["tenant"], body["name"]) == ("acme", "greeting")
    if timestamp is None:
        assert body["timestamp"] == body["revision"]
    else:
        assert body["timestamp"] == timestamp
    assert_record_headers(response, body["timestamp"], body["revision"])
    assert_record_headers(get(client), body["timestamp"], body["revision"])


@pytest.mark.parametrize("name", ["plain", 'with"quote', "back\\slash", "ünïcode", "sp ace", "it's"])
def test_post_answer_is_the_json_of_the_key_whatever_the_name(client, name):
    response = put(client, name=name)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["tenant"], body["name"]) == ("acme", name)
    assert response.get_data(as_text=True) == json.dumps(body)  # the bytes json.dumps would give


def test_revisions_strictly_increase(client):
    revisions = [put(client, name=f"k{i % 3}", value=b"x").get_json()["revision"] for i in range(20)]
    assert revisions == sorted(set(revisions))


def test_write_without_timestamp_orders_after_explicit_past_ones(client):
    assert put(client, value=b"old", timestamp=5).status_code == 202
    assert put(client, value=b"new").status_code == 202
    assert get(client).data == b"new"


# ---- 400 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["post", "delete", "get"])
@pytest.mark.parametrize("tenant", [
    "x" * 129, "a b", "a:b", "a+b", "ä", "a%b", "a\x00",
    "abc\n",
])
def test_bad_tenant_is_400(client, method, tenant):
    assert_error(getattr(client, method)(key_url(tenant, "k")), 400, "invalid_tenant")
    assert take_all(client) == []


@pytest.mark.parametrize("method", ["post", "delete", "get"])
@pytest.mark.parametrize("name", [
    "é" * 513, "x" * 1025, "a\x00b", "a\x1fb", "a\x7fb", "\n",
    "a\x85b",
])
def test_bad_name_is_400(client, method, name):
    response = getattr(client, method)(key_url("acme", name))
    assert_error(response, 400, "invalid_name")
    assert take_all(client) == []


@pytest.mark.parametrize(("tenant", "name"), [("x" * 128, "k"), ("acme", "é" * 512), ("acme", "x" * 1024),
                                              ("A.b_c-9", "日本語 with spaces"), ("t", "%41")])
def test_names_and_tenants_at_the_limits_are_accepted(client, tenant, name):
    assert put(client, tenant, name, b"v").status_code == 202
    response = get(client, tenant, name)
    assert (response.status_code, response.data) == (200, b"v")


@pytest.mark.parametrize("method", ["post", "delete"])
@pytest.mark.parametrize("timestamp", ["-1", "abc", "1.5", "1e9", "0x10", str(MAX_TIMESTAMP),
                                       "99999999999999999999", "１２", " 1", "+1"])
def test_bad_timestamp_is_400(client, method, timestamp):
    put(client)
    response = getattr(client, method)(key_url("acme", "greeting", timestamp))
    assert_error(response, 400, "invalid_timestamp")
    assert get(client).data == b"hello"


@pytest.mark.parametrize("timestamp", ["-1", "abc", str(MAX_TIMESTAMP), "１"])
def test_bad_take_cursor_is_400(client, timestamp):
    assert_error(client.get(f"/api/v1/take/{quote(timestamp)}"), 400, "invalid_timestamp")


@pytest.mark.parametrize("query", [
    {"consistency": "strong"}, {"consistency": ""}, {"consistency": "LOCAL"},
    {"min_revision": "-1"}, {"min_revision": "abc"}, {"min_revision": str(MAX_TIMESTAMP)}, {"min_revision": ""},
    {"timeout": "-1"}, {"timeout": "abc"}, {"timeout": "61"}, {"timeout": "nan"}, {"timeout": "inf"},
    {"timeout": ""},
    {"min_revision": "1" * 5000},
])
def test_bad_read_parameter_is_400(client, query):
    put(client)
    assert_error(get(client, **query), 400, "invalid_parameter")


@pytest.mark.parametrize("query", [
    {"limit": "0"}, {"limit": "10001"}, {"limit": "abc"}, {"limit": "-5"}, {"limit": "1.0"},
    {"tenant": "bad tenant"}, {"tenant": ""}, {"tenant": "x" * 129},
    {"limit": "1" * 5000},
])
def test_bad_take_parameter_is_400(client, query):
    response = client.get("/api/v1/take/0", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_parameter", "invalid_tenant")


@pytest.mark.parametrize("method", ["post", "delete"])
@pytest.mark.parametrize("headers", [
    {"If-Match": "abc"}, {"If-Match": '"1", "2"'}, {"If-Match": "*"}, {"If-None-Match": '"123"'},
    {"If-Match": '"' + "1" * 5000 + '"'},
])
def test_bad_precondition_header_is_400(client, method, headers):
    put(client)
    assert_error(getattr(client, method)(key_url("acme", "greeting"), headers=headers), 400, "invalid_parameter")
    assert get(client).data == b"hello"


# ---- 409 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["put", "delete"])
@pytest.mark.parametrize("stored", ["live", "tombstone"])
def test_older_timestamp_is_409_and_changes_nothing(client, op, stored):
    first = put(client, value=b"first", timestamp=200).get_json()
    if stored == "tombstone":
        first = delete(client, timestamp=300).get_json()
    before = take_all(client)
    response = put(client, value=b"late", timestamp=100) if op == "put" else delete(client, timestamp=100)
    if op == "delete" and stored == "tombstone":
        assert_error(response, 404, "not_found")
    else:
        body = assert_error(response, 409, "stale")
        assert body["stored_timestamp"] == first["timestamp"]
    assert take_all(client) == before


def test_equal_timestamp_is_accepted_and_the_later_write_wins(client):
    first = put(client, value=b"first", timestamp=200).get_json()
    second = put(client, value=b"second", timestamp=200)
    assert second.status_code == 202
    assert second.get_json()["revision"] > first["revision"]
    response = get(client)
    assert response.data == b"second"
    assert response.headers["X-Badkv-Revision"] == str(second.get_json()["revision"])


def test_delete_with_equal_timestamp_is_accepted(client):
    put(client, timestamp=200)
    assert delete(client, timestamp=200).status_code == 202
    assert get(client).status_code == 404


@pytest.mark.parametrize("op", ["put", "delete"])
def test_write_without_timestamp_after_a_future_one_is_never_silently_lost(client, op):
    put(client, value=b"future", timestamp=MAX_TIMESTAMP - 1)
    response = put(client, value=b"now") if op == "put" else delete(client)
    after = get(client)
    if response.status_code == 409:
        assert after.data == b"future"
    else:
        assert response.status_code == 202
        assert (after.status_code, after.data) == ((200, b"now") if op == "put" else (404, after.data))


# ---- 412 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["put", "delete"])
@pytest.mark.parametrize(("history", "headers", "current"), [
    ("live", {"If-Match": '"1"'}, "revision"),
    ("missing", {"If-Match": '"1"'}, None),
    ("deleted", {"If-Match": "{revision}"}, None),
    ("live", {"If-None-Match": "*"}, "revision"),
])
def test_failed_precondition_is_412_and_changes_nothing(client, op, history, headers, current):
    revision = None
    if history != "missing":
        revision = put(client).get_json()["revision"]
    if history == "deleted":
        revision = delete(client).get_json()["revision"]
    headers = {k: v.format(revision=f'"{revision}"') for k, v in headers.items()}
    before = take_all(client)
    response = put(client, value=b"cas", headers=headers) if op == "put" else delete(client, headers=headers)
    body = assert_error(response, 412, "precondition_failed")
    assert body["revision"] == (revision if current else None)
    assert take_all(client) == before


@pytest.mark.parametrize("weak", ["", "W/"])
@pytest.mark.parametrize("op", ["put", "delete"])
def test_if_match_with_the_current_revision_writes(client, op, weak):
    revision = put(client).get_json()["revision"]
    headers = {"If-Match": f'{weak}"{revision}"'}
    response = put(client, value=b"cas", headers=headers) if op == "put" else delete(client, headers=headers)
    assert response.status_code == 202
    assert response.get_json()["revision"] > revision
    after = get(client)
    assert (after.status_code, after.data) == ((200, b"cas") if op == "put" else (404, after.data))


@pytest.mark.parametrize("history", ["missing", "deleted"])
def test_if_none_match_star_creates_a_key_that_does_not_exist(client, history):
    if history == "deleted":
        put(client)
        delete(client)
    assert put(client, value=b"created", headers={"If-None-Match": "*"}).status_code == 202
    assert get(client).data == b"created"


def test_etag_from_a_read_drives_compare_and_set(client):
    put(client, value=b"v1")
    etag = get(client).headers["ETag"]
    assert put(client, value=b"v2", headers={"If-Match": etag}).status_code == 202
    assert put(client, value=b"v3", headers={"If-Match": etag}).status_code == 412
    assert get(client).data == b"v2"


# ---- 413 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config_values", [{"max_value_size": 16}])
@pytest.mark.parametrize(("method", "size", "status"), [
    ("post", 16, 202), ("post", 17, 413), ("post", 10_000, 413), ("delete", 17, 413),
])
def test_value_size_limit(client, method, size, status, config_values):
    put(client, value=b"small")
    response = getattr(client, method)(key_url("acme", "greeting"), data=b"x" * size)
    assert response.status_code == status
    expected = b"x" * size if status == 202 else b"small"
    assert get(client).data == expected
    if status == 413:
        assert assert_error(response, 413, "too_large")["limit"] == 16

@pytest.mark.parametrize("declared", ["17", "9" * 20, "9" * 5000])
@pytest.mark.parametrize("config_values", [{"max_value_size": 16}])
def test_a_declared_length_over_the_limit_is_413_before_any_body_is_read(client, declared, config_values):
    response = client.post(key_url("acme", "greeting"), data=b"x",
                           environ_overrides={"CONTENT_LENGTH": declared})
    assert assert_error(response, 413, "too_large")["limit"] == 16
    assert get(client).status_code == 404


# ---- DELETE ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("timestamp", [None, 7_000])
def test_delete_is_202_with_the_tombstone(client, timestamp):
    written = put(client, timestamp=None if timestamp is None else 5_000).get_json()
    response = delete(client, timestamp=timestamp)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["tenant"], body["name"]) == ("acme", "greeting")
    assert body["revision"] > written["revision"]
    assert body["timestamp"] == (body["revision"] if timestamp is None else timestamp)
    assert_record_headers(response, body["timestamp"], body["revision"])
    assert get(client).status_code == 404


@pytest.mark.parametrize("history", ["missing", "deleted"])
@pytest.mark.parametrize("timestamp", [None, MAX_TIMESTAMP - 1])
def test_delete_missing_or_deleted_is_404(client, history, timestamp):
    if history == "deleted":
        put(client)
        delete(client)
    before = take_all(client)
    assert_error(delete(client, timestamp=timestamp), 404, "not_found")
    assert take_all(client) == before


def test_write_after_delete_revives_the_key(client):
    put(client, value=b"one")
    delete(client)
    assert put(client, value=b"two").status_code == 202
    assert get(client).data == b"two"


# ---- reads: min_revision, consistency ---------------------------------------------------------------

@pytest.mark.parametrize("consistency", [None, "local", "leader", "linearizable"])
def test_min_revision_already_reached_is_200(client, consistency):
    revision = put(client).get_json()["revision"]
    query = {"min_revision": revision, "timeout": "0.1"}
    if consistency:
        query["consistency"] = consistency
    response = get(client, **query)
    assert (response.status_code, response.data) == (200, b"hello")


def test_min_revision_not_reached_is_504_after_the_timeout(client):
    revision = put(client).get_json()["revision"]
    started = time.monotonic()
    response = get(client, min_revision=revision + 10 ** 12, timeout="0.1")
    elapsed = time.monotonic() - started
    body = assert_error(response, 504, "timeout")
    assert body["applied_revision"] == revision
    assert 0.09 <= elapsed < 2


@pytest.mark.parametrize("timeout", ["0", "0.1s", "1e-3"])
def test_timeout_accepts_seconds_with_an_optional_suffix(client, timeout):
    put(client)
    assert get(client, timeout=timeout).status_code == 200


@pytest.mark.parametrize("consistency", ["local", "leader", "linearizable"])
def test_every_consistency_level_reads_on_a_single_node(client, consistency):
    put(client, value=b"strong")
    response = get(client, consistency=consistency)
    assert (response.status_code, response.data) == (200, b"strong")
    assert_error(get(client, "acme", "absent", consistency=consistency), 404, "not_found")


# ---- take --------------------------------------------------------------------------------------------

KEYS = [("a", "x"), ("a", "y"), ("b", "x"), ("a-b", "c"), ("a", "b-c"), ("t.1", "ü")]
OPERATIONS = st.tuples(st.sampled_from(["put", "delete"]), st.sampled_from(KEYS),
                       st.one_of(st.none(), st.integers(0, 40)), st.binary(max_size=6))


def expected_status(model: dict, op: str, key, timestamp) -> int:
    """What last-writer-wins and delete semantics say this write must get."""
    current = model.get(key)
    if op == "delete" and (current is None or current["deleted"]):
        return 404
    if timestamp is not None and current is not None and timestamp < current["timestamp"]:
        return 409
    return 202


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATIONS, max_size=25), page_size=st.integers(1, 7),
       tenant=st.one_of(st.none(), st.sampled_from(["a", "b", "nobody"])))
def test_take_pages_return_every_key_once_in_its_latest_state(config, operations, page_size, tenant):
    """The config fixture is immutable, so one instance serves every example; each gets a fresh app."""
    client = create_app(config).test_client()
    model = {}
    for op, key, timestamp, value in operations:
        response = put(client, *key, value, timestamp) if op == "put" else delete(client, *key, timestamp)
        assert response.status_code == expected_status(model, op, key, timestamp)
        if response.status_code == 202:
            body = response.get_json()
            model[key] = {"tenant": key[0], "name": key[1], "value": b"" if op == "delete" else value,
                          "timestamp": body["timestamp"], "revision": body["revision"], "deleted": op == "delete"}
    records = take_all(client, 0, page_size, tenant)
    revisions = [record["revision"] for record in records]
    assert revisions == sorted(set(revisions))
    keys = [(record["tenant"], record["name"]) for record in records]
    assert len(keys) == len(set(keys))
    expected = {key: state for key, state in model.items() if tenant is None or key[0] == tenant}
    assert set(keys) == set(expected)
    for record in records:
        assert {**record, "value": base64.b64decode(record["value"])} == expected[(record["tenant"], record["name"])]


def test_take_includes_tombstones_and_base64_values(client):
    put(client, "t", "live", b"\x00\x01\xfe\xff")
    put(client, "t", "gone", b"soon gone")
    tombstone = delete(client, "t", "gone").get_json()
    records = {record["name"]: record for record in take_all(client)}
    assert records["live"]["value"] == base64.b64encode(b"\x00\x01\xfe\xff").decode()
    assert records["live"]["deleted"] is False
    assert records["gone"] == {"tenant": "t", "name": "gone", "value": "", "timestamp": tombstone["timestamp"],
                               "revision": tombstone["revision"], "deleted": True}


def test_take_filters_by_tenant(client):
    for tenant, name in (("one", "k1"), ("two", "k1"), ("one", "k2")):
        put(client, tenant, name, tenant.encode())
    assert {r["tenant"] for r in take_all(client, tenant="one")} == {"one"}
    assert len(take_all(client, tenant="one")) == 2
    assert len(take_all(client, tenant="two")) == 1
    assert take_all(client, tenant="three") == []


def test_take_from_a_cursor_skips_older_records_and_reports_the_applied_revision(client):
    first = put(client, "t", "k1").get_json()["revision"]
    second = put(client, "t", "k2").get_json()["revision"]
    page = client.get(f"/api/v1/take/{first + 1}").get_json()
    assert [record["revision"] for record in page["records"]] == [second]
    assert page["revision"] == second
    assert page["next"] == second + 1
    empty = client.get(f"/api/v1/take/{page['next']}").get_json()
    assert (empty["records"], empty["next"]) == ([], second + 1)


def test_a_key_changed_while_paging_appears_again_in_its_newer_state(client):
    for name in ("k1", "k2", "k3"):
        put(client, "t", name, b"old")
    first_page = client.get("/api/v1/take/0", query_string={"limit": 2}).get_json()
    assert [record["name"] for record in first_page["records"]] == ["k1", "k2"]
    put(client, "t", "k1", b"new")
    rest = take_all(client, since=first_page["next"])
    assert [(record["name"], base64.b64decode(record["value"])) for record in rest] == [("k3", b"old"),
                                                                                         ("k1", b"new")]


def test_take_limit_defaults_to_1000(client):
    for i in range(1001):
        put(client, "t", f"k{i}", b"")
    page = client.get("/api/v1/take/0").get_json()
    assert len(page["records"]) == 1000


# ---- routing errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/nope", "/api/v1", "/api/v1/keys", "/api/v1/keys/a/b/1/extra",
                                  "/api/v2/keys/a/b", "/admin", "/api/v1/take"])
def test_unknown_route_is_404_json(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("put", "/api/v1/keys/acme/k", {"GET", "POST", "DELETE"}),
    ("patch", "/api/v1/keys/acme/k", {"GET", "POST", "DELETE"}),
    ("get", "/api/v1/keys/acme/k/123", {"POST", "DELETE"}),
    ("post", "/api/v1/take/0", {"GET"}),
    ("delete", "/api/v1/openapi.json", {"GET"}),
    ("post", "/admin/stats", {"GET"}),
])
def test_wrong_method_is_405_json_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_error(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


# ---- tenant isolation ---------------------------------------------------------------------------------

def test_same_name_in_two_tenants_is_two_keys(client):
    put(client, "one", "shared", b"1")
    put(client, "two", "shared", b"2")
    delete(client, "one", "shared")
    assert get(client, "one", "shared").status_code == 404
    assert get(client, "two", "shared").data == b"2"
    assert put(client, "one", "shared", b"x", timestamp=0).status_code == 409
    assert put(client, "two", "shared", b"x", headers={"If-None-Match": "*"}).status_code == 412


@pytest.mark.parametrize(("first", "second"), [(("a-b", "c"), ("a", "b-c")), (("a.b", "c"), ("a", "b.c")),
                                               (("ab", "c"), ("a", "bc"))])
def test_keys_that_join_to_the_same_string_do_not_collide(client, first, second):
    put(client, *first, b"first")
    put(client, *second, b"second")
    assert get(client, *first).data == b"first"
    assert get(client, *second).data == b"second"
    assert len(take_all(client)) == 2


# ---- weird input never makes a 500 ------------------------------------------------------------------

SEGMENTS = st.one_of(st.binary(min_size=1, max_size=40), st.text(min_size=1, max_size=40).map(str.encode),
                     st.integers(-10, 2 ** 70).map(lambda n: str(n).encode()))
QUERY_VALUES = st.one_of(st.binary(max_size=30), st.text(max_size=30),
                         st.sampled_from(["local", "leader", "linearizable", "0", "1e400", "nan", "0.01s"]),
                         st.integers(-10, 2 ** 70).map(str))
QUERIES = st.dictionaries(st.sampled_from(["consistency", "min_revision", "timeout", "limit", "tenant", "x"]),
                          QUERY_VALUES, max_size=4)


@pytest.mark.parametrize("config_values", [{"read_timeout": 0.01, "max_read_timeout": 0.05}])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "DELETE"]), route=st.sampled_from(["key", "key_at", "take"]),
       tenant=SEGMENTS, name=SEGMENTS, timestamp=SEGMENTS, query=QUERIES, body=st.binary(max_size=20))
def test_weird_input_never_gives_a_server_error(client, method, route, tenant, name, timestamp, query, body,
                                               config_values):
    """One app serves every example: only the answer's shape is checked, so state carried over is harmless."""
    segments = {"key": [tenant, name], "key_at": [tenant, name, timestamp], "take": [timestamp]}[route]
    prefix = "/api/v1/take/" if route == "take" else "/api/v1/keys/"
    path = prefix + "/".join(quote(segment, safe="") for segment in segments)
    response = client.open(path, method=method, query_string=urlencode(query), data=body)
    if response.status_code >= 400:
        error = response.get_json()
        assert isinstance(error["error"], str) and isinstance(error["message"], str)
    # A min_revision beyond the applied one legitimately waits out the (tiny) read timeout.
    assert response.status_code < 500 or (response.status_code, error["error"]) == (504, "timeout")


# ---- forwarding and availability ----------------------------------------------------------------------

@pytest.mark.parametrize("config_values", [FOLLOWER])
@pytest.mark.parametrize("request_args", [
    ("post", "/api/v1/keys/acme/k", {}),
    ("post", "/api/v1/keys/acme/k/5", {}),
    ("delete", "/api/v1/keys/acme/k", {}),
    ("get", "/api/v1/keys/acme/k", {"consistency": "leader"}),
    ("get", "/api/v1/keys/acme/k", {"consistency": "linearizable"}),
])
def test_forwarded_request_on_a_follower_is_503_not_leader(app, client, request_args, config_values):
    hear_from(app.extensions["badkv_node"], "n1")
    method, path, query = request_args
    response = getattr(client, method)(path, query_string=query, data=b"v", headers={"X-Badkv-Forwarded-By": "n3"})
    body = assert_error(response, 503, "not_leader")
    assert body["leader"] == "n1"
    assert int(response.headers["Retry-After"]) >= 1
    assert get(client, "acme", "k").status_code == 404


@pytest.mark.parametrize("config_values", [FOLLOWER])
@pytest.mark.parametrize("request_args", [
    ("post", "/api/v1/keys/acme/k", {}),
    ("delete", "/api/v1/keys/acme/k/5", {}),
    ("get", "/api/v1/keys/acme/k", {"consistency": "leader"}),
])
def test_follower_with_an_unreachable_leader_is_503_unavailable_quickly(app, client, request_args, config_values):
    """The leader refuses the connection, so the request waits -leader-wait (0.3 s here) for another."""
    hear_from(app.extensions["badkv_node"], "n1")
    method, path, query = request_args
    started = time.monotonic()
    response = getattr(client, method)(path, query_string=query, data=b"v")
    assert time.monotonic() - started < 2
    assert_error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert get(client, "acme", "k").status_code == 404


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_follower_answers_local_reads_itself(client, config_values):
    assert_error(get(client), 404, "not_found")
    assert client.get("/api/v1/take/0").get_json()["records"] == []


def test_leader_whose_followers_never_answer_times_out_with_504(lonely_leader):
    response = put(lonely_leader)
    body = assert_error(response, 504, "timeout")
    assert isinstance(body["revision"], int)


def test_a_leader_whose_term_has_not_started_is_503():
    """Elected, but its term's no-op has not committed: it waits -leader-wait for it, then 503."""
    config = Config.from_sources({**LONELY_LEADER, "in_memory": True})
    app = create_app(config)
    elect(app.extensions["badkv_node"])
    client = app.test_client()
    assert_error(put(client), 503, "unavailable")
    assert_error(get(client, consistency="linearizable"), 503, "unavailable")
    ready = client.get("/admin/ready")
    assert ready.status_code == 503


def test_leader_without_quorum_is_503_unavailable(lonely_leader, lonely_node):
    for _ in range(lonely_node.core.isr_ticks + 1):  # past isr_timeout: the followers no longer count
        lonely_node.tick()
    for response in (put(lonely_leader), delete(lonely_leader)):
        assert_error(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) >= 1
    response = get(lonely_leader, consistency="linearizable", timeout="0.05")
    assert_error(response, 503, "unavailable")
    assert "Retry-After" in response.headers


def test_a_condition_is_never_judged_against_a_write_still_in_flight(lonely_leader):
    """A write whose replication has not finished (504, still in the log) must not decide a later
    CAS: reads still show the old value, so a 412 would contradict them. The later write waits for
    the earlier one and, when it does not finish in time, is refused with 503 and nothing written."""
    assert_error(put(lonely_leader, value=b"in flight"), 504, "timeout")
    response = put(lonely_leader, value=b"second", headers={"If-None-Match": "*"})
    assert_error(response, 503, "unavailable")
    assert get(lonely_leader).status_code == 404, "neither write is visible: the first is not committed"
