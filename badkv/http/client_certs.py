"""With TLS, only callers that presented a certificate signed by the cluster's CA may make peer calls.

The node serves HTTPS with client certificates requested but not required
(http/serving.py), so that curl and badkvctl need none for the public API. A
certificate that is presented has already been verified against the CA in the
handshake; what is left to check here is that there was one. Gunicorn puts the
connection's socket into the WSGI environ (``gunicorn.socket``), and
``getpeercert()`` on it answers the verified certificate, or nothing.
"""

from __future__ import annotations

import logging

from flask import current_app, request

from badkv.errors import Unauthenticated

logger = logging.getLogger(__name__)


def verified_peer_subject(environ: dict) -> str | None:
    """The subject of the client certificate this connection presented and the CA verified, or None."""
    getpeercert = getattr(environ.get("gunicorn.socket"), "getpeercert", None)
    certificate = getpeercert() if getpeercert is not None else None
    if not certificate:
        return None
    return ",".join(f"{key}={value}" for rdn in certificate.get("subject", ()) for key, value in rdn) or "(no subject)"


def require_client_certificate() -> None:
    """A ``before_request`` hook: with TLS configured, refuse a call without a verified client certificate."""
    config = current_app.config["BADKV"]
    if not config.cert_file:
        return
    if verified_peer_subject(request.environ) is None:
        logger.warning("%s: refused %s %s from %s: no client certificate verified against the cluster CA",
                       config.name, request.method, request.path, request.remote_addr)
        raise Unauthenticated("peer calls need a client certificate signed by this cluster's CA")
