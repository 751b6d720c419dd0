"""``badkv.app:create_app``, the WSGI entry point gunicorn and the README name; the app lives in ``badkv.http``."""

from badkv.http.app import create_app

__all__ = ["create_app"]
