"""The baseline server: a bare Flask app over a locked dict, with badkv's route shape.

It does the least work a Flask app can do for these routes, so the ratio
badkv/bare shows what badkv's own layers (replication, validation, logging)
cost on top of Flask and gunicorn. Run it with the same gunicorn worker
settings as badkv, e.g.::

    .venv/bin/gunicorn --workers 1 --worker-class gthread --threads 8 \
        -b 127.0.0.1:8001 bench.bare_app:app
"""

import threading

from flask import Flask, Response, request


def create_app():
    """Build the baseline app with an empty in-memory store."""
    app = Flask(__name__)
    values = {}
    lock = threading.Lock()

    @app.get("/api/v1/keys/<tenant>/<name>")
    def get_key(tenant, name):
        with lock:
            value = values.get((tenant, name))
        if value is None:
            return {"error": "not_found"}, 404
        return Response(value, status=200, mimetype="application/octet-stream")

    @app.post("/api/v1/keys/<tenant>/<name>")
    def put_key(tenant, name):
        value = request.get_data()
        with lock:
            values[(tenant, name)] = value
        return {"tenant": tenant, "name": name, "accepted": True}, 202

    @app.get("/admin/health")
    def health():
        return {"status": "ok"}, 200

    return app


# gunicorn loads "bench.bare_app:app"; building it has no side effects.
app = create_app()
