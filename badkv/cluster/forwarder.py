"""Relaying a client's request from a follower to the leader, and pulling the leader's take feed.

A forward that fails before it reached the leader is 503 (retry is safe); one
whose outcome is unknown (a timeout, or a connection the leader's death left
half-open) is 504, because the leader may have acted on it.
"""

from __future__ import annotations

import logging

from badkv.cluster.transport import PeerClient, TransportError, TransportTimeout
from badkv.errors import Timeout, Unavailable

logger = logging.getLogger(__name__)

RELAYED_HEADERS = ("content-type", "etag", "retry-after", "allow")


class Forwarder:
    """The follower's way to the leader for ``node``."""

    def __init__(self, node):
        self.node = node

    @property
    def leader_peer(self) -> PeerClient | None:
        return self.node.peers.get(self.node.core.leader)

    def forward(self, method: str, path: str, query: bytes, body: bytes, headers: dict, *, leader_wait: float):
        """Relay a client's request to the leader; returns (status, headers, body).

        ``leader_wait`` is how long the leader may take over the request before it answers."""
        node = self.node
        leader = self.leader_peer
        if leader is None:
            raise Unavailable("no leader is known", retry_after=1)
        try:
            response = leader.forward(method, path, query=query, body=body, headers=headers,
                                      forwarded_by=node.name, timeout=leader_wait + node.config.peer_timeout)
        except TransportTimeout as error:
            logger.warning("%s: forwarding %s %s: %s", node.name, method, path, error)
            raise Timeout("the leader did not answer in time; the outcome is unknown") from None
        except TransportError as error:
            logger.warning("%s: forwarding %s %s: %s", node.name, method, path, error)
            raise Unavailable(f"the leader {node.core.leader} is unreachable", retry_after=1) from None
        relayed = {k: v for k, v in response.headers.items()
                   if k.lower() in RELAYED_HEADERS or k.lower().startswith("x-badkv-")}
        return response.status_code, relayed, response.content

    def fetch_leader_take(self, cursor: int, limit: int) -> dict:
        """One page of the leader's take feed (for take sync)."""
        leader = self.leader_peer
        if leader is None:
            raise TransportError("no leader known")
        return leader.take(cursor, limit)
