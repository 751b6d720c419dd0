"""The ``/admin`` blueprint: stats, metrics, members (and changing them), health, readiness, backups and
leadership transfer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from badkv.cluster import status
from badkv.cluster.transport import FORWARDED_BY
from badkv.errors import BadRequest, InvalidParameter, NotLeader

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _node():
    return current_app.extensions["badkv_node"]


@bp.get("/stats")
def stats():
    metrics = current_app.extensions["badkv_metrics"]
    return jsonify({**status.stats(_node()), "requests": metrics.request_counts(),
                    "tenant_top": metrics.tenant_summary()})


@bp.get("/metrics")
def metrics():
    body = current_app.extensions["badkv_metrics"].exposition()
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/members")
def members():
    return jsonify(status.members(_node()))


@bp.post("/members")
def add_member():
    """Add ``{"name", "address"}`` as a learner; 201 with its one-time join token once committed."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("address"), str):
        raise BadRequest('the body must be {"name": "<node name>", "address": "<host:port>"}')
    relayed = _relay_to_leader(_node(), request.get_data())
    if relayed is not None:
        return relayed
    token = _node().add_member(body["name"], body["address"])
    response = jsonify({"name": body["name"], "join_token": token})
    response.status_code = 201
    return response


@bp.delete("/members/<name>")
def remove_member(name: str):
    """Remove a member; 202 once the removal is committed."""
    relayed = _relay_to_leader(_node(), b"")
    if relayed is not None:
        return relayed
    _node().remove_member(name)
    response = jsonify({"name": name, "removed": True})
    response.status_code = 202
    return response


def _relay_to_leader(node, body: bytes) -> Response | None:
    """On a follower: the leader's answer to this request (relayed once); None on the leader."""
    if node.is_leader:
        return None
    if request.headers.get(FORWARDED_BY):
        raise NotLeader("this node is not the leader; the request was already forwarded once", leader=node.leader)
    headers = {"Content-Type": "application/json"}
    if "Authorization" in request.headers:  # the leader checks the admin token again
        headers["Authorization"] = request.headers["Authorization"]
    relayed = node.forward(request.method, request.path, b"", body, headers,
                           leader_wait=2 * node.config.election_timeout)
    if relayed is None:  # this node leads now
        return None
    status_code, headers, content = relayed
    return Response(content, status=status_code, headers=headers)


@bp.get("/backup")
def backup():
    """Stream a consistent snapshot of this node (restore it with ``badkvctl restore``)."""
    node = _node()
    headers = {"Content-Disposition": f'attachment; filename="badkv-{node.name}.snap"'}
    return Response(node.backup_stream(), mimetype="application/octet-stream", headers=headers)


@bp.get("/health")
def health():
    return jsonify({"status": "ok", "node": _node().name})


@bp.get("/ready")
def ready():
    role = request.args.get("role")
    if role is not None and role not in status.ROLES:
        raise InvalidParameter("role must be leader or follower")
    is_ready, reason = status.readiness(_node(), role)
    response = jsonify({"ready": is_ready, "reason": reason, "node": _node().name})
    response.status_code = 200 if is_ready else 503
    return response


@bp.post("/transfer-leader")
def transfer_leader():
    """Move leadership to ``{"to": name}`` (or the most caught-up follower with ``null`` or no body);
    202 once it moved. Sent to a follower, it is relayed to the leader."""
    node = _node()
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict) or not isinstance(body.get("to"), (str, type(None))):
        raise BadRequest('the body must be {"to": "<member name>"} or {"to": null}')
    target = body.get("to")
    if target is not None and target not in node.core.membership.nodes:
        raise BadRequest(f"{target} is not a member of this cluster")
    relayed = _relay_to_leader(node, request.get_data())
    if relayed is not None:
        return relayed
    leader = node.transfer_leadership(target, timeout=2 * node.config.election_timeout)
    response = jsonify({"leader": leader, "term": node.term})
    response.status_code = 202
    return response
