"""The ``/cluster/v1/join`` endpoint: a new node presents its one-time join token.

It is open to nodes that are not members yet (no cluster signature, no member
name: the joiner has neither), so the token is its only credential; with TLS the
joiner also needs a certificate from the cluster's CA, as every peer does. A
follower relays the call to the leader, which marks the token used (a config
entry) before it answers.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from badkv.cluster.transport import FORWARDED_BY
from badkv.errors import BadRequest, NotLeader
from badkv.http.client_certs import require_client_certificate

bp = Blueprint("join", __name__, url_prefix="/cluster/v1")
bp.before_request(require_client_certificate)


@bp.post("/join")
def join():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("token"), str):
        raise BadRequest('the body must be {"name": "<node name>", "token": "<join token>"}')
    cluster_id = body.get("cluster_id")
    if cluster_id is not None and not isinstance(cluster_id, str):
        raise BadRequest("cluster_id must be a string")
    node = current_app.extensions["badkv_node"]
    node.check_not_removed()
    if not node.is_leader:
        if request.headers.get(FORWARDED_BY):
            raise NotLeader("this node is not the leader; the join was already forwarded once", leader=node.leader)
        relayed = node.forward("POST", request.path, b"", request.get_data(), {"Content-Type": "application/json"},
                               leader_wait=2 * node.config.election_timeout)
        if relayed is not None:
            status_code, headers, content = relayed
            return Response(content, status=status_code, headers=headers)
    return jsonify(node.join(body["name"], body["token"], cluster_id, send_secret=not body.get("has_secret")))
