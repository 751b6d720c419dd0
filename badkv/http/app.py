"""The Flask application factory."""

from __future__ import annotations

import logging
import os

from flask import Flask

from badkv.cluster.node import Node
from badkv.config import Config
from badkv.http import admin, api, auth, dashboard, join, leases, peer, tenants, txn
from badkv.http.errors import register_error_handlers
from badkv.http.metrics import Metrics
from badkv import tracing


def create_app(config: Config | None = None, node: Node | None = None) -> Flask:
    """Build the WSGI app for ``config`` (default: from the ``BADKV_*`` environment)."""
    if config is None:
        config = Config.from_sources(environ=os.environ)
    app = Flask("badkv")
    app.config["BADKV"] = config
    app.config["MAX_CONTENT_LENGTH"] = None
    app.json.sort_keys = False
    node = node or Node(config)
    metrics = Metrics(node)
    app.extensions["badkv_node"] = node
    app.extensions["badkv_metrics"] = metrics
    metrics.instrument(app)
    for blueprint in (api.bp, txn.bp, leases.bp, admin.bp, dashboard.bp, tenants.bp, peer.bp, join.bp):
        app.register_blueprint(blueprint)
    _refuse_once_removed(app, node)
    auth.install(app, config.auth)
    register_error_handlers(app)
    if tracing.enabled:
        _trace_requests(app, config.name)
    logging.getLogger("badkv").setLevel(config.log_level.upper())
    return app


SERVING_BLUEPRINTS = frozenset({"api", "txn", "leases", "tenants"})


def _refuse_once_removed(app: Flask, node: Node) -> None:
    """A node removed from the cluster answers its clients 503 ``removed`` with the reason."""
    from flask import request

    @app.before_request
    def _check_membership():
        if request.blueprint in SERVING_BLUEPRINTS and request.endpoint != "api.openapi_document":
            node.check_not_removed()


def _trace_requests(app: Flask, name: str) -> None:
    """Stamp each request's start and end (``badkv.tracing``)."""
    from flask import request

    tracing.node_name = name

    @app.before_request
    def _started():
        tracing.stamp(f"http-start {request.method} {request.path}")

    @app.teardown_request
    def _ended(_error=None):
        tracing.stamp(f"http-end {request.method} {request.path}")
