"""Tests for badkv/cluster/joining.py: asking for a place once, keeping the answer, and refusals."""

import json
import stat

import pytest

from badkv.cluster.joining import JOIN_FILE, SECRET_FILE, JoinError, joined_config
from badkv.config import Config
from badkv.errors import ConfigError
from badkv.security.cluster_secret import load_cluster_secret

ANSWER = {"name": "n4", "cluster_id": "c0ffee", "leader": "n1",
          "voters": {"n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"},
          "learners": {"n4": "127.0.0.1:4"}, "cluster_secret": b"a secret of 32 bytes, not shorter".hex()}


class FakeResponse:
    def __init__(self, status, body):
        self.status_code, self.body, self.text = status, body, json.dumps(body)

    def json(self):
        return self.body


def config_for(tmp_path, **values):
    return Config.from_sources({"name": "n4", "listen": "127.0.0.1:4", "data_dir": str(tmp_path / "n4"),
                                "join": "http://127.0.0.1:1", "join_token": "t" * 64, **values})


def test_the_answer_becomes_the_membership_and_is_kept_for_restarts(tmp_path):
    calls = []

    def post(url, json, timeout):
        calls.append((url, json))
        return FakeResponse(200, dict(ANSWER))

    joined = joined_config(config_for(tmp_path), post=post, sleep=lambda _: None)
    assert calls == [("http://127.0.0.1:1/cluster/v1/join", {"name": "n4", "token": "t" * 64, "cluster_id": None,
                                                              "has_secret": False})]
    assert dict(joined.cluster) == {**ANSWER["voters"], **ANSWER["learners"]} and joined.learners == ("n4",)
    assert joined.cluster_id == "c0ffee"
    assert load_cluster_secret(joined) == b"a secret of 32 bytes, not shorter"
    for name in (JOIN_FILE, SECRET_FILE):
        assert stat.S_IMODE((tmp_path / "n4" / name).stat().st_mode) == 0o600
    assert "cluster_secret" not in json.loads((tmp_path / "n4" / JOIN_FILE).read_text())
    again = joined_config(config_for(tmp_path, join_token=""), post=None, sleep=None)  # never asks again
    assert again.cluster == joined.cluster and again.cluster_id == "c0ffee"


def test_a_refusal_is_one_line_and_a_pending_change_is_waited_for(tmp_path):
    answers = [FakeResponse(409, {"error": "membership_change_pending", "message": "one change at a time"}),
               FakeResponse(403, {"error": "join_refused", "message": "n4 has joined already"})]
    with pytest.raises(JoinError, match="refused this node \\(403\\): join_refused: n4 has joined already"):
        joined_config(config_for(tmp_path), post=lambda *a, **k: answers.pop(0), sleep=lambda _: None)
    assert not answers and not (tmp_path / "n4" / JOIN_FILE).exists()


def test_join_needs_a_token_and_only_one_way_to_the_members(tmp_path):
    with pytest.raises(JoinError, match="-join-token"):
        joined_config(config_for(tmp_path, join_token=""), post=None, sleep=None)
    with pytest.raises(ConfigError, match="one way"):
        config_for(tmp_path, cluster="n4=127.0.0.1:4")
