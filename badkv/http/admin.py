"""The ``/admin`` blueprint: stats, metrics, members, health and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from badkv.cluster import status

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _node():
    return current_app.extensions["badkv_node"]


@bp.get("/stats")
def stats():
    return jsonify({**status.stats(_node()), "requests": current_app.extensions["badkv_metrics"].request_counts()})


@bp.get("/metrics")
def metrics():
    body = current_app.extensions["badkv_metrics"].exposition()
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/members")
def members():
    return jsonify(status.members(_node()))


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
    is_ready, reason = status.readiness(_node())
    response = jsonify({"ready": is_ready, "reason": reason, "node": _node().name})
    response.status_code = 200 if is_ready else 503
    return response
