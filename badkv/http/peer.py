"""The ``/cluster/v1`` blueprint: node-to-node calls, msgpack bodies."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from badkv.errors import BadRequest
from badkv.cluster.transport import MSGPACK, decode_body, encode_body
from badkv.http.client_certs import require_client_certificate
from badkv.http.proposals import answer_proposals

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


@bp.before_request
def admit_peer_call():
    """Refuse a call from another cluster, a non-member, without a valid signature or from a second process
    under a member's name, before any view steps it into the core: a refused call changes nothing."""
    remote = f"{request.remote_addr}:{request.environ.get('REMOTE_PORT', '?')}"
    _node().admit_peer_call(request.method, request.path, lambda: request.get_data(cache=True), request.headers,
                            remote)


@bp.after_request
def name_this_process(response: Response) -> Response:
    """Every answer, refusals too, names this node and its instance (see badkv/security/instances.py)."""
    response.headers.update(_node().peer_answer_headers())
    return response


@bp.post("/append")
def append():
    return _reply(_node().handle_append(_message(APPEND_FIELDS)))


@bp.post("/vote")
def vote():
    return _reply(_node().handle_vote(_message(VOTE_FIELDS)))


@bp.post("/timeout-now")
def timeout_now():
    return _reply(_node().handle_timeout_now(_message(TIMEOUT_NOW_FIELDS)))


@bp.post("/propose")
def propose():
    """A follower's batch of clients' writes; the answer to each as the public API would give it."""
    writes = _message(("writes",))["writes"]
    if not isinstance(writes, list):
        raise BadRequest("writes must be a list")
    return _reply({"answers": answer_proposals(_node(), writes)})


@bp.post("/read-index")
def read_index():
    """A follower's linearizable reads: the commit index they wait for, once a majority confirmed this leader."""
    _message(())
    return _reply({"index": _node().confirmed_read_index(_node().config.read_timeout)})


@bp.post("/heartbeat")
def heartbeat():
    return _reply(_node().handle_heartbeat(_message(HEARTBEAT_FIELDS)))
