"""The one place errors become HTTP: every BadkvError, werkzeug error and surprise as one JSON shape."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from badkv.errors import BadkvError

logger = logging.getLogger(__name__)


def _render(error: BadkvError):
    response = jsonify(error.to_dict())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Render BadkvError, werkzeug errors and unexpected exceptions as JSON."""

    @app.errorhandler(BadkvError)
    def handle_badkv_error(error: BadkvError):
        return _render(error)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        response = jsonify({"error": code, "message": error.description})
        response.status_code = error.code or 500
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        logger.exception("unhandled error")
        return _render(BadkvError("internal error; see the server log"))
