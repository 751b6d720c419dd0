"""``-log-format json`` with real processes: every line a node writes is one JSON object naming the node,
and elections, leader changes, in-sync evictions and refused peer calls each get their line."""

from __future__ import annotations

import json
import time

import pytest
import requests

from badkv.testing.processes import LocalCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]
FIELDS = {"time", "level", "node", "logger", "message"}


def lines_of(node) -> list[dict]:
    """Every line of the node's log (stdout and stderr together), parsed; a line that is not JSON fails."""
    parsed = []
    for number, line in enumerate(node.log_path.read_text().splitlines(), 1):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{node.log_path}:{number} is not JSON: {line!r}")
    return parsed


def wait_for_line(node, words: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in lines_of(node) if words in line["message"]]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no line with {words!r} in {node.log_path} within {timeout:g} s")


def test_json_logs_through_an_election_an_eviction_and_a_refused_call(tmp_path):
    cluster = LocalCluster(3, tmp_path, extra_args=["-log-format", "json", "-in-memory"]).start()
    try:
        cluster.wait_ready()
        old = cluster.leader
        assert requests.post(old.url + "/api/v1/keys/logs/a", data=b"1", timeout=10).status_code == 202
        paused = cluster.followers[0]
        paused.pause()
        eviction = wait_for_line(old, f"{paused.name} leaves the in-sync set")
        paused.resume()
        wait_for_line(old, f"{paused.name} is back in the in-sync set")
        old.kill()
        new = cluster.wait_for_leader(timeout=15, other_than=(old.name,))
        follower = next(node for node in cluster.nodes.values() if node not in (old, new))
        assert wait_for_line(new, "won the election")["level"] == "info"
        wait_for_line(follower, f"{new.name} leads term")
        refused = requests.post(new.url + "/cluster/v1/append", data=b"", timeout=5,
                                headers={"Content-Type": "application/msgpack"})
        assert refused.status_code in (401, 409)
        wait_for_line(new, "refused a peer call")
    finally:
        cluster.stop()
    assert (eviction["level"], eviction["node"], eviction["logger"]) == ("warning", old.name, "badkv.cluster.driver")
    for node in cluster.nodes.values():
        lines = lines_of(node)  # after SIGTERM, the goodbye lines too
        assert lines, f"{node.log_path} is empty"
        for line in lines:
            assert FIELDS <= set(line), line
            assert line["node"] == node.name, line
