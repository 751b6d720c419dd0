"""The follower's forwarding, with the leader and the network reduced to what it reads."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from badkv.cluster.forwarder import Forwarder
from badkv.errors import Unavailable


class FakeLeader:
    """A peer that answers with the statuses it is given, then 202."""

    def __init__(self, node, answers: list[int]):
        self.node, self.answers, self.calls = node, list(answers), 0

    def forward(self, method, path, **_):
        self.calls += 1
        status = self.answers.pop(0) if self.answers else 202
        if status == 503:
            self.node.core.current_term += 1  # it stepped down; an election follows, which it wins again
            body = json.dumps({"error": "not_leader", "message": "this node is not the leader"}).encode()
        else:
            body = b"{}"
        return SimpleNamespace(status_code=status, headers={"Content-Type": "application/json"}, content=body)


def make_node(answers: list[int]):
    node = SimpleNamespace(name="n2", core=SimpleNamespace(leader="n1", current_term=2),
                           config=SimpleNamespace(leader_wait=0.2, peer_timeout=0.1), monotonic=time.monotonic)

    def wait_for_leader_in_term(timeout, refused):
        found = (node.core.leader, node.core.current_term)
        if found in refused:
            time.sleep(timeout)
            return None
        return found

    node.wait_for_leader_in_term = wait_for_leader_in_term
    node.peers = {"n1": FakeLeader(node, answers)}
    return node


def test_a_leader_that_refused_is_tried_again_once_it_leads_a_new_term():
    """A leader stalled by its disk stepped down and won the next election: the request goes to it again."""
    node = make_node([503])
    status, _, _ = Forwarder(node).forward("POST", "/api/v1/keys/t/k", b"", b"v", {}, leader_wait=1)
    assert status == 202 and node.peers["n1"].calls == 2


def test_a_leader_that_refused_is_not_asked_again_in_the_same_term():
    node = make_node([503])
    node.peers["n1"].forward = lambda *a, **k: SimpleNamespace(
        status_code=503, headers={}, content=b'{"error": "not_leader", "message": ""}')
    with pytest.raises(Unavailable, match="tried n1"):
        Forwarder(node).forward("POST", "/api/v1/keys/t/k", b"", b"v", {}, leader_wait=1)
