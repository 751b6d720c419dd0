"""Shared fixtures: a Config, the app built from it, and Flask's test client for that app."""

import pytest

from badkv.app import create_app
from badkv.config import Config


@pytest.fixture
def config_values():
    """Settings on top of a single in-memory node; override with ``pytest.mark.parametrize("config_values", ...)``."""
    return {}


@pytest.fixture
def config(config_values):
    return Config.from_sources({"name": "t1", "in_memory": True, **config_values})


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    app.extensions["badkv_node"].stop()


@pytest.fixture
def client(app):
    return app.test_client()
