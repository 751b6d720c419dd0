"""The ``/cluster/v1`` blueprint: node-to-node calls, msgpack bodies."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from badkv.errors import BadRequest
from badkv.cluster.transport import MSGPACK, decode_body, encode_body

bp = Blueprint("peer", __name__, url_prefix="/cluster/v1")

APPEND_FIELDS = ("term", "leader", "prev_index", "prev_term", "entries", "leader_commit", "seq")


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


@bp.post("/append")
def append():
    return _reply(current_app.extensions["badkv_node"].handle_append(_message(APPEND_FIELDS)))
