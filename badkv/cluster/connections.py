"""Keep-alive connections that are never reused once the other node may be closing them.

A server closes a keep-alive connection that has been idle for its keep-alive
time (5 s for badkv, ``badkv/http/serving.py``). A request sent on such a
connection just as the server closes it is reset, and the caller cannot tell
whether it was acted on: a forwarded write would have to answer 504. Found by
the rolling-restart test (one write in about ten runs). So a connection idle
for ``REUSE_WITHIN_SECONDS`` is closed and a new one opened instead: one TCP
handshake on loopback, against an unknown outcome.
"""

from __future__ import annotations

import time

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

REUSE_WITHIN_SECONDS = 2.0
clock = time.monotonic  # (tests move time on)


class _Fresh:
    """Counts a connection as dropped once it has been idle too long (urllib3 then opens another)."""

    badkv_answered_at: float | None = None

    @property
    def is_connected(self) -> bool:
        answered_at = self.badkv_answered_at
        if answered_at is not None and clock() - answered_at >= REUSE_WITHIN_SECONDS:
            return False
        return super().is_connected

    def getresponse(self, *args, **kwargs):
        response = super().getresponse(*args, **kwargs)
        self.badkv_answered_at = clock()
        return response


class FreshHTTPConnection(_Fresh, HTTPConnection):
    pass


class FreshHTTPSConnection(_Fresh, HTTPSConnection):
    pass


class FreshHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = FreshHTTPConnection


class FreshHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = FreshHTTPSConnection


def fresh_adapter(pool_connections: int, pool_maxsize: int) -> HTTPAdapter:
    """A requests adapter whose pools never reuse a connection idle for ``REUSE_WITHIN_SECONDS``."""
    adapter = HTTPAdapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": FreshHTTPConnectionPool,
                                                  "https": FreshHTTPSConnectionPool}
    return adapter
