"""The leader's side of ``POST /cluster/v1/propose`` (``badkv/http/proposals.py``) on a single in-memory node,
which leads itself: each proposal of a batch is answered as the public API would answer that write, and is
checked as strictly. (The route and the cluster boundary in front of it run in the real-process tests.)"""

from __future__ import annotations

import json

import pytest

from badkv.cluster.transport import decode_body, encode_body
from badkv.http.proposals import answer_proposals

ADMIN = "the-admin-token-for-tests"


def proposal(name, value=b"v", op="put", tenant="t", **change):
    return {"op": op, "tenant": tenant, "name": name, "value": value, "timestamp": None, "if_match": None,
            "if_none_match": False, "authorization": None, **change}


def propose(client, writes):
    """The answers as they travel back to the follower (through msgpack)."""
    with client.application.app_context():
        answers = answer_proposals(client.application.extensions["badkv_node"], writes)
    body, headers = encode_body({"answers": answers})
    return decode_body(body, headers.get("Content-Encoding"))["answers"]


def test_each_write_of_a_batch_is_applied_and_answered_like_a_public_write(client):
    answers = propose(client, [proposal("a", b"1"), proposal("b", b"2"), proposal("a", b"3")])
    assert [status for status, _, _ in answers] == [202, 202, 202]
    revisions = [json.loads(body)["revision"] for _, _, body in answers]
    assert revisions == sorted(revisions) and len(set(revisions)) == 3  # the second write to "a" came after
    assert all(headers["ETag"] for _, headers, _ in answers)
    assert client.get("/api/v1/keys/t/a").data == b"3" and client.get("/api/v1/keys/t/b").data == b"2"
    public = client.post("/api/v1/keys/t/c", data=b"4")
    assert set(json.loads(answers[0][2])) == set(public.get_json())  # the same answer shape


def test_a_refused_write_does_not_stop_the_others(client):
    revision = json.loads(propose(client, [proposal("k", b"old")])[0][2])["revision"]
    answers = propose(client, [
        proposal("k", b"new", if_match=revision + 1000),  # a stale precondition: 412
        proposal("x", tenant="_auth"),  # reserved: 403
        proposal("bad/name"),  # 400
        {"op": "put"},  # malformed: 400
        proposal("ok", b"fine"),
    ])
    assert [status for status, _, _ in answers] == [412, 403, 400, 400, 202]
    assert json.loads(answers[0][2])["error"] == "precondition_failed"
    assert client.get("/api/v1/keys/t/k").data == b"old" and client.get("/api/v1/keys/t/ok").data == b"fine"


def test_a_delete_in_a_batch(client):
    propose(client, [proposal("gone", b"v")])
    [(status, _, _)] = propose(client, [proposal("gone", b"", op="delete")])
    assert status == 202 and client.get("/api/v1/keys/t/gone").status_code == 404


class TestWithAuth:
    @pytest.fixture
    def config_values(self, tmp_path):
        token_file = tmp_path / "admin-token"
        token_file.write_text(ADMIN)
        return {"auth": True, "admin_token_file": str(token_file)}

    def test_the_leader_checks_each_clients_token_again(self, client):
        created = client.post("/admin/tenants/acme", headers={"Authorization": f"Bearer {ADMIN}"})
        token = created.get_json()["token"]
        answers = propose(client, [
            proposal("k", tenant="acme", authorization=f"Bearer {token}"),
            proposal("k", tenant="other", authorization=f"Bearer {token}"),  # another tenant's keys: 403
            proposal("k", tenant="acme", authorization="Bearer not-a-token"),  # 401
            proposal("k", tenant="acme"),  # no token: 401
            proposal("j", tenant="other", authorization=f"Bearer {ADMIN}"),
        ])
        assert [status for status, _, _ in answers] == [202, 403, 401, 401, 202]
        assert "WWW-Authenticate" in answers[2][1]
