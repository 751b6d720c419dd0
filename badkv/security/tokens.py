"""Tenant and admin bearer tokens: making them, storing only their hashes, and recognising them.

A tenant's token is 256 random bits shown once; the replicated state keeps only
its SHA-256 hash, as an ordinary record of the reserved tenant ``_auth`` (name:
the tenant, value: ``{"sha256": "<hex>"}``). So tokens travel through the log,
snapshots and take sync like any write, and every node knows them once the
entry applies. The request path hashes the presented token once and looks the
hash up in a dict: no slow hash is needed, because the token itself has 256
bits of entropy (nobody can guess one from its hash by trying).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from pathlib import Path
from typing import Callable

from badkv.errors import ConfigError

AUTH_TENANT = "_auth"
TOKEN_BYTES = 32  # 256 bits


def is_reserved(tenant: str) -> bool:
    """Tenants whose name starts with ``_`` belong to the system; clients may not write them."""
    return tenant.startswith("_")


def new_token() -> str:
    """256 random bits in hex: a URL-safe token may start with '-', which a shell command's option
    parser then takes for an option (``badkvctl --token -x...`` failed once in 64 runs)."""
    return secrets.token_hex(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_record_value(token: str) -> bytes:
    """The value of the tenant's ``_auth`` record: the hash, never the token."""
    return json.dumps({"sha256": token_hash(token)}).encode()


def read_admin_token(path: str) -> str:
    """The admin token from its file, read once at start: surrounding whitespace (the newline an
    editor adds) is not part of it; an empty or unreadable file is a ConfigError."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the admin token file {path}: {getattr(error, 'strerror', None) or error}")
    if not token:
        raise ConfigError(f"the admin token file {path} is empty; put a long random token in it")
    return token


class SystemTable:
    """One reserved tenant's live records turned into a mapping by ``build``, rebuilt only when the
    store says a reserved record changed (``store.system_version``), by whatever path: log, take sync,
    snapshot. Reading costs one integer comparison. The version and its mapping are installed together,
    and only over an older version: two threads rebuilding at once must not leave the older mapping (a
    rotated-out token) in place under the newer version."""

    def __init__(self, store, tenant: str, build: Callable[[list], dict]):
        self.store, self.tenant, self.build = store, tenant, build
        self._installed: tuple[int, dict] = (-1, {})
        self._install_lock = threading.Lock()

    def current(self) -> dict:
        version = self.store.system_version
        installed_version, mapping = self._installed
        if version == installed_version:
            return mapping
        # (a change during the build moves the version again: rebuilt on the next call)
        mapping = self.build(self.store.live_records(self.tenant))
        with self._install_lock:
            if version > self._installed[0]:
                self._installed = (version, mapping)
        return mapping


def _tenants_by_hash(records: list) -> dict[str, str]:
    by_hash = {}
    for record in records:
        try:
            by_hash[json.loads(record.value)["sha256"]] = record.name
        except (ValueError, KeyError, TypeError):
            continue  # not a token record (nothing but the admin API writes here); opens nothing
    return by_hash


class TokenIndex:
    """Who a bearer token is: ``ADMIN``, a tenant's name, or None."""

    ADMIN = object()

    def __init__(self, store, admin_token: str | None):
        self._admin_hash = token_hash(admin_token).encode() if admin_token else None
        self._table = SystemTable(store, AUTH_TENANT, _tenants_by_hash)

    def identify(self, token: str | None):
        if not token:
            return None
        digest = token_hash(token)
        # The admin token is compared in constant time (as hashes: equal lengths, nothing learnt from
        # timing); a tenant hash is a dict key, and timing a lookup by hash teaches nothing of a token.
        if self._admin_hash is not None and hmac.compare_digest(digest.encode(), self._admin_hash):
            return self.ADMIN
        return self._table.current().get(digest)
