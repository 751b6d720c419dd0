"""``/api/v1/leases/{tenant}``: grant, keepalive, revoke and show a lease; each is checked here at the edge,
then served where the leader is (only the leader's count of a lease's time is the one that ends it)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify, request

from badkv.errors import InvalidParameter, ReservedTenant
from badkv.http.api import _at_the_leader
from badkv.http.params import is_small_integer, parse_tenant
from badkv.leases import MAX_TTL, MIN_TTL

bp = Blueprint("leases", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 1024


def parse_tenant_of_lease(tenant: str) -> str:
    parse_tenant(tenant)
    if tenant[0] == "_":
        raise ReservedTenant(f"tenant {tenant} is reserved for the system (names starting with '_')")
    return tenant


def parse_lease_id(text: str) -> int:
    """A lease id: 1-19 decimal digits (one no grant answered is simply not found)."""
    if not is_small_integer(text):
        raise InvalidParameter("a lease id is 1-19 decimal digits (the id a grant answered)")
    return int(text)


def _ttl_of_body() -> int:
    body = request.get_data(cache=False)[:MAX_BODY_BYTES + 1]
    try:
        document = json.loads(body) if len(body) <= MAX_BODY_BYTES else None
    except (ValueError, RecursionError):
        document = None
    ttl = document.get("ttl") if isinstance(document, dict) and set(document) <= {"ttl"} else None
    if type(ttl) is not int or not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidParameter(f'the body must be {{"ttl": S}}, S an integer number of seconds from {MIN_TTL} '
                               f'to {MAX_TTL}')
    return ttl


def _node():
    return current_app.extensions["badkv_node"]


@bp.post("/leases/<tenant>")
def grant(tenant: str):
    """A new lease of ``ttl`` seconds; 201 with its id."""
    parse_tenant_of_lease(tenant)
    ttl = _ttl_of_body()
    node = _node()

    def here():
        lease = node.lease("grant", tenant, ttl)
        response = jsonify({"id": str(lease.id), "ttl": lease.ttl})
        response.status_code = 201
        return response

    return _at_the_leader(node, json.dumps({"ttl": ttl}).encode(), node.config.write_timeout, here)


@bp.post("/leases/<tenant>/<lease_id>/keepalive")
def keepalive(tenant: str, lease_id: str):
    """The lease's full TTL again; 404 once it has ended."""
    parse_tenant_of_lease(tenant)
    number = parse_lease_id(lease_id)
    node = _node()

    def here():
        lease = node.lease("keepalive", tenant, number)
        return jsonify({"id": str(lease.id), "ttl": lease.ttl, "remaining": node.lease("remaining", lease)})

    return _at_the_leader(node, b"", node.config.write_timeout, here)


@bp.get("/leases/<tenant>/<lease_id>")
def show(tenant: str, lease_id: str):
    """The lease's TTL, its time left by the leader's count, and the names of its attached keys."""
    parse_tenant_of_lease(tenant)
    number = parse_lease_id(lease_id)
    node = _node()
    return _at_the_leader(node, b"", node.config.read_timeout, lambda: jsonify(node.lease("show", tenant, number)))


@bp.delete("/leases/<tenant>/<lease_id>")
def revoke(tenant: str, lease_id: str):
    """End the lease now; its attached keys are deleted in the same entry. 202."""
    parse_tenant_of_lease(tenant)
    number = parse_lease_id(lease_id)
    node = _node()

    def here():
        node.lease("revoke", tenant, number)
        return Response(json.dumps({"id": str(number), "revoked": True}), status=202,
                        content_type="application/json")

    return _at_the_leader(node, b"", node.config.write_timeout, here)
