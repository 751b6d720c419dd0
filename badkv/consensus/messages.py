"""What nodes say to each other, and the wire form (a map for msgpack) of each message.

Fields that exist only inside one process (``to``, ``sender``, ``reply_to``) are
never on the wire: the transport fills them in on arrival, and the maps sent are
byte for byte the ones earlier releases sent for appends.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AppendRequest:
    """AppendEntries from the leader; with ``install`` the entries it needs are compacted away."""

    term: int
    leader: str
    prev_index: int
    prev_term: int | None
    entries: list[dict]
    leader_commit: int
    seq: int
    install: bool = False
    to: str = ""
    membership: dict | None = None  # with ``install``: the membership as of ``prev_index``

    WIRE_FIELDS = ("term", "leader", "prev_index", "prev_term", "entries", "leader_commit", "seq")

    @property
    def last_index(self) -> int:
        """The index of the last entry this request carries (its prev_index if none)."""
        return self.prev_index + len(self.entries)

    def to_wire(self) -> dict:
        wire = {"term": self.term, "leader": self.leader, "prev_index": self.prev_index,
                "prev_term": self.prev_term, "entries": self.entries, "leader_commit": self.leader_commit,
                "seq": self.seq}
        if self.install:
            wire["install"] = True
            if self.membership is not None:
                wire["membership"] = self.membership
        return wire

    @classmethod
    def from_wire(cls, wire: dict, to: str = "") -> "AppendRequest":
        return cls(wire["term"], wire["leader"], wire["prev_index"], wire["prev_term"], wire["entries"],
                   wire["leader_commit"], wire["seq"], bool(wire.get("install")), to, wire.get("membership"))


@dataclass(slots=True)
class AppendResponse:
    """A follower's answer to ``reply_to``; ``last_index`` is where the leader should resume."""

    term: int
    success: bool
    last_index: int
    applied_index: int = 0
    sender: str = ""
    to: str = ""
    reply_to: AppendRequest | None = field(default=None, repr=False)

    def to_wire(self) -> dict:
        return {"term": self.term, "success": self.success, "last_index": self.last_index,
                "applied_index": self.applied_index}

    @classmethod
    def from_wire(cls, wire: dict, *, sender: str, reply_to: AppendRequest) -> "AppendResponse":
        return cls(wire.get("term", 0), bool(wire["success"]), wire.get("last_index", 0),
                   wire.get("applied_index", 0), sender, reply_to.leader, reply_to)


@dataclass(slots=True)
class VoteRequest:
    """RequestVote, or with ``pre_vote`` the question "would you vote for me in ``term``?" (Raft §9.6),
    which changes nobody's term. ``transfer`` marks a campaign the leader asked for (TimeoutNow), which
    followers grant even while they still hear from that leader."""

    term: int
    candidate: str
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False
    to: str = ""

    def to_wire(self) -> dict:
        return {"term": self.term, "candidate": self.candidate, "last_index": self.last_index,
                "last_term": self.last_term, "pre_vote": self.pre_vote, "transfer": self.transfer}

    @classmethod
    def from_wire(cls, wire: dict, to: str = "") -> "VoteRequest":
        return cls(wire["term"], wire["candidate"], wire["last_index"], wire["last_term"],
                   bool(wire.get("pre_vote")), bool(wire.get("transfer")), to)


@dataclass(slots=True)
class VoteResponse:
    """The answer to ``reply_to``: granted or not, and the voter's term."""

    term: int
    granted: bool
    pre_vote: bool = False
    sender: str = ""
    to: str = ""
    reply_to: VoteRequest | None = field(default=None, repr=False)

    def to_wire(self) -> dict:
        return {"term": self.term, "granted": self.granted, "pre_vote": self.pre_vote}

    @classmethod
    def from_wire(cls, wire: dict, *, sender: str, reply_to: VoteRequest) -> "VoteResponse":
        return cls(wire.get("term", 0), bool(wire["granted"]), bool(wire.get("pre_vote")), sender,
                   reply_to.candidate, reply_to)


@dataclass(slots=True)
class TimeoutNow:
    """The leader hands over: campaign at once (leadership transfer, dissertation §3.10)."""

    term: int
    leader: str
    to: str = ""

    def to_wire(self) -> dict:
        return {"term": self.term, "leader": self.leader}

    @classmethod
    def from_wire(cls, wire: dict, to: str = "") -> "TimeoutNow":
        return cls(wire["term"], wire["leader"], to)


@dataclass(slots=True)
class Heartbeat:
    """The leader is still there, sent while an append to this follower waits for its answer (a slow
    disk): the follower answers without touching its disk, so neither side starts an election over a
    long fsync. ``commit`` is at most what the follower is known to hold (its match index)."""

    term: int
    leader: str
    commit: int
    seq: int
    to: str = ""

    def to_wire(self) -> dict:
        return {"term": self.term, "leader": self.leader, "commit": self.commit, "seq": self.seq}

    @classmethod
    def from_wire(cls, wire: dict, to: str = "") -> "Heartbeat":
        return cls(wire["term"], wire["leader"], wire["commit"], wire["seq"], to)


@dataclass(slots=True)
class HeartbeatResponse:
    """The answer to ``reply_to``: the follower's term."""

    term: int
    sender: str = ""
    to: str = ""
    reply_to: Heartbeat | None = field(default=None, repr=False)

    def to_wire(self) -> dict:
        return {"term": self.term}

    @classmethod
    def from_wire(cls, wire: dict, *, sender: str, reply_to: Heartbeat) -> "HeartbeatResponse":
        return cls(wire.get("term", 0), sender, reply_to.leader, reply_to)


@dataclass(slots=True)
class Unreachable:
    """The transport could not complete ``message`` to ``peer`` (refused, reset, timed out)."""

    peer: str
    message: object = None


REQUESTS = (AppendRequest, VoteRequest, TimeoutNow, Heartbeat)
ANSWERS = (AppendResponse, VoteResponse, HeartbeatResponse)
