"""``POST /api/v1/txn/{tenant}``: a transaction's JSON body checked at the edge, then one Node call.

The body is parsed on whichever node the client called (a bad one is answered
there, 400 or 413), then served where the leader is, like a key write.
"""

from __future__ import annotations

import base64
import binascii
import json

from flask import Blueprint, current_app, jsonify, request

from badkv.errors import InvalidTransaction, ReservedTenant, TooLarge
from badkv.http.api import _at_the_leader
from badkv.http.params import MAX_TIMESTAMP, parse_name, parse_tenant
from badkv.txn import (COMPARE_OPS, MAX_BODY_BYTES, MAX_OPERATIONS, OPERATIONS, TARGETS, Compare, Operation,
                       Transaction)

bp = Blueprint("txn", __name__, url_prefix="/api/v1")

BODY_FIELDS = {"compare", "success", "failure"}
# The fields a compare may have, by target (a field of another target is a mistake worth telling).
COMPARE_FIELDS = {"exists": {"name", "target", "op", "exists"}, "revision": {"name", "target", "op", "revision"},
                  "value": {"name", "target", "op", "value", "value_b64"}}
OPERATION_FIELDS = {"op", "name", "value", "value_b64"}


@bp.post("/txn/<tenant>")
def transaction(tenant: str):
    """Compares, then the success or the failure operations, all at one revision; 200 with the outcome."""
    parse_tenant(tenant)
    if tenant[0] == "_":
        raise ReservedTenant(f"tenant {tenant} is reserved for the system (names starting with '_')")
    node = current_app.extensions["badkv_node"]
    body = _read_body()
    txn = parse_transaction(body, node.config.max_value_size)

    def run_here():
        return jsonify(node.txn(tenant, txn).to_json())

    return _at_the_leader(node, body, node.config.write_timeout, run_here)


def _read_body() -> bytes:
    """The request body, refused (413) above 1.5 MiB before it is read when its length says so."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise TooLarge(f"a transaction body is at most {MAX_BODY_BYTES} bytes", limit=MAX_BODY_BYTES)
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"a transaction body is at most {MAX_BODY_BYTES} bytes", limit=MAX_BODY_BYTES)
    return body


def parse_transaction(body: bytes, max_value_size: int) -> Transaction:
    """The Transaction a JSON body describes; InvalidTransaction (400) saying what is wrong, or TooLarge."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidTransaction('the body must be a JSON object: {"compare": [...], "success": [...], '
                                 '"failure": [...]}') from None
    if not isinstance(document, dict) or set(document) - BODY_FIELDS:
        raise InvalidTransaction('the body must be a JSON object with some of "compare", "success", "failure"')
    parts = {field: document.get(field, []) for field in BODY_FIELDS}
    for field, items in parts.items():
        if not isinstance(items, list):
            raise InvalidTransaction(f"{field} must be a list")
    if sum(len(items) for items in parts.values()) > MAX_OPERATIONS:
        raise TooLarge(f"a transaction has at most {MAX_OPERATIONS} compares and operations in all",
                       limit=MAX_OPERATIONS)
    return Transaction(tuple(_compare(item, max_value_size) for item in parts["compare"]),
                       tuple(_operation(item, max_value_size) for item in parts["success"]),
                       tuple(_operation(item, max_value_size) for item in parts["failure"]))


def _compare(item, max_value_size: int) -> Compare:
    target = item.get("target") if isinstance(item, dict) else None
    if target not in TARGETS:
        raise InvalidTransaction(f"a compare is a JSON object whose target is one of {', '.join(TARGETS)}")
    _check_object(item, COMPARE_FIELDS[target], f"a compare on {target}")
    name, op = _name(item), item.get("op", "==")
    if op not in COMPARE_OPS or (target == "exists" and op not in ("==", "!=")):
        raise InvalidTransaction("a compare's op must be ==, !=, < or > (== or != for exists)")
    if target == "exists":
        exists = item.get("exists", True)
        if type(exists) is not bool:
            raise InvalidTransaction("a compare's exists must be true or false")
        return Compare(name, target, op, exists=exists)
    if target == "revision":
        revision = item.get("revision")
        if type(revision) is not int or not 0 <= revision < MAX_TIMESTAMP:
            raise InvalidTransaction("a revision compare needs revision, an integer from 0 to 2^63-1")
        return Compare(name, target, op, revision=revision)
    return Compare(name, target, op, value=_value(item, max_value_size, required=True))


def _operation(item, max_value_size: int) -> Operation:
    _check_object(item, OPERATION_FIELDS, "an operation")
    op = item.get("op")
    if op not in OPERATIONS:
        raise InvalidTransaction(f"an operation's op must be one of {', '.join(OPERATIONS)}")
    name = _name(item)
    if op != "put":
        if "value" in item or "value_b64" in item:
            raise InvalidTransaction(f"a {op} takes no value")
        return Operation(op, name)
    return Operation(op, name, _value(item, max_value_size, required=False))


def _check_object(item, fields: set, what: str) -> None:
    if not isinstance(item, dict) or set(item) - fields:
        raise InvalidTransaction(f"{what} must be a JSON object with some of {', '.join(sorted(fields))}")


def _name(item: dict) -> str:
    name = item.get("name")
    if not isinstance(name, str):
        raise InvalidTransaction("every compare and operation needs a name (a string)")
    return parse_name(name)


def _value(item: dict, max_value_size: int, *, required: bool) -> bytes:
    """``value`` (text, stored as its UTF-8) or ``value_b64`` (any bytes), not both; at most the value limit."""
    if "value" in item and "value_b64" in item:
        raise InvalidTransaction("give value or value_b64, not both")
    if "value_b64" in item:
        text = item["value_b64"]
        try:
            value = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except (binascii.Error, ValueError):
            value = None
        if value is None:
            raise InvalidTransaction("value_b64 must be a string of base64")
    elif "value" in item:
        if not isinstance(item["value"], str):
            raise InvalidTransaction("value must be a string (value_b64 for bytes)")
        value = item["value"].encode("utf-8", "surrogatepass")
    elif required:
        raise InvalidTransaction("a value compare needs value or value_b64")
    else:
        value = b""
    if len(value) > max_value_size:
        raise TooLarge(f"a value is larger than the limit of {max_value_size} bytes", limit=max_value_size)
    return value
