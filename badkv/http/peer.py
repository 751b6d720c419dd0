"""The ``/cluster/v1`` blueprint: node-to-node calls, msgpack bodies."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from badkv.errors import BadRequest
from badkv.cluster.transport import MSGPACK, decode_body, encode_body
from badkv.http.client_certs import require_client_certificate

bp = Blueprint("peer", __name__, url_prefix="/cluster/v1")
bp.before_request(require_client_certificate)

APPEND_FIELDS = ("term", "leader", "prev_index", "prev_term", "entries", "leader_commit", "seq")
VOTE_FIELDS = ("term", "candidate", "last_index", "last_term")
TIMEOUT_NOW_FIELDS = ("term", "leader")
HEARTBEAT_FIELDS = ("term", "leader", "commit", "seq")


def _message(required: tuple[str, ...]) -> dict:
    if request.mimetype != MSGPACK:
        raise BadRequest(f"peer calls take {MSGPACK} bodies")
    try:
        message = decode_body(request.get_data(), request.headers.get("Content-Encoding"))
    except ValueError as error:
        raise BadRequest(str(error)) from None
    missing = [name for name in required if name not in message]
    if missing:
        raise BadRequest(f"peer message lacks {', '.join(missing)}")
    return message


def _reply(message: dict) -> Response:
    body, headers = encode_body(message)
    return Response(body, status=200, headers=headers)


def _node():
    return current_app.extensions["badkv_node"]


@bp.post("/append")
def append():
    return _reply(_node().handle_append(_message(APPEND_FIELDS)))


@bp.post("/vote")
def vote():
    return _reply(_node().handle_vote(_message(VOTE_FIELDS)))


@bp.post("/timeout-now")
def timeout_now():
    return _reply(_node().handle_timeout_now(_message(TIMEOUT_NOW_FIELDS)))


@bp.post("/heartbeat")
def heartbeat():
    return _reply(_node().handle_heartbeat(_message(HEARTBEAT_FIELDS)))
