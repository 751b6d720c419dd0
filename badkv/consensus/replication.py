"""Log replication: the leader's appends and heartbeats, and a follower's acceptance of them (Raft §5.3).

The leader keeps one append in flight per follower and builds the next when it
is answered or reported unreachable, so batches grow with load. Commit rule
("write succeeds upon propagation"): an entry of the current term commits once
every in-sync follower and a majority hold it durably (``progress.Tracker``).
A mixin of ``core.Core``: it works on the core's state.
"""

from __future__ import annotations

from badkv.consensus.messages import AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse, Unreachable
from badkv.consensus.progress import Progress
from badkv.consensus.roles import Role


class ReplicationRules:
    """How a Core's log travels from its leader to its followers."""

    # ---- leader ----------------------------------------------------------------------
    def _tick_leader(self) -> None:
        for peer, progress in self.tracker.peers.items():
            progress.ticks_since_ack += 1
            progress.ticks_since_sent += 1
            progress.ticks_since_contact += 1
            if progress.ticks_since_sent >= self.heartbeat_ticks:
                progress.send_now = True
                if progress.inflight and not progress.heartbeat_inflight:
                    self._heartbeat(peer, progress)
        self._note_evicted(self.tracker.evict_silent(self.isr_ticks))
        self._advance_commit()
        if self.is_leader:
            self._tick_membership()
            self._check_quorum_tick()

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
        progress.inflight_entries = len(entries)
        # Below the leader's log base the follower needs the leader's state (install), not entries.
        install = progress.next_index <= self.log.base_index
        membership = self.base_membership.to_wire() if install else None  # (what the install must keep)
        return AppendRequest(self.current_term, self.name, prev_index, self.log.term_at(prev_index), entries,
                             self.commit_index, self.send_seq, install, to=peer, membership=membership)

    def _heartbeat(self, peer: str, progress: Progress) -> None:
        """The append in flight is slow to be answered (the follower's disk, most often): say that this
        leader is still there through a call that does not wait for the follower's disk."""
        self.send_seq += 1
        progress.ticks_since_sent = 0
        progress.heartbeat_inflight = True
        self._messages.append(Heartbeat(self.current_term, self.name, min(self.commit_index, progress.match_index),
                                        self.send_seq, to=peer))

    def _handle_heartbeat_response(self, response: HeartbeatResponse) -> None:
        if response.term > self.current_term:
            return self._become_follower(response.term, None, f"{response.sender} is in term {response.term}")
        progress = self.tracker.peers.get(response.sender)
        if progress is None or not self.is_leader or response.reply_to.term != self.current_term:
            return
        progress.heartbeat_inflight = False
        progress.reachable, progress.ticks_since_contact = True, 0
        progress.acked_seq = max(progress.acked_seq, response.reply_to.seq)  # (it confirms leadership: ReadIndex)

    def _handle_append_response(self, response: AppendResponse) -> None:
        if response.term > self.current_term:
            return self._become_follower(response.term, None, f"{response.sender} is in term {response.term}")
        progress = self.tracker.peers.get(response.sender)
        request = response.reply_to
        if progress is None or not self.is_leader or request.term != self.current_term:
            return  # an answer to another term's append
        progress.inflight = False
        progress.reachable, progress.ticks_since_contact = True, 0
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
        if progress.voter and not progress.in_sync and progress.match_index >= self.commit_index:
            progress.in_sync = True
            self._note("info", f"{response.sender} is back in the in-sync set at index {progress.match_index}")
        self._advance_commit()
        if self.transfer_target is not None:
            self._continue_transfer()

    def _handle_unreachable(self, report: Unreachable) -> None:
        progress = self.tracker.peers.get(report.peer)
        failed = report.message
        if progress is not None and isinstance(failed, Heartbeat):
            progress.heartbeat_inflight = False
            return
        if progress is None or not self.is_leader or not isinstance(failed, (AppendRequest, type(None))):
            return
        if failed is not None and failed.term != self.current_term:
            return
        progress.inflight = False
        progress.failures += 1
        progress.reachable = False
        self._note_evicted(self.tracker.evict_silent(self.isr_ticks))
        self._advance_commit()

    def _note_evicted(self, peers: list[str]) -> None:
        for peer in peers:
            self._note("warning", f"{peer} leaves the in-sync set: it answered no append within the in-sync "
                                  "timeout (-isr-timeout); writes no longer wait for it")

    def _advance_commit(self) -> None:
        if not self.is_leader:
            return
        candidate = self.tracker.commit_candidate(self.durable_index)
        # Only an entry of the leader's own term commits by counting (Raft §5.4.2).
        if candidate > self.commit_index and self.log.term_at(candidate) == self.current_term:
            self.commit_index = candidate
            self._leave_if_removed()

    # ---- follower --------------------------------------------------------------------
    def _handle_append(self, request: AppendRequest) -> None:
        """Check and accept an AppendEntries; the answer goes out once the Ready is persisted."""
        if request.term < self.current_term:
            return self._reply(request, False)
        if self.role is not Role.FOLLOWER or request.term > self.current_term or self.leader != request.leader:
            self._become_follower(request.term, request.leader, f"{request.leader} leads term {request.term}")
        self.election_elapsed = 0
        prev_index, prev_term = request.prev_index, request.prev_term
        if request.install and self.log.term_at(prev_index) != prev_term:
            self._install = (prev_index, prev_term, request.membership)
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
                    return self._refuse_rewrite(request, index)
                self._truncate(index)
            self.log.append([entry])
            self._appended(entry)
        last_new = prev_index + len(request.entries)
        self.commit_index = max(self.commit_index, min(request.leader_commit, last_new))
        self._reply(request, True)

    def _handle_heartbeat(self, request: Heartbeat) -> None:
        """Hear that the leader is still there; commit what it says is committed and this node holds."""
        if request.term >= self.current_term:
            if self.role is not Role.FOLLOWER or request.term > self.current_term or self.leader != request.leader:
                self._become_follower(request.term, request.leader, f"{request.leader} leads term {request.term}")
            self.election_elapsed = 0
            self.commit_index = max(self.commit_index, min(request.commit, self.log.last_index))
        self._messages.append(HeartbeatResponse(self.current_term, sender=self.name, to=request.leader,
                                                reply_to=request))

    def _truncate(self, index: int) -> None:
        """Drop a conflicting suffix that is not yet applied (Raft §5.3)."""
        self.log.truncate_from(index)
        self._truncate_from = index if self._truncate_from is None else min(self._truncate_from, index)
        self._unstable_from = min(self._unstable_from, index)
        self.commit_index = min(self.commit_index, index - 1)
        # What replaces the suffix is not on disk yet: were this node elected before it is, it must not
        # count itself for those entries.
        self.durable_index = min(self.durable_index, index - 1)
        self._refresh_membership()

    def _refuse_rewrite(self, request: AppendRequest, index: int) -> None:
        """A leader whose log replaces an entry this node applied: only possible once a majority lost its
        disks at once (in-memory nodes). Applied state cannot be taken back; refuse, and say so once."""
        self.counters["conflicts_with_applied"] += 1
        if self.counters["conflicts_with_applied"] == 1:
            self._note("warning", f"the leader {request.leader} replaces entry {index}, which this node applied:"
                                  " the cluster lost committed data; start this node with an empty data dir")
        self._reply(request, False, last_index=index - 1)

    def _reply(self, request: AppendRequest, success: bool, last_index: int | None = None) -> None:
        last = self.log.last_index if last_index is None else last_index
        self._messages.append(AppendResponse(self.current_term, success, last, sender=self.name,
                                             to=request.leader, reply_to=request))
