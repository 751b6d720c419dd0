"""With TLS, only members may make peer calls: a certificate from the cluster's CA that names the sender.

The node serves HTTPS with client certificates requested but not required
(http/serving.py), so that curl and badkvctl need none for the public API. A
certificate that is presented has already been verified against the CA in the
handshake. That is not enough for a peer call: the CA also signs operators'
client certificates (``badkvctl certs issue NAME --client``), and the sender's
name is a header the caller writes. So a peer call needs a node certificate
(one that may serve, ``serverAuth``: client certificates carry ``clientAuth``
only) whose common name is the member named in ``X-Badkv-Sender``. Gunicorn puts
the connection's socket into the WSGI environ (``gunicorn.socket``), and
``getpeercert()`` on it answers the verified certificate, or nothing.
"""

from __future__ import annotations

import functools
import logging

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask import current_app, request

from badkv.errors import Unauthenticated
from badkv.security.peer_auth import SENDER

logger = logging.getLogger(__name__)


def verified_peer_subject(environ: dict) -> str | None:
    """The subject of the client certificate this connection presented and the CA verified, or None."""
    getpeercert = getattr(environ.get("gunicorn.socket"), "getpeercert", None)
    certificate = getpeercert() if getpeercert is not None else None
    if not certificate:
        return None
    return ",".join(f"{key}={value}" for rdn in certificate.get("subject", ()) for key, value in rdn) or "(no subject)"


@functools.lru_cache(maxsize=64)
def node_name_of(der: bytes) -> str | None:
    """The common name of a node certificate (one with serverAuth), None for any other certificate.
    Cached: a member's connection presents the same certificate on every call."""
    certificate = x509.load_der_x509_certificate(der)
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if ExtendedKeyUsageOID.SERVER_AUTH not in usages or not names:
        return None
    return str(names[0].value)


def _refuse(config, why: str) -> None:
    logger.warning("%s: refused %s %s from %s: %s", config.name, request.method, request.path,
                   request.remote_addr, why)
    raise Unauthenticated("peer calls need this member's node certificate, signed by this cluster's CA")


def require_client_certificate() -> None:
    """A ``before_request`` hook: with TLS configured, refuse a call without a verified node certificate
    naming its sender."""
    config = current_app.config["BADKV"]
    if not config.cert_file:
        return
    if verified_peer_subject(request.environ) is None:
        _refuse(config, "no client certificate verified against the cluster CA")
    der = request.environ["gunicorn.socket"].getpeercert(binary_form=True)
    name = node_name_of(der)
    if name is None:
        _refuse(config, "its certificate is not a node certificate (no serverAuth usage)")
    sender = request.headers.get(SENDER, "")
    if name != sender:
        _refuse(config, f"its certificate names {name!r}, the call says it comes from {sender!r}")
