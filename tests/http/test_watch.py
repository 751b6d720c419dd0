"""Tests for badkv/http/watch.py: ``GET /api/v1/take/{cursor}?wait=S`` through Flask's test client, where a
watch waits on its thread (the badkv worker's parking is tested with real processes)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badkv.app import create_app
from badkv.config import Config
from badkv.http.watch import parse_wait

ADMIN = "the-admin-token-for-watch-tests"
BOUND = 10.0  # no test waits longer than this for anything


def put(client, tenant, name, value=b"v"):
    response = client.post(f"/api/v1/keys/{tenant}/{name}", data=value)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["revision"]


def head(client) -> int:
    """The cursor a watcher that is up to date holds."""
    return client.get("/api/v1/take/0").get_json()["revision"] + 1


@pytest.fixture
def registered(app):
    """An Event set each time a watch registers its watcher in the store (the test's cue to write)."""
    store, event = app.extensions["badkv_node"].store, threading.Event()
    add = store.watchers.add

    def add_and_tell(watcher, due_at=None):
        add(watcher, due_at)
        event.set()

    store.watchers.add = add_and_tell
    return event


def watch_in_thread(client, cursor, **query):
    answer = {}

    def run():
        started = time.monotonic()
        answer["response"] = client.get(f"/api/v1/take/{cursor}", query_string=query)
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answer


@pytest.mark.parametrize("query", [{"wait": "0"}, {"wait": "-1"}, {"wait": "300.5"}, {"wait": "soon"},
                                   {"wait": "nan"}, {"wait": "inf"}, {"wait": ""},
                                   {"prefix": "a"}, {"prefix": "a", "wait": "1"}, {"prefix": "a/b", "tenant": "t"}])
def test_a_bad_wait_or_a_prefix_without_a_tenant_is_400(client, query):
    response = client.get("/api/v1/take/0", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_parameter"


@pytest.mark.parametrize("text, seconds", [("0.001", 0.001), ("300", 300.0), ("1.5s", 1.5), (None, None)])
def test_wait_is_seconds_above_0_and_at_most_300(text, seconds):
    assert parse_wait({} if text is None else {"wait": text}) == seconds


def test_a_watch_answers_at_once_when_a_matching_record_exists(client):
    cursor = head(client)
    revision = put(client, "t", "k")
    started = time.monotonic()
    page = client.get(f"/api/v1/take/{cursor}", query_string={"wait": "30", "tenant": "t"}).get_json()
    assert time.monotonic() - started < BOUND
    assert [record["revision"] for record in page["records"]] == [revision]
    assert page["next"] == revision + 1


def test_a_watch_with_nothing_to_show_answers_at_its_deadline_with_next_equal_to_the_cursor(client):
    cursor = head(client)
    started = time.monotonic()
    page = client.get(f"/api/v1/take/{cursor}", query_string={"wait": "0.2"}).get_json()
    assert 0.2 <= time.monotonic() - started < BOUND
    assert (page["records"], page["next"]) == ([], cursor)


def test_a_write_from_another_thread_wakes_the_watch(client, registered):
    cursor = head(client)
    thread, answer = watch_in_thread(client, cursor, wait="60", tenant="t")
    assert registered.wait(BOUND)
    revision = put(client, "t", "k", b"new")
    thread.join(BOUND)
    assert not thread.is_alive() and answer["seconds"] < 30, "the write did not wake the watch"
    page = answer["response"].get_json()
    assert [(r["name"], r["revision"]) for r in page["records"]] == [("k", revision)]


def test_other_tenants_and_other_prefixes_do_not_answer_a_watch_but_move_its_cursor(client, registered):
    cursor = head(client)
    thread, answer = watch_in_thread(client, cursor, wait="1", tenant="t", prefix="app.")
    assert registered.wait(BOUND)
    put(client, "other", "app.x")
    other = put(client, "t", "db.x")
    thread.join(BOUND)
    page = answer["response"].get_json()
    assert answer["seconds"] >= 1 and page["records"] == []
    assert page["next"] == other + 1, "next moves past the records the filter passed over"


def test_a_prefix_watch_is_woken_by_a_name_under_its_prefix(client, registered):
    cursor = head(client)
    thread, answer = watch_in_thread(client, cursor, wait="60", tenant="t", prefix="app.")
    assert registered.wait(BOUND)
    registered.clear()
    put(client, "t", "db.x")  # wakes nobody
    revision = put(client, "t", "app.x")
    thread.join(BOUND)
    assert not thread.is_alive() and answer["seconds"] < 30
    assert [r["revision"] for r in answer["response"].get_json()["records"]] == [revision]


def test_a_deleted_key_shows_to_a_watch_as_a_tombstone(client, registered):
    put(client, "t", "k")
    cursor = head(client)
    thread, answer = watch_in_thread(client, cursor, wait="60", tenant="t")
    assert registered.wait(BOUND)
    assert client.delete("/api/v1/keys/t/k").status_code == 202
    thread.join(BOUND)
    assert [(r["name"], r["deleted"]) for r in answer["response"].get_json()["records"]] == [("k", True)]


def test_watching_through_next_sees_every_change_once(client):
    cursor, seen = head(client), []
    for round_ in range(5):
        written = [put(client, "t", f"k{i}", b"%d" % round_) for i in range(3)]
        page = client.get(f"/api/v1/take/{cursor}", query_string={"wait": "5", "tenant": "t", "limit": 2}).get_json()
        seen += [r["revision"] for r in page["records"]]
        cursor = page["next"]
        page = client.get(f"/api/v1/take/{cursor}", query_string={"wait": "5", "tenant": "t"}).get_json()
        seen += [r["revision"] for r in page["records"]]
        cursor = page["next"]
        assert seen[-3:] == written
    assert len(seen) == len(set(seen)) == 15


def test_stats_and_metrics_count_the_watches_waiting(client, registered):
    thread, answer = watch_in_thread(client, head(client), wait="60", tenant="t")
    assert registered.wait(BOUND)
    assert client.get("/admin/stats").get_json()["watchers"] == 1
    assert "badkv_watchers 1.0" in client.get("/admin/metrics").get_data(as_text=True)
    put(client, "t", "k")
    thread.join(BOUND)
    assert client.get("/admin/stats").get_json()["watchers"] == 0


def test_stopping_the_node_ends_a_watch_waiting_on_a_thread(app, client, registered):
    thread, answer = watch_in_thread(client, head(client), wait="60")
    assert registered.wait(BOUND)
    app.extensions["badkv_node"].stop()
    thread.join(BOUND)
    assert not thread.is_alive() and answer["response"].status_code == 200


@pytest.fixture
def auth_client(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN)
    app = create_app(Config.from_sources({"name": "t1", "in_memory": True, "auth": True,
                                          "admin_token_file": str(token_file)}))
    yield app.test_client()
    app.extensions["badkv_node"].stop()


@pytest.mark.parametrize("query, status", [({"tenant": "acme"}, 200), ({"tenant": "acme", "prefix": "a"}, 200),
                                           ({}, 403), ({"tenant": "other"}, 403)])
def test_with_auth_a_tenant_token_watches_its_own_tenant_only(auth_client, query, status):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    token = auth_client.post("/admin/tenants/acme", headers=admin).get_json()["token"]
    response = auth_client.get("/api/v1/take/0", query_string={"wait": "0.05", **query},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    assert auth_client.get("/api/v1/take/0", query_string={"wait": "0.05"}, headers=admin).status_code == 200
    assert auth_client.get("/api/v1/take/0", query_string={"wait": "0.05"}).status_code == 401


TXN_KEYS = ("a1", "a2", "b1")
STEPS = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from(["t", "u"]), st.sampled_from(TXN_KEYS)),
    st.tuples(st.just("delete"), st.sampled_from(["t", "u"]), st.sampled_from(TXN_KEYS)),
    st.tuples(st.just("txn"), st.just("t"), st.lists(st.sampled_from(TXN_KEYS), min_size=2, max_size=3,
                                                      unique=True)),
    st.tuples(st.just("watch"), st.integers(1, 3), st.none())), max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, where=st.sampled_from([{}, {"tenant": "t"}, {"tenant": "t", "prefix": "a"}]))
def test_watching_through_the_api_never_skips_or_repeats_a_change(client, steps, where):
    """Random writes, deletes and transactions between watch pages of random sizes (a short wait when
    there is nothing): every record is shown once, and each key's last shown state is its final one."""
    start = cursor = head(client)
    seen = []

    def watch(limit):
        nonlocal cursor
        page = client.get(f"/api/v1/take/{cursor}", query_string={"wait": "0.01", "limit": limit, **where})
        body = page.get_json()
        assert page.status_code == 200 and body["next"] >= cursor
        seen.extend(body["records"])
        cursor = body["next"]
        return body["records"]

    for step, first, second in steps:
        if step == "put":
            put(client, first, second, b"%d" % len(seen))
        elif step == "delete":
            client.delete(f"/api/v1/keys/{first}/{second}")
        elif step == "txn":
            body = {"success": [{"op": "put", "name": name, "value": "x"} for name in second]}
            assert client.post("/api/v1/txn/t", json=body).status_code == 200
        else:
            watch(first)
    while watch(1000):
        pass
    shown = [(r["tenant"], r["name"], r["revision"]) for r in seen]
    assert len(shown) == len(set(shown)), "a change was shown twice"
    assert [r[2] for r in shown] == sorted(r[2] for r in shown)
    final = {(r["tenant"], r["name"]): r for r in client.get(f"/api/v1/take/{start}").get_json()["records"]
             if where.get("tenant", r["tenant"]) == r["tenant"] and r["name"].startswith(where.get("prefix", ""))}
    assert {(r["tenant"], r["name"]): r for r in seen} == final, "a key's last shown state is not its final one"
