"""Relaying a client's request from a follower to the leader, and pulling the leader's take feed.

During an election a request waits (up to ``-leader-wait``) for a leader
instead of failing, and one that a leader refused without acting on it goes to
the next leader. A forward that fails before it reached any leader is 503
(retry is safe); one whose outcome is unknown (a timeout, or a connection the
leader's death left half-open) is 504, because the leader may have acted on it.
"""

from __future__ import annotations

import json
import logging

from badkv.cluster.batcher import Batcher
from badkv.cluster.transport import PeerClient, TransportError, TransportTimeout, take_page_of
from badkv.errors import NotLeader, Timeout, Unavailable

logger = logging.getLogger(__name__)

RELAYED_HEADERS = ("content-type", "etag", "retry-after", "allow", "www-authenticate")


class Forwarder:
    """The follower's way to the leader for ``node``."""

    def __init__(self, node):
        self.node = node
        self.proposals = Batcher(lambda leader, writes, timeout: node.peers[leader].propose(writes, timeout))
        # One confirmed index answers every read queued before the call left: each read began before it.
        self.read_indexes = Batcher(lambda leader, reads, timeout: [node.peers[leader].read_index(timeout)] * len(reads))

    @property
    def leader_peer(self) -> PeerClient | None:
        return self.node.peers.get(self.node.core.leader)

    def forward(self, method: str, path: str, query: bytes, body: bytes, headers: dict, *, leader_wait: float,
                avoid: frozenset = frozenset()):
        """Relay a client's request to the leader; returns (status, headers, body), or None once this node
        leads itself (serve the request here). ``leader_wait`` is how long the leader may hold the request."""
        def call(leader: str):
            response = self.node.peers[leader].forward(method, path, query=query, body=body, headers=headers,
                                                       forwarded_by=self.node.name,
                                                       timeout=leader_wait + self.node.config.peer_timeout)
            relayed = {k: v for k, v in response.headers.items()
                       if k.lower() in RELAYED_HEADERS or k.lower().startswith("x-badkv-")}
            return response.status_code, relayed, response.content

        return self._to_leader(f"{method} {path}", call, avoid)

    def propose(self, write: dict, *, leader_wait: float, avoid: frozenset = frozenset()):
        """A client's put or delete (``Writer.begin``'s arguments, plus ``authorization``) in the leader's
        next proposal batch (``cluster/batcher.py``); like ``forward``, (status, headers, body) or None."""
        timeout = leader_wait + self.node.config.peer_timeout
        return self._to_leader(f"propose {write['tenant']}/{write['name']}",
                               lambda leader: tuple(self.proposals.call(leader, write, timeout, len(write["value"]))),
                               avoid)

    def read_index(self, timeout: float) -> int:
        """The leader's commit index once it confirmed it leads (ReadIndex for a read on this follower).
        A read changes nothing, so any failed call is tried again with whoever leads next, until
        ``timeout``."""
        node = self.node
        deadline = node.monotonic() + timeout
        tried: set = set()
        while True:
            found = node.wait_for_leader_in_term(max(0.0, min(deadline - node.monotonic(), node.config.leader_wait)),
                                                 tried)
            if found is None:
                raise Unavailable(f"no leader confirmed a read index within {timeout:g}s", retry_after=1)
            leader, term = found
            if leader == node.name:
                raise NotLeader("this node leads now: the read is served here", leader=leader)
            try:
                return self.read_indexes.call(leader, None, max(0.05, deadline - node.monotonic()))
            except TransportError as error:
                logger.info("%s: read index from %s: %s", node.name, leader, error)
                tried.add((leader, term))
                if node.monotonic() >= deadline:
                    raise Unavailable("the leader did not confirm a read index in time", retry_after=1) from None

    def _to_leader(self, what: str, call, avoid: frozenset):
        """``call(leader)`` on the leader; (status, headers, body), or None once this node leads.

        Waits up to ``-leader-wait`` for a leader other than those in ``avoid``. A leader that refuses the
        connection, or answers that it no longer leads, did nothing with the request, so the next leader
        is tried within the same wait."""
        node = self.node
        deadline = node.monotonic() + node.config.leader_wait
        # Leaders that refused, with their term: one that refused may lead again after an election.
        tried = {(name, node.core.current_term) for name in avoid}
        while True:
            found = node.wait_for_leader_in_term(max(0.0, deadline - node.monotonic()), tried)
            if found is None:
                reason = f"no leader was known within {node.config.leader_wait:g}s"
                refused = sorted({name for name, _ in tried} - set(avoid))
                raise Unavailable(f"{reason}; tried {', '.join(refused)}" if refused else reason, retry_after=1)
            leader, term = found
            if leader == node.name:
                return None
            try:
                status, headers, content = call(leader)
            except TransportTimeout as error:
                logger.warning("%s: forwarding %s: %s", node.name, what, error)
                raise Timeout("the leader did not answer in time; the outcome is unknown") from None
            except TransportError as error:
                logger.warning("%s: forwarding %s to %s: %s", node.name, what, leader, error)
                tried.add((leader, term))
                continue
            if status == 503 and _says_not_leader(content):
                tried.add((leader, term))
                continue
            return status, headers, content

    def fetch_leader_take(self, cursor: int, limit: int) -> dict:
        """One page of the leader's take feed (for take sync); CursorExpired past the leader's horizon."""
        leader = self.leader_peer
        if leader is None:
            raise TransportError("no leader known")
        admin_token = self.node.tenants.admin_token if self.node.config.auth else None
        if admin_token is None:
            return leader.take(cursor, limit)
        # With auth on, the whole feed (take without a tenant) opens only to the admin token, which every
        # member holds. (Sent on this call only: the peer's session must never lend it to a client's request.)
        response = leader.forward("GET", f"/api/v1/take/{cursor}", query=f"limit={limit}".encode(), body=b"",
                                  headers={"Authorization": f"Bearer {admin_token}"}, forwarded_by=self.node.name,
                                  timeout=self.node.config.peer_timeout * 5)
        return take_page_of(leader.name, response)


def _says_not_leader(body: bytes) -> bool:
    """Whether a 503 is ``not_leader``: the node did not act on the request, another leader may."""
    try:
        return json.loads(body).get("error") == "not_leader"
    except (ValueError, AttributeError):
        return False
