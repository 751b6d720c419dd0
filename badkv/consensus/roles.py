"""The roles a node plays in Raft."""

from __future__ import annotations

import enum


class Role(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"  # asking for pre-votes, then for votes
    LEADER = "leader"
