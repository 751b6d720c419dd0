"""The Raft state machine of one node: ``step`` messages in, ``tick`` time on, ``ready`` what to do.

Nothing here touches a disk, a socket, a clock or a thread; randomness (the
election timeouts) comes from the ``rng`` the caller passes in. The caller
holds one lock around every call, feeds in messages and ticks, then takes a
``Ready`` and does what it says in order: persist the hard state, cut and
append the log, apply the committed entries, then send the messages. A
follower's answer promises its entries and vote are on disk and says how far
it has applied (what ``-acks all`` waits for); a leader's appends need not
wait for its own fsync (Ongaro's dissertation §10.2.1).

The rules are split by job: ``election`` (timeouts, pre-vote, votes,
check-quorum, leadership transfer), ``replication`` (appends on both sides) and
``reconfiguration`` (membership changes, promotion, removal); this module holds
the state, the role changes and ``Ready``.
"""

from __future__ import annotations

from typing import Callable

from badkv.consensus.election import ElectionRules
from badkv.consensus.log import Log, noop_entry
from badkv.consensus.membership import Membership
from badkv.consensus.messages import (AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse, TimeoutNow,
                                      Unreachable, VoteRequest, VoteResponse)
from badkv.consensus.progress import Progress, Tracker
from badkv.consensus.ready import HardState, Ready
from badkv.consensus.reconfiguration import ReconfigurationRules
from badkv.consensus.replication import ReplicationRules
from badkv.consensus.roles import Role


class Core(ElectionRules, ReplicationRules, ReconfigurationRules):
    """One node's consensus state; not thread-safe (the caller holds one lock around every call).

    ``members`` is the membership as of the log's base (a snapshot's, or the first one: a list of
    voter names or a mapping name -> address); config entries in ``log`` take effect over it."""

    def __init__(self, name: str, members, log: Log, *, term: int, voted_for: str | None = None,
                 heartbeat_ticks: int, election_ticks: int, isr_ticks: int, max_batch_entries: int,
                 stamp: Callable[[], int], rng):
        self.name = name
        self.log = log
        self.current_term = term
        self.voted_for = voted_for
        self.leader: str | None = None
        self.role = Role.FOLLOWER
        self.heartbeat_ticks = heartbeat_ticks
        self.election_ticks = election_ticks
        self.isr_ticks = isr_ticks
        self.max_batch_entries = max_batch_entries
        self.stamp = stamp  # revisions for the entries the core itself makes (no-ops)
        self.rng = rng
        self._init_membership(Membership.of(members))
        self.commit_index = log.base_index
        self.applied_index = log.base_index  # handed out in a Ready's committed entries
        self.durable_index = log.last_index
        self.send_seq = 0
        self.term_start_index = 0  # the leader's no-op of this term: its state is current once applied
        self.tracker = self._new_tracker(None)
        self.counters = {"elections_started": 0, "elections_won": 0, "pre_votes_started": 0,
                         "pre_votes_refused": 0, "leader_changes": 0, "conflicts_with_applied": 0}
        self._unstable_from = log.last_index + 1  # entries from here on are not yet handed out to persist
        self._truncate_from: int | None = None
        self._hard_state_changed = False
        self._messages: list = []
        self._notes: list[tuple[str, str]] = []
        self._install: tuple[int, int] | None = None
        self._handlers = {AppendRequest: self._handle_append, AppendResponse: self._handle_append_response,
                          VoteRequest: self._handle_vote, VoteResponse: self._handle_vote_response,
                          TimeoutNow: self._handle_timeout_now, Unreachable: self._handle_unreachable,
                          Heartbeat: self._handle_heartbeat, HeartbeatResponse: self._handle_heartbeat_response}
        self._init_election(first_in_line=next(iter(self.membership.voters), None) == name)

    @property
    def members(self) -> list[str]:
        """The voters of the current membership."""
        return list(self.membership.voters)

    @property
    def peers(self) -> list[str]:
        """Every other member, voters and learners: whom a leader replicates to."""
        return [member for member in self.membership.nodes if member != self.name]

    @property
    def voter_peers(self) -> list[str]:
        return [member for member in self.membership.voters if member != self.name]

    @property
    def is_voter(self) -> bool:
        return self.name in self.membership.voters

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def progress(self) -> dict[str, Progress]:
        return self.tracker.peers

    @property
    def quorum(self) -> int:
        return self.tracker.quorum

    def has_quorum(self) -> bool:
        """Whether a majority (this node included) took an append within the in-sync timeout."""
        return self.is_leader and self.tracker.has_quorum(self.isr_ticks)

    def acknowledged_index(self, leader_applied: int, acks: str) -> int:
        return self.tracker.acknowledged_index(self.commit_index, leader_applied, acks)

    def confirmed_by_majority(self, seq: int) -> bool:
        return self.tracker.confirmed_by_majority(seq)

    def confirmed_through(self) -> float:
        """The highest ReadIndex call number a majority confirmed (``Tracker.confirmed_through``)."""
        return self.tracker.confirmed_through()

    def _note(self, level: str, text: str) -> None:
        self._notes.append((level, text))

    # ---- input -----------------------------------------------------------------------
    def step(self, message) -> None:
        """Take one message from another node (or the transport's report about one)."""
        self._handlers[type(message)](message)

    def tick(self) -> None:
        """One unit of time: heartbeats and election timeouts fall due, silent followers leave the in-sync set."""
        if self.is_leader:
            self._tick_leader()
        else:
            self._tick_election()

    def propose(self, entry: dict) -> dict:
        """Append an entry (a client's write or a no-op) to the leader's log; returns it with index and term."""
        entry["index"] = self.log.last_index + 1
        entry["term"] = self.current_term
        self.log.append([entry])
        self._appended(entry)
        return entry

    def persisted(self, index: int) -> None:
        """This node's own log is durable through ``index`` (fsync'ed)."""
        self.durable_index = max(self.durable_index, min(index, self.log.last_index))
        self._advance_commit()

    def read_index(self) -> tuple[int, int]:
        """ReadIndex: the commit index to wait for, and the call number a majority must answer.

        A follower with entries in flight (waiting for its disk, or for a big batch) gets a heartbeat
        now: its answer confirms leadership as well, without waiting for that append. An append in
        flight without entries (the previous read round, most often) waits for no disk: the read's round
        is the next append, sent as soon as that one is answered, and no heartbeat doubles it."""
        seq = self.send_seq + 1
        for peer, progress in self.tracker.peers.items():
            progress.send_now = True
            if progress.inflight and progress.inflight_entries and not progress.heartbeat_inflight:
                self._heartbeat(peer, progress)
        return self.commit_index, seq

    def forget_unpersisted(self, index: int, unsent: list) -> None:
        """Persisting entries from ``index`` failed: drop them, and the messages that carried them."""
        self.log.truncate_from(index)
        self._unstable_from = min(self._unstable_from, index)
        for message in unsent:
            if isinstance(message, AppendRequest) and message.to in self.tracker.peers:
                self.tracker.peers[message.to].inflight = False
        self._refresh_membership()

    def compact(self, index: int) -> None:
        """Forget the entries up to ``index``: a snapshot holds them (and ``membership_at(index)``)."""
        if index > self.log.base_index:
            self.base_membership = self.membership_at(index)
            self.log.compact(index, self.log.term_at(index))

    def restore(self, index: int, term: int, membership: Membership | None = None) -> None:
        """The node installed the leader's state as of entry ``index`` (of ``term``), whose membership
        was ``membership``; the log starts after it."""
        if membership is not None:
            self.base_membership = membership
        self.log.compact(index, term)
        self._refresh_membership()
        self.commit_index = max(self.commit_index, index)
        self.applied_index = max(self.applied_index, index)
        self.durable_index = max(self.durable_index, index)
        self._unstable_from = max(self._unstable_from, index + 1)

    # ---- roles -----------------------------------------------------------------------
    def _become_follower(self, term: int, leader: str | None, reason: str = "") -> None:
        if self.is_leader:
            self._note("warning", f"stepping down in term {self.current_term}: {reason}")
            self._end_transfer(None)
        if term > self.current_term:
            self.current_term, self.voted_for = term, None
            self._hard_state_changed = True
        self.role, self.campaign = Role.FOLLOWER, None
        self._set_leader(leader)
        self._reset_election_timer()

    def _new_tracker(self, in_sync: set[str] | None) -> Tracker:
        learners = [name for name in self.membership.learners if name != self.name]
        return Tracker(self.voter_peers, self.log.last_index + 1, in_sync, learners=learners,
                       self_votes=self.is_voter)

    def _become_leader(self) -> None:
        granted = {peer for peer, vote in self.votes.items() if vote and peer != self.name}
        self.role, self.campaign = Role.LEADER, None
        self._set_leader(self.name)
        self.counters["elections_won"] += 1
        # Followers that just voted are known to be up; the others join the in-sync set once caught up,
        # so a dead former leader does not hold back the first commits of this term.
        self.tracker = self._new_tracker(granted)
        self.election_elapsed = 0
        self._commit_history.clear()
        self.term_start_index = self.propose(noop_entry(self.stamp()))["index"]
        self._note("info", f"won the election for term {self.current_term} with {len(granted) + 1} votes")

    def _set_leader(self, leader: str | None) -> None:
        if leader is not None and leader != self.leader:
            self.counters["leader_changes"] += 1
        self.leader = leader

    # ---- output ----------------------------------------------------------------------
    def has_ready(self) -> bool:
        if (self._messages or self._hard_state_changed or self._truncate_from is not None or self._notes
                or self._unstable_from <= self.log.last_index or self.commit_index > self.applied_index
                or self._install is not None):
            return True
        return self.is_leader and any(map(self._wants_to_send, self.tracker.peers.values()))

    def ready(self) -> Ready:
        """Hand out everything to do since the last call."""
        ready = Ready(truncate_from=self._truncate_from, install=self._install)
        self._truncate_from, self._install = None, None
        if self._hard_state_changed:
            ready.hard_state = HardState(self.current_term, self.voted_for)
            self._hard_state_changed = False
        last = self.log.last_index
        start = max(self._unstable_from, self.log.base_index + 1)
        if start <= last:
            ready.entries = self.log.slice(start, last - start + 1)
        self._unstable_from = last + 1
        if self.is_leader:
            for peer, progress in self.tracker.peers.items():
                if self._wants_to_send(progress):
                    self._messages.append(self._append_request(peer, progress))
        if self.commit_index > self.applied_index:
            first = max(self.applied_index, self.log.base_index) + 1
            ready.committed = self.log.slice(first, self.commit_index - first + 1)
            self.applied_index = self.commit_index
        ready.messages, self._messages = self._messages, []
        for message in ready.messages:
            if type(message) is AppendResponse:  # (the caller applies before it sends: see Ready)
                message.applied_index = self.applied_index
        self._note_if_removed()
        ready.notes, self._notes = self._notes, []
        return ready
