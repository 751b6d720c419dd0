"""The leader's view of its followers: where each one is, who is in sync, and what a quorum holds.

Commit rule ("write succeeds upon propagation"): an entry commits once every
in-sync follower *and* a majority of the cluster (leader included) hold it
durably. A follower that has not taken an append for ``isr_ticks`` ticks leaves
the in-sync set; it rejoins once it has caught up with the commit index.
"""

from __future__ import annotations

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
    heartbeat_inflight: bool = False  # a Heartbeat sent while the append waits, not yet answered
    known_commit: int = 0  # the leader's commit index the follower has heard of
    acked_seq: int = 0  # the newest append (by sequence number) the follower answered
    reachable: bool = True
    ticks_since_contact: int = 0  # ticks since the follower last answered anything (check-quorum)
    failures: int = 0  # calls that failed in a row
    evictions: int = 0  # times it left the in-sync set


class Tracker:
    """Every follower's Progress and the quorum arithmetic over them (a cluster of ``size``)."""

    def __init__(self, peers: list[str], size: int, next_index: int, in_sync: set[str] | None = None):
        self.size = size
        self.peers = {peer: Progress(next_index=next_index, in_sync=in_sync is None or peer in in_sync)
                      for peer in peers}

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    def evict_silent(self, isr_ticks: int) -> list[str]:
        """Drop followers that have not taken an append for longer than ``isr_ticks`` from the in-sync set;
        return their names."""
        evicted = []
        for peer, progress in self.peers.items():
            if progress.in_sync and progress.ticks_since_ack > isr_ticks:
                progress.in_sync = False
                progress.evictions += 1
                evicted.append(peer)
        return evicted

    def has_quorum(self, isr_ticks: int) -> bool:
        """Whether a majority (the leader included) took an append within ``isr_ticks``."""
        live = 1 + sum(1 for p in self.peers.values() if p.ticks_since_ack <= isr_ticks)
        return live >= self.quorum

    def commit_candidate(self, durable_index: int) -> int:
        """The highest index held by a majority and by every in-sync follower, and on the leader's disk.

        The leader must hold every committed entry on its own disk: after a crash it restarts from
        that disk, and nothing else may overwrite what a majority applied."""
        if not self.peers:  # a cluster of one commits what it holds
            return durable_index
        matches = sorted([durable_index] + [p.match_index for p in self.peers.values()], reverse=True)
        candidate = min(matches[self.quorum - 1], durable_index)
        for progress in self.peers.values():
            if progress.in_sync:
                candidate = min(candidate, progress.match_index)
        return candidate

    def acknowledged_index(self, commit_index: int, leader_applied: int, acks: str) -> int:
        """Highest index a client may be told about: committed, and applied where ``acks`` requires."""
        index = min(commit_index, leader_applied)
        if acks == "all":
            for progress in self.peers.values():
                if progress.in_sync:
                    index = min(index, progress.applied_index)
        return index

    def confirmed_by_majority(self, seq: int) -> bool:
        """ReadIndex: a majority answered an append sent as number ``seq`` or later."""
        return 1 + sum(1 for p in self.peers.values() if p.acked_seq >= seq) >= self.quorum

    def heard_within(self, ticks: int) -> int:
        """Check-quorum: members (the leader included) that answered anything within the last ``ticks`` ticks."""
        return 1 + sum(1 for p in self.peers.values() if p.ticks_since_contact < ticks)
