"""Tests for the membership routes: POST/DELETE /admin/members (badkv/http/admin.py) and
POST /cluster/v1/join (badkv/http/join.py), on one in-memory node (badkv/cluster/members.py)."""

import pytest

from badkv.cluster.members import JOIN_TOKEN_SECONDS
from badkv.security.tokens import token_hash


def add(client, name="n2", address="127.0.0.1:1"):
    return client.post("/admin/members", json={"name": name, "address": address})


def members(client) -> dict:
    response = client.get("/admin/members")
    assert response.status_code == 200
    return {member["name"]: member for member in response.get_json()}


def test_a_learner_is_added_with_a_one_time_token_stored_only_as_its_hash(client, app):
    response = add(client)
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "n2" and len(body["join_token"]) == 64  # 256 bits in hex
    listed = members(client)["n2"]
    assert listed["role"] == "learner" and listed["voter"] is False and listed["in_sync"] is False
    membership = app.extensions["badkv_node"].core.membership
    digest, _ = membership.tokens["n2"]
    assert digest == token_hash(body["join_token"]) and body["join_token"] not in str(membership.to_wire())


@pytest.mark.parametrize("body, message", [
    ({"name": "n2"}, "the body must be"),
    ({"name": "bad name!", "address": "127.0.0.1:1"}, "name must be"),
    ({"name": "n2", "address": "nowhere"}, "host:port"),
])
def test_bad_bodies_are_refused(client, body, message):
    response = client.post("/admin/members", json=body)
    assert response.status_code == 400 and message in response.get_json()["message"]


def test_a_member_cannot_be_added_twice(client):
    assert add(client).status_code == 201
    response = add(client, address="127.0.0.1:2")
    assert response.status_code == 409 and response.get_json()["error"] == "already_member"
    response = add(client, name="t1", address="127.0.0.1:3")
    assert response.status_code == 409


def test_removing_a_learner_and_an_unknown_name(client):
    assert add(client).status_code == 201
    response = client.delete("/admin/members/n2")
    assert response.status_code == 202 and response.get_json() == {"name": "n2", "removed": True}
    # (listed as removed until it hears of it, or stays silent for two election timeouts)
    assert members(client).get("n2", {"role": "removed"})["role"] == "removed"
    response = client.delete("/admin/members/n9")
    assert response.status_code == 404


def test_the_last_voter_cannot_be_removed(client):
    response = client.delete("/admin/members/t1")
    assert response.status_code == 400 and "last voter" in response.get_json()["message"]


def test_a_join_token_works_once_and_a_wrong_one_changes_nothing(client, app):
    token = add(client).get_json()["join_token"]
    core = app.extensions["badkv_node"].core
    before = core.log.last_index
    wrong = client.post("/cluster/v1/join", json={"name": "n2", "token": "0" * 64})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "join_token_invalid"
    assert core.log.last_index == before and "n2" in core.membership.tokens
    joined = client.post("/cluster/v1/join", json={"name": "n2", "token": token})
    assert joined.status_code == 200
    answer = joined.get_json()
    assert answer["cluster_id"] == app.config["BADKV"].cluster_id and answer["learners"] == {"n2": "127.0.0.1:1"}
    assert answer["voters"] == {"t1": app.config["BADKV"].listen} and answer["cluster_secret"] is None
    assert "n2" not in core.membership.tokens
    again = client.post("/cluster/v1/join", json={"name": "n2", "token": token})
    assert again.status_code == 403 and again.get_json()["error"] == "join_refused"


def test_an_expired_join_token_is_refused(client, app):
    token = add(client).get_json()["join_token"]
    members_keeper = app.extensions["badkv_node"].members
    real_clock = members_keeper.clock
    members_keeper.clock = lambda: real_clock() + JOIN_TOKEN_SECONDS + 1
    response = client.post("/cluster/v1/join", json={"name": "n2", "token": token})
    assert response.status_code == 403 and "expired" in response.get_json()["message"]


def test_a_join_from_another_cluster_or_for_a_voter_is_refused(client):
    token = add(client).get_json()["join_token"]
    other = client.post("/cluster/v1/join", json={"name": "n2", "token": token, "cluster_id": "someone-else"})
    assert other.status_code == 409 and other.get_json()["error"] == "wrong_cluster"
    voter = client.post("/cluster/v1/join", json={"name": "t1", "token": token})
    assert voter.status_code == 403 and "joined already" in voter.get_json()["message"]


def test_a_join_needs_a_name_and_a_token(client):
    response = client.post("/cluster/v1/join", json={"name": "n2"})
    assert response.status_code == 400
