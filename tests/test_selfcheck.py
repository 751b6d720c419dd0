"""Tests for badkv/selfcheck.py: the verdict, the exit status and the cleanup of ``badkvctl check``,
against doctored histories (the real cluster is in tests/process/test_check_command.py)."""

from __future__ import annotations

import pytest

from badkv.client import ClientError
from badkv.ctl import build_parser
from badkv.selfcheck import EXIT_COULD_NOT_RUN, EXIT_LINEARIZABLE, EXIT_NOT_LINEARIZABLE, SelfCheck, check_tenant, judge
from badkv.http.params import TENANT_PATTERN
from badkv.security.tokens import is_reserved
from badkv.testing.history import Operation


def op(id, kind, call, ret, value=None, status="ok", **fields) -> Operation:
    return Operation(id=id, process=id, node="n1", key="k0", kind=kind, call=call, return_=ret, status=status,
                     value=value, **fields)


GOOD = [op(0, "write", 0, 1, "v0"), op(1, "write", 2, 3, "v1"), op(2, "read", 4, 5, "v1")]
STALE = [op(0, "write", 0, 1, "v0"), op(1, "write", 2, 3, "v1"), op(2, "read", 4, 5, "v0")]


def test_a_stale_read_is_not_linearizable():
    verdict = judge(STALE)
    assert verdict.ok is False and "k0" in verdict.reason
    assert judge(GOOD).ok is True and judge(GOOD).operations == 3


def test_a_local_read_of_a_value_nobody_wrote_fails_the_check():
    made_up = GOOD + [op(3, "read", 6, 7, "v9", consistency="local")]
    verdict = judge(made_up)
    assert verdict.ok is False and "local reads" in verdict.reason


def test_the_check_tenant_is_a_valid_client_tenant():
    names = {check_tenant() for _ in range(20)}
    assert len(names) == 20
    assert all(TENANT_PATTERN.fullmatch(name) and not is_reserved(name) for name in names)


class FakeClient:
    """Answers the preflight write and records the cleanup."""

    def __init__(self, refuse: bool = False):
        self.refuse, self.deleted, self.dropped = refuse, [], []

    def put(self, tenant, name, value):
        if self.refuse:
            raise ClientError(401, "unauthenticated", "a valid bearer token is needed")

    def delete(self, tenant, name):
        self.deleted.append(name)

    def tenant_drop(self, tenant):
        self.dropped.append(tenant)


def workload_returning(history):
    class Recorded:
        def __init__(self, endpoints, **options):
            self.options = options
            self.keys = [f"k{i}" for i in range(options["keys"])]
            self.pairs = ["pair0"]

        def run(self, seconds):
            return list(history)
    return Recorded


def self_check(history, *extra, refuse=False):
    args = build_parser().parse_args(["check", "--endpoints", "http://127.0.0.1:1,http://127.0.0.1:2", *extra])
    lines = []
    check = SelfCheck(args, report=lines.append, workload=workload_returning(history))
    check.client = FakeClient(refuse)
    return check.run(), lines, check


@pytest.mark.parametrize(("history", "status", "verdict"), [
    (GOOD, EXIT_LINEARIZABLE, "linearizable: 3 operations checked"),
    (STALE, EXIT_NOT_LINEARIZABLE, "NOT linearizable: "),
    ([op(0, "write", 0, None, "v0", status="unknown")], EXIT_COULD_NOT_RUN, "check: could not run: no request"),
])
def test_exit_status_follows_the_verdict_and_the_keys_are_deleted(history, status, verdict):
    code, lines, check = self_check(history)
    assert code == status
    assert any(line.startswith(verdict) for line in lines), lines
    # Every key the workload may write: its single keys and the two keys of each pair transactions write.
    assert check.client.deleted == ["preflight", "k0", "k1", "k2", "k3", "k4", "pair0.a", "pair0.b"]
    assert not check.client.dropped


def test_with_a_token_the_tenant_is_dropped():
    code, lines, check = self_check(GOOD, "--admin-token", "secret")
    assert code == EXIT_LINEARIZABLE
    assert check.client.dropped == [check.tenant] and not check.client.deleted
    assert check.session_options["headers"] == {"Authorization": "Bearer secret"}


def test_a_refused_first_write_means_the_check_could_not_run():
    code, lines, check = self_check(GOOD, refuse=True)
    assert code == EXIT_COULD_NOT_RUN and "unauthenticated" in lines[-1]
    assert check.client.deleted == []
