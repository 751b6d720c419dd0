"""Elections: randomised timeouts, pre-vote, RequestVote, check-quorum and leadership transfer.

Follows Raft (Ongaro & Ousterhout 2014, §5.2 and §5.4.1) with the dissertation's
additions: pre-vote (§9.6), so a node back from a partition asks before it
raises its term and cannot depose a healthy leader; check-quorum and the leader
lease (§6.2, §4.2.3), so a leader that lost its majority steps down within an
election timeout and a follower that hears from its leader ignores vote
requests; and leadership transfer (§3.10) through TimeoutNow. A mixin of
``core.Core``: it works on the core's state.
"""

from __future__ import annotations

from badkv.consensus.messages import TimeoutNow, VoteRequest, VoteResponse
from badkv.consensus.roles import Role


# Check-quorum waits two election timeouts, not one (Raft section 6.2 says one): the three nodes of a
# cluster on one machine share a disk whose journal flushes stalled every follower's fsync for up to
# 0.53 s at once during rolling restarts (measured, docs/design.md section 7), and a leader that
# stepped down for that cost the cluster an election. A cut-off leader still commits nothing
# meanwhile: only its step-down comes later.
CHECK_QUORUM_TIMEOUTS = 2


class ElectionRules:
    """How a Core comes to lead, and stops leading."""

    def _init_election(self, first_in_line: bool) -> None:
        self.votes: dict[str, bool] = {}
        self.campaign: str | None = None  # "pre-vote" or "vote" while a candidate
        self.campaign_is_transfer = False
        self.election_elapsed = 0
        self.transfer_target: str | None = None
        self.transfer_elapsed = 0
        self._timeout_now_sent = False
        # The first member of the cluster gets the shortest first timeout and the others start later in
        # the range, so a fresh cluster normally starts with the first member as its one known leader.
        if first_in_line:
            self.randomized_timeout = self.election_ticks
        else:
            self.randomized_timeout = self.rng.randrange(self.election_ticks * 3 // 2, 2 * self.election_ticks)
        if list(self.membership.voters) == [self.name]:  # a cluster of one leads at once
            self._campaign(pre_vote=False)

    @property
    def transferring(self) -> bool:
        return self.transfer_target is not None

    def _reset_election_timer(self) -> None:
        self.election_elapsed = 0
        self.randomized_timeout = self.rng.randrange(self.election_ticks, 2 * self.election_ticks)

    def _in_lease(self) -> bool:
        """Heard from a live leader (or is one) within the minimum election timeout."""
        return self.leader is not None and self.election_elapsed < self.election_ticks

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_timeout and not self.may_stand():
            self._reset_election_timer()  # a learner, or a removed node, never stands
        elif self.election_elapsed >= self.randomized_timeout:
            heard = f"no word from the leader {self.leader}" if self.leader else "no leader"
            self._note("info", f"{heard} for {self.election_elapsed} ticks: asking for pre-votes for term "
                               f"{self.current_term + 1}")
            self._campaign(pre_vote=True)

    def _campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        self.role = Role.CANDIDATE
        self.campaign, self.campaign_is_transfer = ("pre-vote" if pre_vote else "vote"), transfer
        self.leader = None
        self._reset_election_timer()
        term = self.current_term + 1
        if pre_vote:
            self.counters["pre_votes_started"] += 1
        else:
            self.current_term, self.voted_for = term, self.name
            self._hard_state_changed = True
            self.counters["elections_started"] += 1
            self._note("info", f"starting the election for term {term}")
        self.votes = {self.name: True}
        for peer in self.voter_peers:
            self._messages.append(VoteRequest(term, self.name, self.log.last_index, self.log.last_term,
                                              pre_vote, transfer, to=peer))
        self._count_votes()

    def _count_votes(self) -> None:
        voters = self.membership.voters
        granted = sum(1 for voter, vote in self.votes.items() if vote and voter in voters)
        refused = sum(1 for voter, vote in self.votes.items() if not vote and voter in voters)
        quorum = len(voters) // 2 + 1  # (of the candidate's membership; the tracker is the last leader's)
        if granted >= quorum:
            if self.campaign == "pre-vote":
                self._campaign(pre_vote=False, transfer=self.campaign_is_transfer)
            else:
                self._become_leader()
        elif refused > len(voters) - quorum:
            self._note("info", f"lost the {self.campaign} for term {self.current_term + (self.campaign == 'pre-vote')}"
                               f" ({refused} refused)")
            self._become_follower(self.current_term, None)

    def _handle_vote(self, request: VoteRequest) -> None:
        # A node this one does not know of (one removed) gets no vote; learners do vote when asked: only a
        # candidate whose membership counts them as voters asks them (dissertation §4.2.1).
        if request.candidate not in self.membership.nodes or request.term < self.current_term:
            return self._answer_vote(request, False)
        if not request.transfer and self._in_lease():
            # Check-quorum's lease: while a leader is heard from, nobody else is voted for (§4.2.3).
            self.counters["pre_votes_refused"] += request.pre_vote
            return self._answer_vote(request, False)
        if not request.pre_vote and request.term > self.current_term:
            self._become_follower(request.term, None, f"{request.candidate} stands in term {request.term}")
        up_to_date = (request.last_term, request.last_index) >= (self.log.last_term, self.log.last_index)
        if request.pre_vote:
            granted = up_to_date and request.term > self.current_term
            self.counters["pre_votes_refused"] += not granted
        else:
            granted = up_to_date and self.voted_for in (None, request.candidate)
            if granted:
                self.voted_for = request.candidate
                self._hard_state_changed = True
                self._reset_election_timer()
        self._answer_vote(request, granted)

    def _answer_vote(self, request: VoteRequest, granted: bool) -> None:
        # A granted pre-vote carries the term asked about, so the candidate does not take it as stale.
        term = request.term if request.pre_vote and granted else self.current_term
        self._messages.append(VoteResponse(term, granted, request.pre_vote, sender=self.name,
                                           to=request.candidate, reply_to=request))

    def _handle_vote_response(self, response: VoteResponse) -> None:
        if response.term > self.current_term and not (response.pre_vote and response.granted):
            return self._become_follower(response.term, None, f"{response.sender} is in term {response.term}")
        if self.campaign is None or response.reply_to is None or self.is_leader:
            return
        expected = self.current_term + 1 if self.campaign == "pre-vote" else self.current_term
        if response.pre_vote != (self.campaign == "pre-vote") or response.reply_to.term != expected:
            return  # an answer to an earlier campaign
        self.votes[response.sender] = response.granted
        self._count_votes()

    def _handle_timeout_now(self, message: TimeoutNow) -> None:
        if (message.term == self.current_term and message.leader == self.leader and not self.is_leader
                and self.is_voter):
            self._note("info", f"{message.leader} hands leadership over: standing for term {self.current_term + 1}")
            self._campaign(pre_vote=False, transfer=True)

    # ---- the leader's side ----------------------------------------------------------
    def _check_quorum_tick(self) -> None:
        """A leader that has heard from less than a majority for ``CHECK_QUORUM_TIMEOUTS`` election
        timeouts steps down."""
        self.election_elapsed += 1
        if self.transfer_target is not None:
            self.transfer_elapsed += 1
            if self.transfer_elapsed >= self.election_ticks:
                self._end_transfer("timed out")
        if self.election_elapsed >= self.election_ticks:
            self.election_elapsed = 0  # (the leader's own lease against disruptive vote requests)
        window = CHECK_QUORUM_TIMEOUTS * self.election_ticks
        heard = self.tracker.heard_within(window)
        if heard < self.quorum:
            self._become_follower(self.current_term, None, f"heard from {heard - 1} of {len(self.voter_peers)}"
                                                           f" followers in {window} ticks")

    def transfer_leadership(self, target: str | None = None) -> str:
        """Start handing leadership to ``target`` (None: the most caught-up follower); returns the target.

        Raises ValueError with a sentence when it cannot be done."""
        if not self.is_leader:
            raise ValueError("this node is not the leader")
        if not self.voter_peers:
            raise ValueError("a cluster of one has nobody to hand leadership to")
        if target is None:
            target = max(self.voter_peers, key=lambda peer: self.progress[peer].match_index)
        elif target == self.name:
            raise ValueError(f"{target} is the leader already")
        elif target in self.membership.learners:
            raise ValueError(f"{target} is a learner; it can lead once it is promoted to voter")
        elif target not in self.voter_peers:
            raise ValueError(f"{target} is not a member of this cluster")
        self.transfer_target, self.transfer_elapsed, self._timeout_now_sent = target, 0, False
        self._note("info", f"handing leadership to {target}")
        self._continue_transfer()
        return target

    def _continue_transfer(self) -> None:
        """Bring the target up to date, then tell it to campaign (once).

        It waits, too, until every entry of this leader is committed and applied by every in-sync
        follower: proposals stop during a transfer, so this takes a round trip or two, and no write in
        flight is left on a leader that is about to step down (and, on SIGTERM, stop)."""
        target = self.transfer_target
        if target is None or self._timeout_now_sent:
            return
        last = self.log.last_index
        if self.progress[target].match_index >= last and self.acknowledged_index(self.applied_index, "all") >= last:
            self._messages.append(TimeoutNow(self.current_term, self.name, to=target))
            self._timeout_now_sent = True
        else:
            self.progress[target].send_now = True

    def _end_transfer(self, reason: str | None) -> None:
        if self.transfer_target is not None and reason:
            self._note("warning", f"leadership transfer to {self.transfer_target} {reason}")
        self.transfer_target = None
