"""Calls from one node to another: msgpack over HTTP (HTTPS with TLS) with keep-alive and explicit timeouts.

Peer bodies are msgpack; above ``COMPRESS_THRESHOLD`` bytes they are
snappy-compressed (cramjam) and marked with ``Content-Encoding: snappy``.
Every failure (refused, reset, timeout, non-2xx) becomes ``TransportError`` so
callers handle one exception. With TLS every call verifies the other node
against the cluster's CA and presents this node's certificate (mTLS).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

import cramjam
import msgpack
import requests
import urllib3

from badkv import tracing
from badkv.cluster.connections import fresh_adapter
from badkv.cluster.peer_http import PeerHttp, PeerHttpError
from badkv.errors import CursorExpired

logger = logging.getLogger(__name__)

MSGPACK = "application/msgpack"
# Snappy costs about 1 µs per KiB here (compress plus decompress, cramjam) and saves nothing measurable
# on loopback; on a 1 Gbit/s link it pays from about 3 KB (bench/compression.py, docs/design.md).
COMPRESS_THRESHOLD = 4 * 1024
FORWARDED_BY = "X-Badkv-Forwarded-By"


class TransportError(Exception):
    """A call to another node failed; the other node may or may not have acted on it."""


class TransportTimeout(TransportError):
    """The call may have reached the other node, which did not answer: its outcome is unknown."""


def take_page_of(name: str, response: requests.Response) -> dict:
    """The take page a node answered; CursorExpired (with its horizon) for a 410, TransportError otherwise."""
    try:
        body = response.json()
    except ValueError as error:
        raise TransportError(f"{name}: take: HTTP {response.status_code}: {error}") from None
    if response.status_code == 410 and isinstance(body, dict) and isinstance(body.get("horizon"), int):
        raise CursorExpired(str(body.get("message", "")), horizon=body["horizon"])
    if response.status_code != 200 or not isinstance(body, dict):
        raise TransportError(f"{name}: take: HTTP {response.status_code}")
    return body


def _failure(name: str, error: requests.RequestException) -> TransportError:
    """Classify a failed call: only a refused or never-made connection is sure to have done nothing."""
    never_sent = isinstance(error, requests.ConnectTimeout) or (
        isinstance(error, requests.ConnectionError)
        and any(marker in str(error) for marker in ("NewConnectionError", "Connection refused")))
    kind = TransportError if never_sent else TransportTimeout
    return kind(f"{name}: {error.__class__.__name__}: {error}")


def encode_body(message: dict) -> tuple[bytes, dict]:
    """msgpack-encode ``message``; compress it when large. Returns body and headers."""
    body = msgpack.packb(message, use_bin_type=True)
    headers = {"Content-Type": MSGPACK}
    if len(body) > COMPRESS_THRESHOLD:
        body = bytes(cramjam.snappy.compress_raw(body))
        headers["Content-Encoding"] = "snappy"
    return body, headers


def decode_body(body: bytes, content_encoding: str | None) -> dict:
    """The inverse of ``encode_body``; raises ValueError on a malformed body."""
    try:
        if content_encoding == "snappy":
            body = bytes(cramjam.snappy.decompress_raw(body))
        message = msgpack.unpackb(body, raw=False)
    except Exception as error:  # msgpack and cramjam raise several unrelated types
        raise ValueError(f"malformed peer message: {error}") from None
    if not isinstance(message, dict):
        raise ValueError("malformed peer message: not a map")
    return message


@dataclass(frozen=True)
class PeerTls:
    """The files of mutual TLS: the CA to verify the other node against, and this node's certificate and key."""

    ca_file: str
    cert_file: str
    key_file: str

    def client_context(self) -> ssl.SSLContext:
        """Verify the server's certificate and host name against the CA; present this node's certificate."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def new_session(pool_size: int, tls: PeerTls | None = None) -> requests.Session:
    session = requests.Session()
    adapter = fresh_adapter(pool_connections=8, pool_maxsize=pool_size)
    session.mount("https://" if tls else "http://", adapter)
    session.trust_env = False  # never route loopback peer traffic through an HTTP proxy
    if tls:
        session.verify = tls.ca_file
        session.cert = (tls.cert_file, tls.key_file)
    return session


class PeerClient:
    """One node's client for another node's peer and public endpoints."""

    def __init__(self, name: str, address: str, *, timeout: float, pool_size: int = 4, tls: PeerTls | None = None,
                 local_name: str = "", boundary=None):
        self.name = name
        self.local_name = local_name
        self.address = address
        # The PeerBoundary (boundary.py) that signs this node's calls and hears whom the answers came from.
        self.boundary = boundary
        self.base_url = f"{'https' if tls else 'http'}://{address}"
        self.timeout = timeout
        self.session = new_session(pool_size, tls)
        # Peer calls get connections of their own: the other node serves a connection that
        # opens with POST /cluster/ from its reserved peer pool (see worker.py).
        host, _, port = address.rpartition(":")
        self.peer_http = PeerHttp(host.strip("[]"), int(port), tls.client_context() if tls else None)
        self.last_tls_failure = ""

    def call(self, path: str, message: dict, timeout: float | None = None) -> dict:
        body, headers = encode_body(message)
        if self.boundary is not None:
            headers.update(self.boundary.headers_for("POST", path, body, self.name))
        # The replicators call this for every batch, and the leader's CPU bounds replicated writes:
        # the call goes through peer_http.py's small client, not requests or urllib3 (see there).
        timeout = timeout or self.timeout
        tracing.stamp(f"call-start {self.name} {path}")
        try:
            response = self.peer_http.post(path, body, headers, timeout)
        except PeerHttpError as error:
            if error.tls:
                self._log_tls_failure(error)
            kind = TransportTimeout if error.sent else TransportError
            raise kind(f"{self.name}: {path}: {error}") from None
        tracing.stamp(f"call-end {self.name} {path}")
        if self.last_tls_failure:
            self.last_tls_failure = ""  # working again: the next failure is news
        if self.boundary is not None:
            if not self.boundary.answer_heard(self.name, response.headers, self.address):
                raise TransportError(f"{self.name}: {path}: answered from another data dir than it had")
            if response.status in (401, 409):
                self.boundary.refused_by(self.name, response.status, response.data)
        if response.status != 200:
            text = response.data[:200].decode("utf-8", "replace")
            error = TransportError(f"{self.name}: {path} answered {response.status}: {text}")
            error.status = response.status
            raise error
        try:
            return decode_body(response.data, response.headers.get("Content-Encoding"))
        except ValueError as error:
            raise TransportError(f"{self.name}: {error}") from None

    def _log_tls_failure(self, error: Exception) -> None:
        """Say why a TLS handshake with the other node failed, once for each new reason (calls repeat many
        times a second, and the replicators log failed calls only at debug level)."""
        if not isinstance(error, (urllib3.exceptions.SSLError, PeerHttpError)) and "SSL" not in str(error):
            return
        reason = str(error)
        if reason != self.last_tls_failure:
            self.last_tls_failure = reason
            logger.warning("%s: TLS with %s at %s failed: %s", self.local_name, self.name, self.base_url, reason)

    def append(self, request: dict) -> dict:
        return self.call("/cluster/v1/append", request)

    def vote(self, request: dict) -> dict:
        return self.call("/cluster/v1/vote", request)

    def timeout_now(self, request: dict) -> dict:
        return self.call("/cluster/v1/timeout-now", request)

    def heartbeat(self, request: dict) -> dict:
        return self.call("/cluster/v1/heartbeat", request)

    def read_index(self, timeout: float) -> int:
        """The leader's commit index, once it confirmed it still leads (ReadIndex for a follower's read)."""
        index = self.call("/cluster/v1/read-index", {}, timeout=timeout).get("index")
        if not isinstance(index, int):
            raise TransportError(f"{self.name}: read-index: no index")
        return index

    def propose(self, writes: list[dict], timeout: float) -> list:
        """A batch of clients' writes for the leader; its answer to each, as [status, headers, body]."""
        try:
            answers = self.call("/cluster/v1/propose", {"writes": writes}, timeout=timeout).get("answers")
        except TransportTimeout:
            raise
        except TransportError as error:
            if getattr(error, "status", 0) >= 500:  # it failed on the way: some writes may have been made
                raise TransportTimeout(str(error)) from None
            raise
        if not isinstance(answers, list):
            raise TransportError(f"{self.name}: propose: no answers")
        return answers

    def take(self, cursor: int, limit: int) -> dict:
        """One page of the other node's take, JSON decoded; CursorExpired if the cursor is older than its
        tombstone horizon."""
        try:
            response = self.session.get(f"{self.base_url}/api/v1/take/{cursor}", params={"limit": limit},
                                        timeout=self.timeout * 5)
            return take_page_of(self.name, response)
        except requests.RequestException as error:
            raise TransportError(f"{self.name}: take: {error}") from None

    def forward(self, method: str, path: str, *, query: bytes, body: bytes, headers: dict,
                forwarded_by: str, timeout: float) -> requests.Response:
        """Relay a client's request to this node's public API."""
        url = self.base_url + path + (("?" + query.decode("latin-1")) if query else "")
        headers = dict(headers, **{FORWARDED_BY: forwarded_by})
        try:
            return self.session.request(method, url, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as error:
            raise _failure(self.name, error) from None

    def close(self) -> None:
        self.session.close()
        self.peer_http.close()
