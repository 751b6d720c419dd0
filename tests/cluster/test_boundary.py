"""Tests for badkv/cluster/boundary.py: the caller's side of a refusal is logged as an error, repeats are held
back, and answers from two processes under one name are noticed."""

import json
import logging

from badkv.cluster.boundary import LogLimiter, PeerBoundary
from badkv.config import Config
from badkv.security.peer_auth import CLUSTER, DUPLICATE, INSTANCE, SENDER

THREE = "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3"


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def boundary(clock) -> PeerBoundary:
    return PeerBoundary(Config.from_sources({"name": "n1", "cluster": THREE, "in_memory": True}), None,
                        instance="mine", monotonic=clock)


def test_a_duplicate_member_refusal_is_logged_as_an_error_once_per_interval(caplog):
    clock = Clock()
    edge = boundary(clock)
    answer = json.dumps({"error": "duplicate_member", "message": "two processes claim member name 'n1'"}).encode()
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        for _ in range(3):
            edge.refused_by("n2", 409, answer)
        clock.now += 6
        edge.refused_by("n2", 409, answer)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "n1: n2 refused this node as a duplicate" in lines[0] and "stop one of them" in lines[0]


def test_a_refusal_that_is_not_json_is_left_to_the_caller(caplog):
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        boundary(Clock()).refused_by("n2", 409, b"<html>proxy</html>")
    assert caplog.records == []


def test_answers_alternating_between_two_instances_are_logged(caplog):
    clock = Clock()
    edge = boundary(clock)
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        for instance in ["a", "b", "a", "b", "a", "b"]:
            clock.now += 0.1
            edge.answer_heard("n3", {INSTANCE: instance}, "127.0.0.1:3")
    assert "two processes claim member name 'n3'" in caplog.text
    # ... and the next call to n3, which reaches the process heard first, tells it about the other.
    assert edge.headers_for("POST", "/cluster/v1/append", b"", "n3")[DUPLICATE] == "instance b at 127.0.0.1:3"
    assert DUPLICATE not in edge.headers_for("POST", "/cluster/v1/append", b"", "n2")


def test_a_member_told_of_a_duplicate_logs_it(caplog):
    edge = boundary(Clock())
    headers = {CLUSTER: edge.cluster_id, SENDER: "n2", INSTANCE: "theirs", DUPLICATE: "instance x at 10.0.0.9:4"}
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        edge.admit("POST", "/cluster/v1/append", b"", headers, "127.0.0.1:5")
    assert "n1: n2 reports another process under this node's name (instance x at 10.0.0.9:4)" in caplog.text


def test_the_log_limiter_counts_what_it_held_back():
    clock = Clock()
    limiter = LogLimiter(clock, interval=5)
    assert limiter.allow(("k",)) == (True, 0)
    assert limiter.allow(("k",)) == (False, 0)
    assert limiter.allow(("other",)) == (True, 0)
    clock.now += 5
    assert limiter.allow(("k",)) == (True, 1)
