"""The ``/admin/tenants`` blueprint: tenant tokens (create, rotate, revoke), quotas, drop and
the tenant list.

Writes go to the leader (relayed from a follower like key writes); the list is
this node's view of the replicated state plus its own request counters.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from badkv.errors import ReservedTenant
from badkv.http import api
from badkv.security.quotas import parse_quota_body
from badkv.security.tokens import is_reserved

bp = Blueprint("tenants", __name__, url_prefix="/admin/tenants")


def _node():
    return current_app.extensions["badkv_node"]


def _client_tenant(tenant: str) -> str:
    api.parse_tenant(tenant)
    if is_reserved(tenant):
        raise ReservedTenant(f"tenant {tenant} is reserved for the system (names starting with '_')")
    return tenant


def _at_the_leader(serve_here):
    node = _node()
    return api._at_the_leader(node, b"", node.config.write_timeout, serve_here)


def _answer(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    return response


@bp.post("/<tenant>")
def create_token(tenant: str):
    _client_tenant(tenant)
    return _at_the_leader(lambda: _answer({"tenant": tenant, "token": _node().tenants.create(tenant)}, 201))


@bp.post("/<tenant>/rotate")
def rotate_token(tenant: str):
    _client_tenant(tenant)
    return _at_the_leader(lambda: _answer({"tenant": tenant, "token": _node().tenants.rotate(tenant)}, 200))


@bp.delete("/<tenant>/token")
def revoke_token(tenant: str):
    _client_tenant(tenant)

    def revoke_here():
        _node().tenants.revoke(tenant)
        return _answer({"tenant": tenant, "revoked": True}, 202)

    return _at_the_leader(revoke_here)


@bp.put("/<tenant>/quota")
def set_quota(tenant: str):
    _client_tenant(tenant)
    body = parse_quota_body(request.get_json(silent=True))
    node = _node()

    def set_here():
        quota = node.tenants.set_quota(tenant, body)
        return _answer({"tenant": tenant, "quota": quota.to_json()}, 200)

    return api._at_the_leader(node, request.get_data(), node.config.write_timeout, set_here)


@bp.delete("/<tenant>")
def drop_tenant(tenant: str):
    _client_tenant(tenant)

    def drop_here():
        _node().tenants.drop(tenant)
        return _answer({"tenant": tenant, "dropped": True}, 202)

    return _at_the_leader(drop_here)


@bp.get("")
def list_tenants():
    counts = current_app.extensions["badkv_metrics"].tenant_counts()
    return jsonify({"tenants": _node().tenants.listing(counts)})
