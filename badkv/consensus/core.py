"""The Raft state machine of one node: ``step`` messages in, ``tick`` time on, ``ready`` what to do.

Nothing here touches a disk, a socket, a clock or a thread. The caller (one
lock around every call) feeds in messages and ticks, then takes a ``Ready`` and
does what it says in order: persist the hard state, cut and append the log,
apply the committed entries, then send the messages. A follower's answer
promises that its entries are on disk and says how far it has applied (what
``-acks all`` waits for); a leader's appends need not wait for its own fsync
(Ongaro's dissertation §10.2.1), so it flushes its log while they travel.

Leadership is static for now (the first member leads). The leader keeps one
append in flight per follower and builds the next when it is answered or
reported unreachable, so batches grow with load.
"""

from __future__ import annotations

import enum
from typing import Callable

from badkv.consensus.log import Log, noop_entry
from badkv.consensus.messages import AppendRequest, AppendResponse, Unreachable
from badkv.consensus.progress import Progress, Tracker
from badkv.consensus.ready import HardState, Ready


class Role(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


class Core:
    """One node's consensus state; not thread-safe (the caller holds one lock around every call)."""

    def __init__(self, name: str, members: list[str], log: Log, *, term: int, leader: str,
                 heartbeat_ticks: int, isr_ticks: int, max_batch_entries: int, stamp: Callable[[], int],
                 voted_for: str | None = None):
        self.name = name
        self.members = list(members)
        self.log = log
        self.current_term = term
        self.voted_for = voted_for
        self.leader = leader
        self.role = Role.LEADER if leader == name else Role.FOLLOWER
        self.heartbeat_ticks = heartbeat_ticks
        self.isr_ticks = isr_ticks
        self.max_batch_entries = max_batch_entries
        self.stamp = stamp  # revisions for the entries the core itself makes (no-ops)
        self.commit_index = log.base_index
        self.applied_index = log.base_index  # handed out in a Ready's committed entries
        self.durable_index = log.last_index
        self.send_seq = 0
        self.term_start_index = 0  # the leader's no-op of this term: its state is current once applied
        self.tracker = Tracker([m for m in members if m != name], len(members), log.last_index + 1)
        self._unstable_from = log.last_index + 1  # entries from here on are not yet handed out to persist
        self._truncate_from: int | None = None
        self._hard_state_changed = False
        self._messages: list = []
        self._install: tuple[int, int] | None = None
        self._reset_state = False
        self._handlers = {AppendRequest: self._handle_append, AppendResponse: self._handle_append_response,
                          Unreachable: self._handle_unreachable}
        if self.is_leader:
            self.term_start_index = self.propose(noop_entry(stamp()))["index"]

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
        return self.tracker.has_quorum(self.isr_ticks)

    def acknowledged_index(self, leader_applied: int, acks: str) -> int:
        return self.tracker.acknowledged_index(self.commit_index, leader_applied, acks)

    def confirmed_by_majority(self, seq: int) -> bool:
        return self.tracker.confirmed_by_majority(seq)

    # ---- input -----------------------------------------------------------------------
    def step(self, message) -> None:
        """Take one message from another node (or the transport's report about one)."""
        self._handlers[type(message)](message)

    def tick(self) -> None:
        """One unit of time: heartbeats fall due and silent followers leave the in-sync set."""
        if not self.is_leader:
            return
        for progress in self.tracker.peers.values():
            progress.ticks_since_ack += 1
            progress.ticks_since_sent += 1
            if progress.ticks_since_sent >= self.heartbeat_ticks:
                progress.send_now = True
        self.tracker.evict_silent(self.isr_ticks)
        self._advance_commit()

    def propose(self, entry: dict) -> dict:
        """Append an entry (a client's write or a no-op) to the leader's log; returns it with index and term."""
        entry["index"] = self.log.last_index + 1
        entry["term"] = self.current_term
        self.log.append([entry])
        return entry

    def persisted(self, index: int) -> None:
        """This node's own log is durable through ``index`` (fsync'ed)."""
        self.durable_index = max(self.durable_index, min(index, self.log.last_index))
        self._advance_commit()

    def read_index(self) -> tuple[int, int]:
        """ReadIndex: the commit index to wait for, and the append number a majority must answer."""
        for progress in self.tracker.peers.values():
            progress.send_now = True
        return self.commit_index, self.send_seq + 1

    def forget_unpersisted(self, index: int, unsent: list) -> None:
        """Persisting entries from ``index`` failed: drop them, and the messages that carried them."""
        self.log.truncate_from(index)
        self._unstable_from = min(self._unstable_from, index)
        for message in unsent:
            if isinstance(message, AppendRequest) and message.to in self.tracker.peers:
                self.tracker.peers[message.to].inflight = False

    def compact(self, index: int) -> None:
        """Forget the entries up to ``index``: a snapshot holds them."""
        if index > self.log.base_index:
            self.log.compact(index, self.log.term_at(index))

    def restore(self, index: int, term: int) -> None:
        """The node installed the leader's state as of entry ``index`` (of ``term``); the log starts after it."""
        self.log.compact(index, term)
        self.commit_index = max(self.commit_index, index)
        self.applied_index = max(self.applied_index, index)
        self.durable_index = max(self.durable_index, index)
        self._unstable_from = max(self._unstable_from, index + 1)

    # ---- output ----------------------------------------------------------------------
    def has_ready(self) -> bool:
        if (self._messages or self._hard_state_changed or self._truncate_from is not None
                or self._unstable_from <= self.log.last_index or self.commit_index > self.applied_index
                or self._install is not None or self._reset_state):
            return True
        return self.is_leader and any(map(self._wants_to_send, self.tracker.peers.values()))

    def ready(self) -> Ready:
        """Hand out everything to do since the last call."""
        ready = Ready(truncate_from=self._truncate_from, install=self._install, reset_state=self._reset_state)
        self._truncate_from, self._install, self._reset_state = None, None, False
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
        return ready

    # ---- leader ----------------------------------------------------------------------
    def _wants_to_send(self, progress: Progress) -> bool:
        return not progress.inflight and (progress.send_now or progress.next_index <= self.log.last_index
                                          or progress.known_commit < self.commit_index)

    def _append_request(self, peer: str, progress: Progress) -> AppendRequest:
        """The next append for ``peer``: every pending entry up to the batch limit."""
        prev_index = max(progress.next_index - 1, self.log.base_index)
        entries = self.log.slice(prev_index + 1, self.max_batch_entries)
        self.send_seq += 1
        progress.ticks_since_sent = 0
        progress.send_now = False
        progress.inflight = True
        # Below the leader's log base the follower needs the leader's state (install), not entries.
        install = progress.next_index <= self.log.base_index
        return AppendRequest(self.current_term, self.name, prev_index, self.log.term_at(prev_index), entries,
                             self.commit_index, self.send_seq, install, to=peer)

    def _handle_append_response(self, response: AppendResponse) -> None:
        progress = self.tracker.peers.get(response.sender)
        if progress is None or not self.is_leader:
            return
        request = response.reply_to
        progress.inflight = False
        progress.reachable = True
        progress.failures = 0
        progress.acked_seq = max(progress.acked_seq, request.seq)
        if response.success:
            # Only an accepted append counts as contact for the in-sync set: a follower that answers
            # but cannot take entries (it needs older ones) must not hold back every commit.
            progress.ticks_since_ack = 0
            progress.match_index = max(progress.match_index, request.last_index)
            progress.next_index = progress.match_index + 1
            progress.known_commit = max(progress.known_commit, request.leader_commit)
        else:
            # Walk back to the follower's hint: its last index, or before its conflicting entry.
            hint = min(response.last_index, request.prev_index - 1)
            progress.next_index = max(1, hint + 1)
            progress.match_index = min(progress.match_index, hint)
        progress.applied_index = max(progress.applied_index, response.applied_index)
        if not progress.in_sync and progress.match_index >= self.commit_index:
            progress.in_sync = True
        self._advance_commit()
        if response.term > self.current_term:
            self._start_term_above(response.term)

    def _start_term_above(self, term: int) -> None:
        """A follower knows a newer term than this static leader (its disk was replaced): move past it."""
        self.current_term = term + 1
        self.voted_for = None
        self._hard_state_changed = True
        self.term_start_index = self.propose(noop_entry(self.stamp()))["index"]

    def _handle_unreachable(self, report: Unreachable) -> None:
        if (progress := self.tracker.peers.get(report.peer)) is None:
            return
        progress.inflight = False
        progress.failures += 1
        progress.reachable = False
        self.tracker.evict_silent(self.isr_ticks)
        self._advance_commit()

    def _advance_commit(self) -> None:
        if not self.is_leader:
            return
        candidate = self.tracker.commit_candidate(self.durable_index)
        if candidate > self.commit_index and self.log.term_at(candidate) == self.current_term:
            self.commit_index = candidate

    # ---- follower --------------------------------------------------------------------
    def _handle_append(self, request: AppendRequest) -> None:
        """Check and accept an AppendEntries; the answer goes out once the Ready is persisted."""
        if request.term < self.current_term:
            return self._reply(request, False)
        if request.term != self.current_term:
            self.current_term, self.voted_for = request.term, None
            self._hard_state_changed = True
        self.leader = request.leader
        prev_index, prev_term = request.prev_index, request.prev_term
        if request.install and self.log.term_at(prev_index) != prev_term:
            self._install = (prev_index, prev_term)
            return self._reply(request, False)
        if prev_index > self.log.last_index:
            return self._reply(request, False)
        local_prev_term = self.log.term_at(prev_index)
        if local_prev_term is not None and local_prev_term != prev_term:
            return self._reply(request, False, last_index=prev_index - 1)
        for entry in request.entries:
            index = entry["index"]
            if index <= self.log.base_index:
                continue
            if index <= self.log.last_index:
                if self.log.term_at(index) == entry["term"]:
                    continue
                if index <= self.applied_index:
                    return self._reset_to_leader(request)
                self._truncate(index)
            self.log.append([entry])
        last_new = prev_index + len(request.entries)
        self.commit_index = max(self.commit_index, min(request.leader_commit, last_new))
        self._reply(request, True)

    def _truncate(self, index: int) -> None:
        """Drop a conflicting suffix that is not yet applied (Raft §5.3)."""
        self.log.truncate_from(index)
        self._truncate_from = index if self._truncate_from is None else min(self._truncate_from, index)
        self._unstable_from = min(self._unstable_from, index)
        self.commit_index = min(self.commit_index, index - 1)

    def _reset_to_leader(self, request: AppendRequest) -> None:
        """A leader that lost its log (in-memory restart) rewrote applied history: start over from its log."""
        self._reset_state = True
        self.log = Log()
        self.commit_index = self.applied_index = 0
        self._unstable_from = 1
        self._truncate_from = None
        self._reply(request, False, last_index=0)

    def _reply(self, request: AppendRequest, success: bool, last_index: int | None = None) -> None:
        last = self.log.last_index if last_index is None else last_index
        self._messages.append(AppendResponse(self.current_term, success, last, sender=self.name,
                                             to=request.leader, reply_to=request))
