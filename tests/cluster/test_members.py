"""Tests for badkv/cluster/members.py: how a refused membership change is answered."""

import pytest

from badkv.cluster.members import refusal
from badkv.consensus.membership import MembershipError


@pytest.mark.parametrize("kind, status, code", [
    ("pending", 409, "membership_change_pending"),
    ("exists", 409, "already_member"),
    ("unknown", 404, "not_found"),
    ("invalid", 400, "bad_request"),
    ("not_ready", 503, "unavailable"),
    ("not_leader", 503, "not_leader"),
])
def test_each_refusal_has_its_status_and_code(kind, status, code):
    error = refusal(MembershipError(kind, "why"))
    assert (error.status, error.code, error.message) == (status, code, "why")
