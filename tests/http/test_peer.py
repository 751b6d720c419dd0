"""Tests for badkv/http/peer.py's boundary: calls from another cluster, a non-member, a second process under a
member's name, or (with a cluster secret) without a valid fresh signature are refused and change nothing;
a well-made call still gets through."""

import io
import logging

import pytest

from badkv.cluster.transport import encode_body
from badkv.consensus.messages import AppendRequest, VoteRequest
from badkv.security.peer_auth import CLUSTER, INSTANCE, SENDER, SIGNATURE, TIMESTAMP, Signer

SECRET = "0123456789abcdef0123456789abcdef"
THREE = "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3"
FOLLOWER = {"name": "n2", "cluster": THREE}
SIGNED_FOLLOWER = {**FOLLOWER, "cluster_secret": SECRET}
ATTACK_TERM = 1_000_000


def attack() -> tuple[str, dict]:
    """The append of the issue: a term a million higher, and an entry to overwrite the follower's first."""
    entry = {"index": 1, "term": ATTACK_TERM, "op": "put", "tenant": "t", "name": "evil", "value": b"pwned",
             "timestamp": 1, "revision": 1}
    return "/cluster/v1/append", AppendRequest(ATTACK_TERM, "n1", 0, 0, [entry], 1, 1).to_wire()


def vote() -> tuple[str, dict]:
    return "/cluster/v1/vote", VoteRequest(ATTACK_TERM, "n3", 0, 0).to_wire()


def post(client, path, message, *, secret=SECRET, sender="n1", cluster=None, instance="i1", drop=(), **change):
    node = client.application.extensions["badkv_node"]
    body, headers = encode_body(message)
    signer = Signer(secret.encode() if secret else None, cluster=cluster or node.config.cluster_id, sender=sender,
                    instance=instance)
    headers.update(signer.headers("POST", path, body, node.name))
    headers.update(change)
    for name in drop:
        del headers[name]
    return client.post(path, data=body, headers=headers)


def state(client) -> tuple:
    node = client.application.extensions["badkv_node"]
    return node.term, node.core.voted_for, node.core.log.last_index, node.store.applied_index


def assert_refused(client, response, status, code, before=(0, None, 0, 0)):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == code
    node = client.application.extensions["badkv_node"]
    assert response.headers[INSTANCE] == node.instance  # refusals name this process too
    assert state(client) == before


@pytest.mark.parametrize("config_values", [SIGNED_FOLLOWER])
@pytest.mark.parametrize("call", [attack, vote])
def test_a_signed_call_from_a_member_is_taken(client, config_values, call):
    response = post(client, *call())
    assert response.status_code == 200
    assert response.headers[SENDER] == "n2"
    assert client.application.extensions["badkv_node"].term == ATTACK_TERM  # what every refusal below prevents


@pytest.mark.parametrize("config_values", [SIGNED_FOLLOWER])
@pytest.mark.parametrize("call", [attack, vote])
@pytest.mark.parametrize("how, said", [
    ({"drop": (SIGNATURE, TIMESTAMP)}, "missing"),
    ({"secret": "another secret, long enough too"}, "bad"),
    ({SENDER: "n3"}, "bad"),  # signed as n1, sent as n3
    ({SIGNATURE: "0" * 64}, "bad"),
])
def test_a_call_without_a_valid_signature_is_refused(client, caplog, config_values, call, how, said):
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.boundary"):
        assert_refused(client, post(client, *call(), **how), 401, "unauthenticated")
    assert f"unauthenticated: {said}:" in caplog.text


@pytest.mark.parametrize("config_values", [SIGNED_FOLLOWER])
def test_a_tampered_body_is_refused(client, config_values):
    path, message = attack()
    body, headers = encode_body(message)
    node = client.application.extensions["badkv_node"]
    headers.update(Signer(SECRET.encode(), cluster=node.config.cluster_id, sender="n1", instance="i1")
                   .headers("POST", path, encode_body(vote()[1])[0], "n2"))
    assert_refused(client, client.post(path, data=body, headers=headers), 401, "unauthenticated")


@pytest.mark.parametrize("config_values", [SIGNED_FOLLOWER])
@pytest.mark.parametrize("offset", [-31, 31])
def test_a_signature_older_or_newer_than_30_seconds_is_refused(client, caplog, config_values, offset):
    path, message = attack()
    body, headers = encode_body(message)
    node = client.application.extensions["badkv_node"]
    stamp = node.boundary.verifier.clock() + offset
    headers.update(Signer(SECRET.encode(), cluster=node.config.cluster_id, sender="n1", instance="i1",
                          clock=lambda: stamp).headers("POST", path, body, "n2"))
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.boundary"):
        assert_refused(client, client.post(path, data=body, headers=headers), 401, "unauthenticated")
    assert "unauthenticated: expired:" in caplog.text


@pytest.mark.parametrize("config_values", [SIGNED_FOLLOWER])
def test_a_captured_call_sent_twice_is_refused_the_second_time(client, caplog, config_values):
    path, message = vote()
    body, headers = encode_body(message)
    node = client.application.extensions["badkv_node"]
    headers.update(Signer(SECRET.encode(), cluster=node.config.cluster_id, sender="n3", instance="i3")
                   .headers("POST", path, body, "n2"))
    assert client.post(path, data=body, headers=headers).status_code == 200
    before = state(client)
    assert before[:2] == (ATTACK_TERM, "n3")
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.boundary"):
        assert_refused(client, client.post(path, data=body, headers=headers), 401, "unauthenticated", before)
    assert "unauthenticated: replayed:" in caplog.text


@pytest.mark.parametrize("config_values", [FOLLOWER, SIGNED_FOLLOWER])
@pytest.mark.parametrize("how, code", [
    ({"cluster": "another-cluster"}, "wrong_cluster"),
    ({"drop": (CLUSTER,)}, "wrong_cluster"),
    ({"sender": "n9"}, "not_a_member"),
    ({"drop": (SENDER,)}, "not_a_member"),
    ({"sender": "n2"}, "duplicate_member"),  # this node's own name, from another process
])
def test_a_call_from_outside_the_cluster_is_refused(client, caplog, config_values, how, code):
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.boundary"):
        assert_refused(client, post(client, *attack(), **how), 409, code)
    assert f"n2: refused a peer call from 127.0.0.1" in caplog.text and code in caplog.text


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_without_a_secret_an_unsigned_member_call_is_taken(client, config_values):
    response = post(client, *attack(), secret=None)
    assert response.status_code == 200
    assert client.application.extensions["badkv_node"].term == ATTACK_TERM


@pytest.mark.parametrize("config_values", [FOLLOWER])
def test_a_second_process_under_a_members_name_is_refused(client, config_values):
    path, message = vote()
    quiet = {**message, "term": 0}  # a stale vote request: answered, changes nothing
    answers = [post(client, path, quiet, secret=None, sender="n3", instance=instance).status_code
               for instance in ["first", "second", "first", "second", "first", "second"]]
    assert answers == [200, 200, 200, 200, 200, 409]
    refused = post(client, path, quiet, secret=None, sender="n3", instance="second").get_json()
    assert refused["error"] == "duplicate_member" and refused["member"] == "n3"
    assert post(client, path, quiet, secret=None, sender="n3", instance="first").status_code == 200


@pytest.mark.parametrize("config_values", [FOLLOWER, SIGNED_FOLLOWER])
def test_the_node_warns_at_start_only_when_its_peer_api_is_open(app, caplog, config_values):
    with caplog.at_level(logging.WARNING, logger="badkv.cluster.boundary"):
        app.extensions["badkv_node"].boundary.warn_if_open()
    warned = "open to anyone who can reach this port" in caplog.text
    assert warned == ("cluster_secret" not in config_values)
    assert SECRET not in caplog.text


class CountingStream(io.RawIOBase):
    """A request body of ``size`` zero bytes that counts how much of it was read."""

    def __init__(self, size: int):
        self.size, self.given = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.given)
        buffer[:n] = b"\0" * n
        self.given += n
        return n


@pytest.mark.parametrize("config_values", [SIGNED_FOLLOWER])
def test_a_call_from_nobody_is_refused_before_its_body_is_read(client):
    stream = CountingStream(64 * 1024 * 1024)
    environ = {"wsgi.input": stream, "CONTENT_LENGTH": str(stream.size), "CONTENT_TYPE": "application/msgpack"}
    answer = client.post("/cluster/v1/append", environ_overrides=environ)  # names no cluster and no sender
    assert answer.status_code == 409
    assert stream.given <= 1024 * 1024, f"read {stream.given} bytes of a call from nobody before refusing it"
