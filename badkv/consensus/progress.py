"""The leader's view of its followers: where each one is, who is in sync, and what a quorum holds.

Commit rule ("write succeeds upon propagation"): an entry commits once every
in-sync follower *and* a majority of the cluster (leader included) hold it
durably. A follower that has not taken an append for ``isr_ticks`` ticks leaves
the in-sync set; it rejoins once it has caught up with the commit index.
Learners (and members being removed) get the log but count for nothing here:
not for commit, quorum, check-quorum, ReadIndex nor the in-sync set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Progress:
    """One follower, as the leader sees it."""

    next_index: int
    match_index: int = 0
    applied_index: int = 0
    in_sync: bool = True
    ticks_since_ack: int = 0  # ticks since the follower last took an append
    ticks_since_sent: int = 0
    send_now: bool = False  # a heartbeat or read round is due even with nothing new to carry
    inflight: bool = False  # one append at a time: the next is built when this one is answered
    inflight_entries: int = 0  # how many entries that append carries (none: it waits for no disk)
    heartbeat_inflight: bool = False  # a Heartbeat sent while the append waits, not yet answered
    known_commit: int = 0  # the leader's commit index the follower has heard of
    acked_seq: int = 0  # the newest append (by sequence number) the follower answered
    reachable: bool = True
    ticks_since_contact: int = 0  # ticks since the follower last answered anything (check-quorum)
    failures: int = 0  # calls that failed in a row
    evictions: int = 0  # times it left the in-sync set
    voter: bool = True  # a learner, or a member being removed, counts for nothing
    leaving: bool = False  # removed from the membership: kept only until it has heard so


class Tracker:
    """Every follower's Progress and the quorum arithmetic over the voters among them."""

    def __init__(self, voters: list[str], next_index: int, in_sync: set[str] | None = None, *,
                 learners: list[str] = (), self_votes: bool = True):
        self.peers = {peer: Progress(next_index=next_index, in_sync=in_sync is None or peer in in_sync)
                      for peer in voters}
        for learner in learners:
            self.peers[learner] = Progress(next_index=next_index, in_sync=False, voter=False)
        self.self_votes = self_votes  # False on a leader that is being removed: it does not count itself

    @property
    def size(self) -> int:
        return self.self_votes + sum(1 for p in self.peers.values() if p.voter)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    def voting(self):
        return (p for p in self.peers.values() if p.voter)

    def reconfigure(self, voters: list[str], learners: list[str], self_votes: bool, next_index: int) -> None:
        """Follow a new membership: new members start unsynced at ``next_index``; removed ones are kept,
        as non-voters, until they heard of their removal (``drop_informed``)."""
        self.self_votes = self_votes
        for name in list(voters) + list(learners):
            if name not in self.peers:
                self.peers[name] = Progress(next_index=next_index, in_sync=False)
            progress = self.peers[name]
            progress.voter, progress.leaving = name in voters, False
        for name, progress in self.peers.items():
            if name not in voters and name not in learners:
                progress.voter, progress.leaving = False, True

    def drop_informed(self, config_index: int, commit_index: int, give_up_ticks: int) -> list[str]:
        """Forget removed members that hold their removal and know it committed, or that stayed silent for
        ``give_up_ticks`` after it committed (a dead node); return their names."""
        dropped = [name for name, p in self.peers.items() if p.leaving and commit_index >= config_index and (
            (p.match_index >= config_index and p.known_commit >= config_index)
            or p.ticks_since_contact > give_up_ticks)]
        for name in dropped:
            del self.peers[name]
        return dropped

    def evict_silent(self, isr_ticks: int) -> list[str]:
        """Drop voters that have not taken an append for longer than ``isr_ticks`` from the in-sync set;
        return their names."""
        evicted = []
        for peer, progress in self.peers.items():
            if progress.voter and progress.in_sync and progress.ticks_since_ack > isr_ticks:
                progress.in_sync = False
                progress.evictions += 1
                evicted.append(peer)
        return evicted

    def has_quorum(self, isr_ticks: int) -> bool:
        """Whether a majority of voters (the leader included) took an append within ``isr_ticks``."""
        live = self.self_votes + sum(1 for p in self.voting() if p.ticks_since_ack <= isr_ticks)
        return live >= self.quorum

    def commit_candidate(self, durable_index: int) -> int:
        """The highest index held by a majority of voters and by every in-sync voter, and on the leader's disk.

        The leader must hold every committed entry on its own disk: after a crash it restarts from
        that disk, and nothing else may overwrite what a majority applied."""
        voting = list(self.voting())
        if not voting:  # a cluster of one commits what it holds
            return durable_index
        matches = sorted([durable_index] * self.self_votes + [p.match_index for p in voting], reverse=True)
        candidate = min(matches[self.quorum - 1], durable_index)
        for progress in voting:
            if progress.in_sync:
                candidate = min(candidate, progress.match_index)
        return candidate

    def acknowledged_index(self, commit_index: int, leader_applied: int, acks: str) -> int:
        """Highest index a client may be told about: committed, and applied where ``acks`` requires."""
        index = min(commit_index, leader_applied)
        if acks == "all":
            for progress in self.voting():
                if progress.in_sync:
                    index = min(index, progress.applied_index)
        return index

    def confirmed_by_majority(self, seq: int) -> bool:
        """ReadIndex: a majority of voters answered an append sent as number ``seq`` or later."""
        return self.self_votes + sum(1 for p in self.voting() if p.acked_seq >= seq) >= self.quorum

    def confirmed_through(self) -> float:
        """ReadIndex: the highest call number a majority has confirmed, so that ``confirmed_by_majority(seq)``
        holds exactly for ``seq <= confirmed_through()`` (infinite when the leader alone is a majority)."""
        needed = self.quorum - self.self_votes  # follower answers a round needs
        if needed <= 0:
            return math.inf
        acked = sorted((p.acked_seq for p in self.voting()), reverse=True)
        return acked[needed - 1] if len(acked) >= needed else -math.inf

    def heard_within(self, ticks: int) -> int:
        """Check-quorum: voters (the leader included) that answered anything within the last ``ticks`` ticks."""
        return self.self_votes + sum(1 for p in self.voting() if p.ticks_since_contact < ticks)
