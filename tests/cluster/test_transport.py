"""Tests for badkv/cluster/transport.py's reading of a take page: a 410 becomes CursorExpired with the horizon,
any other failure a TransportError."""

from __future__ import annotations

import json

import pytest
import requests

from badkv.cluster.transport import TransportError, take_page_of
from badkv.errors import CursorExpired


def response(status: int, body) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return answer


def test_a_page_is_its_json():
    page = {"records": [], "next": 5, "revision": 4}
    assert take_page_of("n1", response(200, page)) == page


def test_a_410_with_a_horizon_is_cursor_expired():
    with pytest.raises(CursorExpired) as expired:
        take_page_of("n1", response(410, {"error": "cursor_expired", "message": "old", "horizon": 77}))
    assert expired.value.horizon == 77


@pytest.mark.parametrize("status, body", [(410, {"error": "gone"}), (503, {"error": "unavailable"}),
                                          (200, b"not json"), (200, [1, 2])])
def test_anything_else_is_a_transport_error(status, body):
    with pytest.raises(TransportError):
        take_page_of("n1", response(status, body))
