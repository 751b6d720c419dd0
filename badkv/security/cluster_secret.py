"""The cluster secret: read once when a node starts, from ``-cluster-secret-file`` or ``BADKV_CLUSTER_SECRET``.

The secret never appears in a message or a log line; only its length and the file's name do.
"""

from __future__ import annotations

from badkv.config import Config
from badkv.errors import ConfigError

MIN_SECRET_BYTES = 16
HOW_TO_MAKE_ONE = "make one with: openssl rand -hex 32"


def load_cluster_secret(config: Config) -> bytes | None:
    """The secret as bytes (trailing newline stripped), or None when none is configured."""
    if config.cluster_secret_file:
        secret = _read(config.cluster_secret_file)
        where = f"the cluster secret file {config.cluster_secret_file}"
    elif config.cluster_secret:
        secret = config.cluster_secret.encode()
        where = "BADKV_CLUSTER_SECRET"
    else:
        return None
    secret = secret.rstrip(b"\r\n")
    if not secret:
        raise ConfigError(f"{where} is empty; {HOW_TO_MAKE_ONE}")
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where} holds {len(secret)} bytes; a cluster secret needs at least "
                          f"{MIN_SECRET_BYTES}; {HOW_TO_MAKE_ONE}")
    return secret


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise ConfigError(f"cannot read the cluster secret file {path}: {error.strerror or error}") from None
