"""Runtime membership on the node: adding learners with join tokens, removing members, answering joins,
and keeping the node's peer links and boundary in step with the core's membership.

A join token is 256 random bits shown once to whoever added the learner; the
config entry keeps only its SHA-256 hash and its expiry (ten minutes). Using it
is itself a config entry (the token leaves the membership), so it works once on
every node, and the leader promotes only learners whose token was used.
"""

from __future__ import annotations

import hmac
import logging
import time

from badkv.cluster.replicator import Replicator
from badkv.cluster.transport import PeerClient
from badkv.config import NAME_PATTERN
from badkv.config_values import parse_address
from badkv.consensus.membership import MembershipError
from badkv.errors import (AlreadyMember, BadkvError, BadRequest, ConfigError, JoinRefused, JoinTokenInvalid, MembershipPending,
                          NotFound, NotLeader, Removed, Unavailable, WrongCluster)
from badkv.security.tokens import new_token, token_hash

logger = logging.getLogger(__name__)

JOIN_TOKEN_SECONDS = 600.0


def refusal(error: MembershipError):
    """The BadkvError to answer a refused change with."""
    kinds = {"pending": MembershipPending, "exists": AlreadyMember, "unknown": NotFound, "invalid": BadRequest}
    if error.kind == "not_leader":
        return NotLeader(str(error))
    if error.kind == "not_ready":
        return Unavailable(str(error), retry_after=1)
    return kinds[error.kind](str(error))


class Members:
    """Membership changes for ``node`` and the links that follow them."""

    def __init__(self, node, clock=time.time):
        self.node = node
        self.clock = clock  # wall time: join tokens expire by it
        self._seen: tuple | None = None

    # ---- following the core (node lock held) ------------------------------------------
    def follow(self) -> None:
        """Open a link to every member the core talks to, close the others', and admit exactly the current
        members (and removed ones the leader still tells of their removal) at the boundary."""
        node, core = self.node, self.node.core
        # (Called after every Ready: a cheap key first. The leader's view changes only with the membership,
        # when it forgets a removed member, or when this node starts or stops leading.)
        seen = (core.membership_changes, core.is_leader, len(core.tracker.peers) if core.is_leader else 0)
        if self._seen == seen:
            return
        self._seen = seen
        contacts = frozenset(core.peers) | (frozenset(core.tracker.peers) if core.is_leader else frozenset())
        addresses = core.membership.nodes
        for name in sorted(contacts - node.peers.keys()):
            self.open_link(name, addresses[name])
        for name in sorted(node.peers.keys() - contacts):
            self.close_link(name)
        node.boundary.set_members(frozenset(addresses) | contacts)

    def open_link(self, name: str, address: str) -> None:
        """(Node lock held.) A link to a new member: its client and replicator, whose threads start with the
        node (or now, if it runs: the membership changed)."""
        node, config = self.node, self.node.config
        client = PeerClient(name, address, timeout=config.peer_timeout, pool_size=config.threads + 2, tls=node.tls,
                            local_name=config.name, boundary=node.boundary)
        node.peers[name] = client
        node.replicators[name] = replicator = Replicator(node, name, client)
        if node.started:
            node.threads.start_replicator(replicator)

    def close_link(self, name: str) -> None:
        """(Node lock held.) ``name`` left the membership: its replicator's threads end, its connections close."""
        self.node.replicators.pop(name).retire()
        self.node.peers.pop(name)

    def removed_reason(self) -> str | None:
        """Why this node serves nothing more, once it knows its removal from the cluster committed."""
        node = self.node
        if not node.core.removed:
            return None
        return (f"this node was removed from cluster {node.config.cluster_id} (membership from log index "
                f"{node.core.config_index}); it serves nothing more: stop it, or wipe its data dir and add it again")

    def check_not_removed(self) -> None:
        reason = self.removed_reason()
        if reason is not None:
            raise Removed(reason, retry_after=60)

    # ---- changes (node lock not held) ---------------------------------------------------
    def add(self, name: str, address: str) -> str:
        """Add ``name`` at ``address`` as a learner; returns its one-time join token once committed."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise BadRequest("name must be 1-63 characters of letters, digits, '.', '_' or '-'")
        try:
            parse_address(address if isinstance(address, str) else "", "address")
        except ConfigError as error:
            raise BadRequest(str(error)) from None
        if address in self.node.core.membership.nodes.values():
            raise AlreadyMember(f"another member has the address {address}")
        token = new_token()
        expires = self.clock() + JOIN_TOKEN_SECONDS
        self._change(lambda membership: membership.with_learner(name, address, token_hash(token), expires))
        return token

    def remove(self, name: str) -> None:
        """Remove ``name``; returns once the removal is committed."""
        self._change(lambda membership: membership.without(name))

    def join(self, name: str, token: str, cluster_id: str | None, *, send_secret: bool = True) -> dict:
        """A new node presents its token: mark it used (committed), then tell the node what it joins (the
        cluster secret too, unless the node says it was given it)."""
        node = self.node
        try:
            if cluster_id and cluster_id != node.config.cluster_id:
                raise WrongCluster(f"the joining node's data dir belongs to cluster {cluster_id}; this is cluster "
                                   f"{node.config.cluster_id}: start it on an empty data dir")
            self._change(lambda membership: self._token_used(membership, name, token))
        except BadkvError as error:
            logger.warning("%s: refused the join of %s: %s: %s", node.name, name, error.code, error.message)
            raise
        with node.lock:
            membership = node.core.membership
        logger.info("%s: %s joined with its token; it catches up as a learner", node.name, name)
        secret = node.cluster_secret
        return {"name": name, "cluster_id": node.config.cluster_id, "leader": node.name,
                "voters": membership.voters, "learners": membership.learners,
                "cluster_secret": secret.hex() if secret and send_secret else None}

    def _token_used(self, membership, name: str, token: str):
        if membership.role_of(name) == "voter" or (name in membership.learners and name not in membership.tokens):
            raise JoinRefused(f"{name} has joined already: a node with this name is a member; start the new node "
                              "under another name, or remove the member first")
        if name not in membership.learners:
            raise JoinTokenInvalid(f"{name} is not a learner of this cluster: add it first (POST /admin/members)")
        digest, expires = membership.tokens[name]
        if not isinstance(token, str) or not hmac.compare_digest(token_hash(token), digest):
            raise JoinTokenInvalid(f"this is not {name}'s join token")
        if self.clock() > expires:
            raise JoinRefused(f"{name}'s join token expired; remove {name} and add it again for a new token")
        return membership.token_used(name)

    def _change(self, make) -> None:
        """Propose ``make(current membership)`` and wait until it is acknowledged (raise as a write would)."""
        node = self.node
        with node.lock:
            node.wait_until_serving(node.config.leader_wait)
            try:
                entry = node.core.propose_membership(make(node.core.membership))
            except MembershipError as error:
                raise refusal(error) from None
            pending = node.writer.carry(entry)
        node.writer.await_entry(pending, "membership change")
