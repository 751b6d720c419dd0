"""Tests for badkv.testing.pairs: the workload's transactions and range pages on a pair of keys, recorded as
requests on one register, against a node through Flask's test client; a torn pair fails the checker."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from badkv.testing.checker import check_linearizable, check_local_reads
from badkv.testing.pairs import TORN, classify_txn, pair_value
from badkv.testing.workload import TENANT, Workload


class FlaskSession:
    """The part of requests.Session the workload uses, answered by a Flask test client."""

    def __init__(self, client):
        self.client = client

    def request(self, method, url, *, timeout, params=None, json=None, data=None, headers=None):
        return FlaskResponse(self.client.open(urlsplit(url).path, method=method, query_string=params, json=json,
                                              data=data, headers=headers))


class FlaskResponse:
    """A test client's response with the requests.Response attributes the workload reads."""

    def __init__(self, response):
        self.status_code, self.content, self.headers = response.status_code, response.data, response.headers
        self._json = response.get_json(silent=True)

    def json(self):
        return self._json


@pytest.fixture
def workload():
    return Workload({"n1": "http://n1"}, processes=1)


@pytest.fixture
def session(client):
    return FlaskSession(client)


def test_a_pair_is_one_register_value_or_torn():
    assert pair_value("p", {}) is None
    assert pair_value("p", {"p.a": "v1", "p.b": "v1"}) == "v1"
    assert pair_value("p", {"p.a": "v1", "p.b": "v2"}) == f"{TORN}v1|v2"
    assert pair_value("p", {"p.b": "v2"}) == f"{TORN}None|v2"
    assert [classify_txn(s) for s in (200, 400, 503, 504, None)] == ["ok", "fail", "fail", "unknown", "unknown"]


def test_transactions_and_range_pages_are_recorded_as_register_requests(workload, session):
    seen = {}
    ops = [workload._range_read_linearizable(session, 0, "n1", "pair0", seen),
           workload._txn_write(session, 0, "n1", "pair0", seen),
           workload._range_read_local(session, 0, "n1", "pair0", seen)]
    ops.append(workload._txn_cas(session, 0, "n1", "pair0", seen))
    seen["pair0"] = ("not-the-value", 0)
    ops.append(workload._txn_cas(session, 0, "n1", "pair0", seen))  # compares against a stale value: refused
    ops += [workload._txn_delete(session, 0, "n1", "pair0", seen), workload._txn_delete(session, 0, "n1", "pair0", seen),
            workload._range_read_linearizable(session, 0, "n1", "pair0", seen)]
    assert [(op.kind, op.status, op.outcome) for op in ops] == [
        ("read", "ok", None), ("write", "ok", None), ("read", "ok", None), ("cas", "ok", None),
        ("cas", "ok", "precondition_failed"), ("delete", "ok", None), ("delete", "ok", "not_found"),
        ("read", "ok", None)]
    assert [ops[0].value, ops[2].value, ops[-1].value] == [None, ops[1].value, None]
    assert ops[3].expected == ops[1].value and {op.key for op in ops} == {"pair0"}
    assert check_linearizable(ops).ok and check_local_reads(ops) == []


def test_a_page_that_shows_a_pair_apart_fails_the_check(workload, session, client):
    seen = {}
    ops = [workload._txn_write(session, 0, "n1", "pair0", seen)]
    assert client.post(f"/api/v1/keys/{TENANT}/pair0.b", data=b"apart").status_code == 202  # not as a pair
    ops += [workload._range_read_linearizable(session, 0, "n1", "pair0", seen),
            workload._range_read_local(session, 0, "n1", "pair0", seen)]
    assert ops[1].value == f"{TORN}{ops[0].value}|apart"
    verdict = check_linearizable(ops)
    assert verdict.ok is False and verdict.key == "pair0"
    assert len(check_local_reads(ops)) == 1
