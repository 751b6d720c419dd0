"""Bearer-token checks with ``-auth on``: which token opens which route, decided before the view runs.

A tenant's token opens that tenant's keys, its transactions, its leases and its take (``take?tenant=``); the
admin token opens everything. ``/admin/health``, ``/admin/ready`` and the OpenAPI
document stay open (load balancers, clients learning the API), and the peer API
is guarded by the cluster's own boundary, not by client tokens. The check runs
on the node the client called; a request a follower relays to the leader
carries its Authorization header and is checked there once more.
"""

from __future__ import annotations

from flask import Flask, current_app, request

from badkv.errors import Forbidden, Unauthenticated
from badkv.security.tokens import TokenIndex

# The dashboard page holds no data and no secret (its data comes from /admin/overview, which needs the
# admin token): a browser opening it cannot send a bearer token anyway.
OPEN_ENDPOINTS = frozenset({"admin.health", "admin.ready", "api.openapi_document", "dashboard.page"})
OPEN_BLUEPRINTS = frozenset({"peer", "join"})  # (peer calls are signed; a join carries its one-time token)


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case), or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def scope_of(endpoint: str, view_args: dict | None, args) -> str | None:
    """The tenant a request touches, or None for what only the admin token opens (``/admin``, the
    whole take feed)."""
    if endpoint == "api.take":
        return args.get("tenant")
    if endpoint.startswith(("api.", "txn.", "leases.")):
        return (view_args or {}).get("tenant")
    return None


def check_request() -> None:
    """Raise Unauthenticated (401) or Forbidden (403) unless the request's token opens it."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in OPEN_ENDPOINTS or request.blueprint in OPEN_BLUEPRINTS:
        return  # (no endpoint: the 404 or 405 follows, and tells nothing about any tenant)
    who = current_app.extensions["badkv_node"].tenants.identify(bearer_token(request.headers.get("Authorization")))
    if who is None:
        raise Unauthenticated("a valid bearer token is needed: Authorization: Bearer <token>")
    if who is TokenIndex.ADMIN:
        return
    tenant = scope_of(endpoint, request.view_args, request.args)
    if tenant != who:
        what = f"tenant {tenant}" if tenant is not None else "this route (admin only)"
        raise Forbidden(f"this token opens tenant {who} only, not {what}")


def install(app: Flask, auth: bool) -> None:
    """Check every request's token when ``auth`` is on; with auth off nothing is added."""
    if auth:
        app.before_request(check_request)
