"""Tests for badkv/http/serving.py: the gunicorn settings both ways of starting a node share."""

from badkv.cluster.leadership import HAND_OVER_SECONDS
from badkv.config import Config
from badkv.http import serving


def test_a_leader_hands_over_and_its_requests_finish_within_the_graceful_timeout():
    settings = serving.gunicorn_settings(Config.from_sources({"name": "n1", "in_memory": True}))
    assert settings["graceful_timeout"] == serving.GRACEFUL_TIMEOUT
    assert HAND_OVER_SECONDS + 1 <= serving.GRACEFUL_TIMEOUT, "a second is left for the requests in flight"
