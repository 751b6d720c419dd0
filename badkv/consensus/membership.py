"""Cluster membership as the log holds it, and the rule that it changes one server at a time.

A ``Membership`` names the voters and the learners (name -> peer address) and the
join tokens not yet used (their SHA-256 hashes and expiry times; the tokens
themselves are never stored). A ``config`` log entry carries a whole membership;
a node uses the newest one in its log as soon as it is appended, committed or
not (Raft dissertation §4.1), and the one before it again if that entry is cut.
Every change differs from the current membership by one server (a learner
added, a learner promoted to voter, one member removed) or only in its tokens,
so any majority of the old voters overlaps any majority of the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_VOTERS = 7
CONFIG_OP = "config"


class MembershipError(ValueError):
    """A membership change the core refuses. ``kind``: ``not_leader``, ``pending`` (one is not yet
    committed), ``not_ready`` (this leader has not committed an entry of its term), ``exists`` (the name
    is a member), ``unknown`` (it is not) or ``invalid``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Membership:
    """Who is in the cluster; the first voter is the one a fresh cluster elects first."""

    voters: dict[str, str]
    learners: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # learner -> (sha256 hex, expiry)

    @classmethod
    def of(cls, members) -> "Membership":
        """A membership from a list of voter names or a mapping name -> address (or a Membership)."""
        if isinstance(members, Membership):
            return members
        if isinstance(members, dict):
            return cls(dict(members))
        return cls({name: "" for name in members})

    @property
    def nodes(self) -> dict[str, str]:
        """Every member, voters first: name -> address."""
        return {**self.voters, **self.learners}

    def role_of(self, name: str) -> str | None:
        if name in self.voters:
            return "voter"
        return "learner" if name in self.learners else None

    def to_wire(self) -> dict:
        return {"voters": dict(self.voters), "learners": dict(self.learners),
                "tokens": {name: [digest, expires] for name, (digest, expires) in self.tokens.items()}}

    @classmethod
    def from_wire(cls, wire: dict) -> "Membership":
        tokens = {name: (str(value[0]), float(value[1])) for name, value in (wire.get("tokens") or {}).items()}
        return cls(dict(wire["voters"]), dict(wire.get("learners") or {}), tokens)

    # ---- the changes ---------------------------------------------------------------
    def with_learner(self, name: str, address: str, token_hash: str | None = None,
                     expires: float = 0.0) -> "Membership":
        """``name`` added as a learner; with ``token_hash``, it is promoted only once it used that token."""
        if name in self.nodes:
            raise MembershipError("exists", f"{name} is a member already ({self.role_of(name)})")
        tokens = dict(self.tokens) if token_hash is None else {**self.tokens, name: (token_hash, expires)}
        return Membership(dict(self.voters), {**self.learners, name: address}, tokens)

    def promoted(self, name: str) -> "Membership":
        if name not in self.learners:
            raise MembershipError("invalid", f"{name} is not a learner")
        if len(self.voters) >= MAX_VOTERS:
            raise MembershipError("invalid", f"a cluster has at most {MAX_VOTERS} voters")
        learners = {other: address for other, address in self.learners.items() if other != name}
        return Membership({**self.voters, name: self.learners[name]}, learners, dict(self.tokens))

    def without(self, name: str) -> "Membership":
        if name not in self.nodes:
            raise MembershipError("unknown", f"{name} is not a member")
        if list(self.voters) == [name]:
            raise MembershipError("invalid", f"{name} is the last voter; a cluster needs at least one")
        return Membership({n: a for n, a in self.voters.items() if n != name},
                          {n: a for n, a in self.learners.items() if n != name},
                          {n: t for n, t in self.tokens.items() if n != name})

    def token_used(self, name: str) -> "Membership":
        tokens = {other: token for other, token in self.tokens.items() if other != name}
        return Membership(dict(self.voters), dict(self.learners), tokens)


def check_single_change(old: Membership, new: Membership) -> None:
    """Raise MembershipError unless ``new`` changes at most one server of ``old``."""
    if not new.voters:
        raise MembershipError("invalid", "a cluster needs at least one voter")
    if len(new.voters) > MAX_VOTERS:
        raise MembershipError("invalid", f"a cluster has at most {MAX_VOTERS} voters")
    changed = {name for name in old.nodes.keys() | new.nodes.keys() if old.role_of(name) != new.role_of(name)}
    if len(changed) > 1:
        raise MembershipError("invalid", f"one server at a time: this change touches {', '.join(sorted(changed))}")
    for name in changed:
        if old.role_of(name) is None and new.role_of(name) == "voter":
            raise MembershipError("invalid", f"{name} must join as a learner before it can vote")
    moved = {name for name in old.nodes.keys() & new.nodes.keys() if old.nodes[name] != new.nodes[name]}
    if moved:
        raise MembershipError("invalid", f"a member's address cannot change: {', '.join(sorted(moved))}")


def config_entry(membership: Membership, revision: int) -> dict:
    """The log entry that carries ``membership`` (the first keys as every entry has them)."""
    return {"op": CONFIG_OP, "tenant": "", "name": "", "value": b"", "timestamp": 0, "revision": revision,
            "members": membership.to_wire()}


def describe_change(old: Membership, new: Membership) -> str:
    """One line for the log: what a change does."""
    for name in new.nodes.keys() - old.nodes.keys():
        return f"{name} ({new.nodes[name]}) joins as a learner"
    for name in old.nodes.keys() - new.nodes.keys():
        return f"{name} is removed"
    for name in new.voters.keys() - old.voters.keys():
        return f"{name} is promoted to voter"
    for name in old.tokens.keys() - new.tokens.keys():
        return f"{name} used its join token"
    return "membership unchanged"
