"""The live dashboard: ``GET /admin/dashboard`` (one HTML page) and ``GET /admin/overview`` (its JSON).

The page is built from three files shipped in the package (``dashboard/``: HTML, CSS, JS), the CSS and
JS inlined, so it is one self-contained answer that needs no CDN and works offline. It holds no data
and no secret, so it is open like ``/admin/health``; everything it shows comes from ``/admin/overview``,
which needs the admin token when auth is on (the page asks for it and keeps it in sessionStorage).

``/admin/overview`` on a follower relays to the leader, the one node that knows every member's
progress, and adds what it counts itself under ``here``; when no leader answers it gives its own view
(``view: "local"``) with the reason, so the page keeps showing the cluster during an election.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from functools import cache
from importlib import resources

from flask import Blueprint, Response, current_app, jsonify, request

from badkv.cluster import overview as cluster_overview
from badkv.cluster.transport import FORWARDED_BY
from badkv.errors import BadkvError

logger = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__, url_prefix="/admin")

# How long a follower waits for a leader to answer its relayed overview: the page asks every second,
# so a short wait (one election's worth) beats an old answer.
RELAY_WAIT = 1.0
WRITE_METHODS = ("POST", "DELETE", "PUT")


def _node():
    return current_app.extensions["badkv_node"]


@bp.get("/dashboard")
def page():
    html, policy = _page()
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": policy,
                                                          "Cache-Control": "no-store",
                                                          "X-Content-Type-Options": "nosniff"})


@bp.get("/overview")
def overview():
    node = _node()
    answer = local_overview()
    if node.is_leader or request.headers.get(FORWARDED_BY):
        return jsonify(answer)  # (a relayed request is answered here, never passed on: no loops)
    relayed, reason = _ask_leader(node)
    if relayed is None:
        answer["relay_error"] = reason
        return jsonify(answer)
    relayed.update(served_by=node.name, here=_here(answer))
    return jsonify(relayed)


def local_overview() -> dict:
    """This node's own view with its request counters and its busiest and largest tenants."""
    node = _node()
    metrics = current_app.extensions["badkv_metrics"]
    top = node.config.tenant_metrics_top
    answer = cluster_overview.view(node)
    answer.update(served_by=node.name, view="leader" if node.is_leader else "local", relay_error=None,
                  **request_totals(metrics.request_counts()),
                  tenants_by_keys=cluster_overview.tenants_by_keys(node, top),
                  tenants_by_requests=[{"tenant": tenant, **counts}
                                       for tenant, counts in metrics.tenants.top(top).items()])
    return answer


def request_totals(counts: dict) -> dict:
    """Key writes and reads this node answered with 2xx, from ``Metrics.request_counts`` (keys such as
    ``"POST /api/v1/keys/<tenant>/<name>"``): the counters the page turns into rates."""
    writes = reads = 0
    for route, by_status in counts.items():
        method, _, path = route.partition(" ")
        if not path.startswith("/api/v1/keys/"):
            continue
        answered = sum(n for code, n in by_status.items() if code.startswith("2"))
        if method in WRITE_METHODS:
            writes += answered
        elif method == "GET":
            reads += answered
    return {"writes_total": writes, "reads_total": reads}


def _ask_leader(node) -> tuple[dict | None, str | None]:
    """The leader's overview, or None and why not (no reason: this node leads, or no leader is known)."""
    if node.leader is None:
        return None, None
    headers = {"Accept": "application/json"}
    if "Authorization" in request.headers:  # the leader checks the admin token again
        headers["Authorization"] = request.headers["Authorization"]
    try:
        relayed = node.forward("GET", request.path, b"", b"", headers, leader_wait=RELAY_WAIT)
    except BadkvError as error:  # no leader answered within -leader-wait
        return None, error.message
    if relayed is None:
        return None, None
    status, _, content = relayed
    try:
        answer = json.loads(content) if status == 200 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        logger.info("%s: the leader answered the overview with HTTP %s", node.name, status)
        return None, f"the leader answered HTTP {status}"
    return answer, None


def _here(answer: dict) -> dict:
    """What the relaying node adds about itself: its role and what it answered."""
    return {key: answer[key] for key in ("node", "role", "term", "leader", "applied_index", "uptime_seconds",
                                         "writes_total", "reads_total")}


@cache
def _page() -> tuple[str, str]:
    """The page with its CSS and JS inlined, and a Content-Security-Policy that allows exactly those
    two inline blocks (by hash) and requests to this origin only."""
    folder = resources.files("badkv.http").joinpath("dashboard")
    html, css, script = (folder.joinpath(name).read_text("utf-8")
                         for name in ("dashboard.html", "dashboard.css", "dashboard.js"))
    page = html.replace("/*STYLE*/", css).replace("/*SCRIPT*/", script)
    policy = (f"default-src 'none'; connect-src 'self'; img-src 'self' data:; style-src '{_digest(css)}'; "
              f"script-src '{_digest(script)}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page, policy


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
