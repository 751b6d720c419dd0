"""Fuzz the OpenAPI document a node serves, auth off and on: no undesigned 5xx, no traceback, all documented.

schemathesis generates valid and invalid requests for every operation of the document a one-node,
in-memory node serves at /api/v1/openapi.json, sends them to a fresh node per operation through WSGI,
and checks each answer: its status is declared, its content type and body match the document, no
body holds a traceback, and no 5xx comes back but the ones the design answers with on purpose.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from badkv.app import create_app
from badkv.config import Config

ADMIN = "the-admin-token-for-fuzzing"
DOCUMENT = "/api/v1/openapi.json"
OPEN_OPERATIONS = {"GET /admin/health", "GET /admin/ready", "GET /admin/dashboard", "GET /api/v1/openapi.json"}
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]+", line [0-9]+')
# A wait a read asks for (`min_revision` with `timeout`) is cut to this, so a run stays bounded.
LONGEST_WAIT = 0.05

# Bounded and reproducible: the same examples on every run, none stored between runs. One node serves
# all examples of one operation (the function-scoped fixture), as a real node serves many requests;
# generating is slow on a shared 2-core machine, which is no finding.
FUZZ = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# The 5xx answers the design gives on purpose; any other 5xx fails `not_a_server_error`. Each of these
# is checked in `designed_5xx_only` below for when a lone healthy node may give it.
DESIGNED_5XX = {503, 504, 507}
CHECKS = {
    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx"] + [str(s) for s in sorted(DESIGNED_5XX)]},
    # A schema-valid conditional write whose If-Match or If-None-Match does not hold is answered 412
    # (RFC 9110), and a min_revision the node has not reached within the wait is answered 504.
    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "429",
                                                       "5xx"]},
}


def _node_config(tmp_path, auth: bool) -> Config:
    values = {"name": "fuzz1", "in_memory": True, "read_timeout": LONGEST_WAIT}
    if auth:
        token_file = tmp_path / "admin-token"
        token_file.write_text(ADMIN + "\n")
        values |= {"auth": True, "admin_token_file": str(token_file)}
    return Config.from_sources(values)


def _served_schema(auth: bool, **generation) -> schemathesis.BaseSchema:
    """The document a node serves, loaded through WSGI. schemathesis turns each operation into a test
    when this module is collected, so the node is built here and stopped at once."""
    settings_ = {"checks": CHECKS, "generation": generation}
    if auth:
        settings_["auth"] = {"openapi": {"bearer": {"bearer": ADMIN}}}
    app = create_app(Config.from_sources({"name": "fuzz0", "in_memory": True}))
    try:
        return schemathesis.openapi.from_wsgi(DOCUMENT, app, config=schemathesis.Config.from_dict(settings_))
    finally:
        app.extensions["badkv_node"].stop()


# With auth off every route is open by design (design section 4), so the document's bearer scheme,
# which describes a node with auth on, is not generated as a header there.
open_schema = _served_schema(auth=False, **{"with-security-parameters": False})
auth_schema = _served_schema(auth=True)
bare_schema = _served_schema(auth=False, **{"with-security-parameters": False, "mode": "positive"})


@pytest.fixture
def open_app(tmp_path):
    app = create_app(_node_config(tmp_path, auth=False))
    yield app
    app.extensions["badkv_node"].stop()


@pytest.fixture
def auth_app(tmp_path):
    app = create_app(_node_config(tmp_path, auth=True))
    yield app
    app.extensions["badkv_node"].stop()


def no_traceback(ctx, response, case):
    """No answer, whatever its status, carries a Python traceback or a source path."""
    body = response.content.decode("utf-8", "replace")
    found = TRACEBACK.search(body)
    if found:
        raise AssertionError(f"{case.operation.label} answered {response.status_code} with {found[0]!r}: "
                             f"{body[:300]}")


def designed_5xx_only(ctx, response, case):
    """A lone healthy node leads, so it never answers 503 (but to /admin/ready?role=follower: it is no
    follower); 504 only when a read's min_revision was not reached within its wait; 507 only as
    quota_exceeded."""
    status = response.status_code
    if status not in DESIGNED_5XX:
        return
    try:
        error = response.json().get("error")
    except ValueError:  # (not JSON: reported by the content-type and schema checks)
        error = None
    waited = "min_revision" in (case.query or {})
    not_a_follower = case.operation.label == "GET /admin/ready" and (case.query or {}).get("role") == "follower"
    allowed = ((status == 504 and waited and error == "timeout") or (status == 507 and error == "quota_exceeded")
               or (status == 503 and not_a_follower))
    if not allowed:
        raise AssertionError(f"{case.operation.label} answered {status} {error}: {response.content[:300]!r}")


def _bound_waits(case) -> None:
    """Cut a generated read wait or watch wait to LONGEST_WAIT: the fuzz looks for wrong answers, not for
    long ones."""
    for name in ("timeout", "wait"):
        wait = (case.query or {}).get(name)
        if isinstance(wait, str):  # (the document's examples come as text)
            try:
                wait = float(wait)
            except ValueError:
                continue
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > LONGEST_WAIT:
            case.query[name] = LONGEST_WAIT


def _call(case, app, excluded_checks=(), **kwargs):
    _bound_waits(case)
    if case.operation.label == "POST /admin/transfer-leader":
        # A one-member cluster has no one to hand leadership to: every transfer, valid or not, is 400.
        excluded_checks = [*excluded_checks, positive_data_acceptance]
    query = case.query or {}
    if case.operation.label == "GET /api/v1/take/{timestamp}" and query.get("prefix") and "tenant" not in query:
        # A prefix filters one tenant's names: without a tenant it is 400, a rule between two parameters
        # that OpenAPI 3.0 cannot state (the document says it in words and in the 400's examples).
        excluded_checks = [*excluded_checks, positive_data_acceptance]
    return case.call_and_validate(app=app, additional_checks=[no_traceback, designed_5xx_only],
                                  excluded_checks=list(excluded_checks), **kwargs)


@open_schema.parametrize()
@FUZZ
def test_auth_off(case, open_app):
    # ignored_auth expects the declared bearer scheme to be enforced; with auth off it deliberately is not.
    _call(case, open_app, excluded_checks=[ignored_auth])


@auth_schema.parametrize()
@FUZZ
def test_auth_on_with_the_admin_token(case, auth_app):
    """The admin token is sent on every case; ignored_auth resends a case without it and with a wrong one."""
    _call(case, auth_app)


@bare_schema.parametrize()
@settings(FUZZ, max_examples=10)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", f"Basic {ADMIN}"])
def test_auth_on_without_a_valid_token(case, auth_app, authorization):
    """No token, a wrong one, or the admin token under another scheme: 401 everywhere but the open routes."""
    headers = {"Authorization": authorization} if authorization else {}
    response = _call(case, auth_app, headers=headers)
    if case.operation.label in OPEN_OPERATIONS:
        assert response.status_code not in (401, 403), "an open route asked for a token"
        if case.operation.label != "GET /admin/ready":  # (a bad ?role= is 400, and a lone node is no follower)
            assert response.status_code < 400
    else:
        assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
