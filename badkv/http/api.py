"""The public ``/api/v1`` blueprint: keys, range listing and take.

Every path and query parameter is validated at the edge (``params.py``); views
are guard clauses followed by one Node call.
"""

from __future__ import annotations

import functools
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request

from badkv.errors import InvalidParameter, NotLeader, ReservedTenant
from badkv.cluster.transport import FORWARDED_BY
from badkv.http.auth import check_request
from badkv.http.codec import key_page, record_headers, take_page
from badkv.http.params import (CONSISTENCY_LEVELS, CONTROL_CHARACTERS, DEFAULT_TAKE_LIMIT, MAX_NAME_BYTES,
                               MAX_TAKE_LIMIT, MAX_TIMESTAMP, parse_if_match, parse_if_none_match,
                               is_small_integer, parse_name, parse_tenant, parse_timestamp, query_args, query_int,
                               read_timeout, read_value)
from badkv.http.proposals import proposal, written
from badkv.http.watch import long_poll, parse_wait

bp = Blueprint("api", __name__, url_prefix="/api/v1")

def _node():
    return current_app.extensions["badkv_node"]


def _at_the_leader(node, body: bytes, leader_wait: float, serve_here):
    """Serve this request where the leader is: here (``serve_here()``), or relayed to it, once.

    A request already forwarded to this node is never passed on (503 ``not_leader``), so there are no
    loops. If this node stops leading while it serves the request (NotLeader), the request goes on to
    whoever leads next. ``leader_wait`` is how long the leader itself may hold the request (a write's
    replication, a read's ``timeout``); the follower waits that long plus one peer timeout."""
    avoid = frozenset()
    for _ in range(2):
        if avoid or not node.is_leader:
            if request.headers.get(FORWARDED_BY):
                raise NotLeader("this node is not the leader; the request was already forwarded once",
                                leader=node.leader)
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("content-type", "if-match", "if-none-match", "authorization")}
            relayed = node.forward(request.method, request.path, request.query_string, body, headers,
                                   leader_wait=leader_wait + node.config.leader_wait, avoid=avoid)
            if relayed is not None:
                status, relayed_headers, relayed_body = relayed
                return Response(relayed_body, status=status, headers=relayed_headers)
        try:
            return serve_here()
        except NotLeader:
            if request.headers.get(FORWARDED_BY):
                raise
            avoid = frozenset({node.name})
    raise NotLeader("leadership moved while the request was served; try again", leader=node.leader)


@bp.get("/keys/<tenant>/<name>")
def get_key(tenant: str, name: str):
    parse_tenant(tenant)
    parse_name(name)
    node = _node()
    args = query_args(request.environ)
    consistency = args.get("consistency", "local")
    if consistency not in CONSISTENCY_LEVELS:
        raise InvalidParameter("consistency must be one of local, leader, linearizable")
    min_revision = query_int(args, "min_revision", None, 0, MAX_TIMESTAMP - 1)
    timeout = read_timeout(args, node.config.max_read_timeout)
    def read_here():
        record = node.read(tenant, name, consistency=consistency, min_revision=min_revision, timeout=timeout)
        _check_token_again(node, consistency)
        return Response(record.value, status=200, content_type="application/octet-stream",
                        headers=record_headers(record))

    return _read(node, consistency, timeout, read_here)


def _read(node, consistency: str, timeout: float | None, read_here):
    """A read served here (local, or linearizable on a follower through the leader's read index), else
    where the leader is."""
    if consistency == "local":
        return read_here()
    if consistency == "linearizable" and not node.is_leader and not request.headers.get(FORWARDED_BY):
        try:
            return read_here()
        except NotLeader:
            pass  # this node leads now
    leader_wait = node.config.read_timeout if timeout is None else timeout
    return _at_the_leader(node, b"", leader_wait, read_here)


def _check_token_again(node, consistency: str) -> None:
    """A linearizable read on a follower checks the client's token once more after the barrier: a
    revocation committed before the read began has then been applied here."""
    if node.config.auth and consistency == "linearizable":
        check_request()


def _name_bound(args, what: str) -> str | None:
    """A range bound or prefix: a name's characters, but it may be empty."""
    text = args.get(what)
    if text is None or text == "":
        return text
    if len(text.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES or CONTROL_CHARACTERS.search(text) or "/" in text:
        raise InvalidParameter(f"{what} must be at most {MAX_NAME_BYTES} bytes, without '/' or control characters")
    return text


def _flag(args, what: str) -> bool:
    text = args.get(what, "false")
    if text not in ("true", "false"):
        raise InvalidParameter(f"{what} must be true or false")
    return text == "true"


@bp.get("/keys/<tenant>")
def range_keys(tenant: str):
    """The tenant's live keys in name order: a prefix, or [start, end); paged by ``next``."""
    parse_tenant(tenant)
    node = _node()
    args = request.args
    consistency = args.get("consistency", "local")
    if consistency not in CONSISTENCY_LEVELS:
        raise InvalidParameter("consistency must be one of local, leader, linearizable")
    min_revision = query_int(args, "min_revision", None, 0, MAX_TIMESTAMP - 1)
    timeout = read_timeout(args, node.config.max_read_timeout)
    page = {"start": _name_bound(args, "start") or "", "end": _name_bound(args, "end") or None,
            "prefix": _name_bound(args, "prefix") or "", "reverse": _flag(args, "reverse"),
            "count_only": _flag(args, "count_only"),
            "limit": query_int(args, "limit", DEFAULT_TAKE_LIMIT, 1, MAX_TAKE_LIMIT)}
    keys_only = _flag(args, "keys_only")

    def read_here():
        found = node.range(tenant, consistency=consistency, min_revision=min_revision, timeout=timeout, **page)
        _check_token_again(node, consistency)
        return jsonify(key_page(found, keys_only, node.lease("leases_of", found.records)))

    return _read(node, consistency, timeout, read_here)


@bp.post("/keys/<tenant>/<name>", defaults={"timestamp": None})
@bp.post("/keys/<tenant>/<name>/<timestamp>")
def put_key(tenant: str, name: str, timestamp: str | None):
    return _write("put", tenant, name, timestamp)


@bp.delete("/keys/<tenant>/<name>", defaults={"timestamp": None})
@bp.delete("/keys/<tenant>/<name>/<timestamp>")
def delete_key(tenant: str, name: str, timestamp: str | None):
    return _write("delete", tenant, name, timestamp)


def _write(op: str, tenant: str, name: str, timestamp_text: str | None):
    parse_tenant(tenant)
    if tenant[0] == "_":  # reserved for the system: its records change only through /admin
        raise ReservedTenant(f"tenant {tenant} is reserved for the system (names starting with '_')")
    parse_name(name)
    timestamp = None if timestamp_text is None else parse_timestamp(timestamp_text)
    node = _node()
    environ = request.environ
    body = read_value(environ, node.config.max_value_size)  # a delete's body too: the limit holds for it
    if_match = parse_if_match(environ.get("HTTP_IF_MATCH"))
    if_none_match = parse_if_none_match(environ.get("HTTP_IF_NONE_MATCH"))
    value = body if op == "put" else b""
    lease_text = query_args(environ).get("lease")
    if lease_text is not None:
        return _write_with_lease(op, node, body, (tenant, name, value, timestamp, if_match, if_none_match),
                                 lease_text)
    avoid = frozenset()
    for _ in range(2):
        if node.is_leader and not avoid:
            try:
                return written(tenant, name, node.write(op, tenant, name, value, timestamp, if_match, if_none_match))
            except NotLeader:
                if request.headers.get(FORWARDED_BY):
                    raise
                avoid = frozenset({node.name})
                continue
        if request.headers.get(FORWARDED_BY):
            raise NotLeader("this node is not the leader; the request was already forwarded once", leader=node.leader)
        # To the leader in its next proposal batch (cluster/batcher.py).
        relayed = node.propose(proposal(op, tenant, name, value, timestamp, if_match, if_none_match,
                                        environ.get("HTTP_AUTHORIZATION")),
                               leader_wait=node.config.write_timeout + node.config.leader_wait, avoid=avoid)
        if relayed is not None:
            status, relayed_headers, relayed_body = relayed
            return Response(relayed_body, status=status, headers=relayed_headers)
        avoid = frozenset()  # this node leads now: serve it here
    raise NotLeader("leadership moved while the request was served; try again", leader=node.leader)


def _write_with_lease(op: str, node, body: bytes, write: tuple, lease_text: str):
    """A put attached to a lease: one lease entry on the leader (the whole request is relayed there, its
    query string with it, rather than batched as a plain write)."""
    if op != "put" or not is_small_integer(lease_text):
        raise InvalidParameter("lease must be the id a lease grant answered (1-19 decimal digits), on a POST only")
    tenant, name = write[0], write[1]

    def write_here():
        return written(tenant, name, node.lease("write", *write, int(lease_text)))

    return _at_the_leader(node, body, node.config.write_timeout, write_here)


@bp.get("/take/<timestamp>")
def take(timestamp: str):
    """The records changed at or after the cursor; with ``wait``, a watch (``watch.py``)."""
    since = parse_timestamp(timestamp)
    args = request.args
    limit = query_int(args, "limit", DEFAULT_TAKE_LIMIT, 1, MAX_TAKE_LIMIT)
    tenant = args.get("tenant")
    if tenant is not None:
        parse_tenant(tenant)
    prefix = _name_bound(args, "prefix") or ""
    if prefix and tenant is None:
        raise InvalidParameter("prefix needs tenant: a prefix filters one tenant's names")
    wait = parse_wait(args)
    node = _node()
    if wait is None:
        return jsonify(take_page(*node.take(since, limit, tenant, prefix)))
    return jsonify(take_page(*long_poll(node, since, limit, tenant, prefix, wait)))


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3 description of the public and admin API (kept true by tests/http/test_openapi.py)."""
    return current_app.response_class(_openapi_text(), mimetype="application/json")


@functools.cache
def _openapi_text() -> bytes:
    return (Path(__file__).parent / "openapi.json").read_bytes()
