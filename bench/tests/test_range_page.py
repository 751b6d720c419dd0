"""bench/range_page.py on a small tenant: it fills the store and times pages that really hold keys."""

from __future__ import annotations

import random

from badkv.app import create_app
from badkv.config import Config
from bench import range_page


def test_pages_are_timed_and_answered_with_keys():
    app = create_app(Config.from_sources({"name": "range-test", "in_memory": True}))
    try:
        range_page.fill(app, 3000)
        page = app.test_client().get(f"/api/v1/keys/{range_page.TENANT}?start=key00001000&limit=500").get_json()
        assert len(page["records"]) == 500 and page["records"][0]["name"] == "key00001000"
        times = range_page.measure(app, 3000, 5, 500, "&keys_only=true", random.Random(0))
        assert len(times) == 5 and times == sorted(times) and times[0] > 0
    finally:
        app.extensions["badkv_node"].stop()
