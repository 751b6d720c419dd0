"""Membership changes: one server at a time through ``config`` log entries (Raft dissertation §4.1-4.3).

A configuration takes effect on a node as soon as its entry is in the node's
log, and the previous one comes back if that entry is cut. The leader takes a
new change only once the last one committed, and only once it committed an
entry of its own term (its no-op): without that rule a leader elected on an
old configuration could commit a change that overlaps one a deposed leader
already half-replicated, and two leaders could be elected in one term (the
single-server bug Ongaro reported on raft-dev in 2015). Learners get the log
and count for nothing; the leader promotes a learner once it has used its
join token and holds what was committed an election timeout ago. A leader
that removed itself leads until that removal commits, then hands over; a
node that sees its removal committed takes no more part. A mixin of
``core.Core``: it works on the core's state.
"""

from __future__ import annotations

from collections import deque

from badkv.consensus.membership import (CONFIG_OP, MAX_VOTERS, Membership, MembershipError, check_single_change,
                                        config_entry, describe_change)
from badkv.consensus.messages import TimeoutNow
from badkv.consensus.roles import Role

# A removed follower that has not answered for this many election timeouts after its removal committed
# is forgotten without having heard of it (it is dead, most often: the node being replaced).
FORGET_REMOVED_TIMEOUTS = 2


class ReconfigurationRules:
    """How a Core's membership changes."""

    def _init_membership(self, base: Membership) -> None:
        self.base_membership = base  # as of log.base_index: what a snapshot there must keep
        self.membership, self.config_index = self._latest_membership()
        self.membership_changes = 0  # counts every switch, so the caller can follow (peers, boundary)
        self._commit_history: deque[int] = deque()
        self._removal_noted = False

    @property
    def membership_pending(self) -> bool:
        """A config entry in the log is not committed yet."""
        return self.config_index > self.commit_index

    @property
    def removed(self) -> bool:
        """This node is not in a committed membership: it takes no more part in the cluster."""
        return self.name not in self.membership.nodes and self.commit_index >= self.config_index

    def may_stand(self) -> bool:
        """Whether this node may campaign: it votes in its membership or, while its removal is not known to
        be committed, in the one before. (A leader that removed itself and restarted before the removal
        committed may hold the only copy of it: it must be able to lead until it commits.) Votes are always
        counted among the voters of the newest membership."""
        if self.is_voter:
            return True
        return self.membership_pending and self.name in self.membership_at(self.config_index - 1).voters

    def membership_at(self, index: int) -> Membership:
        """The membership as of entry ``index`` (between the log's base and its end)."""
        base = self.log.base_index
        for entry in reversed(self.log.slice(base + 1, max(0, index - base))):
            if entry.get("op") == CONFIG_OP:
                return Membership.from_wire(entry["members"])
        return self.base_membership

    def propose_membership(self, membership: Membership) -> dict:
        """Append a config entry for ``membership``; raises MembershipError with a sentence if it may not."""
        self._check_may_change()
        check_single_change(self.membership, membership)
        if membership == self.membership:
            raise MembershipError("invalid", "the membership would not change")
        return self.propose(config_entry(membership, self.stamp()))

    def _check_may_change(self) -> None:
        if not self.is_leader:
            raise MembershipError("not_leader", "this node is not the leader")
        if self.transferring:
            raise MembershipError("pending", "a leadership transfer is under way; try again once it is over")
        if self.membership_pending:
            raise MembershipError("pending", f"the membership change at index {self.config_index} is not "
                                             "committed yet; one change at a time")
        if self.commit_index < self.term_start_index:
            raise MembershipError("not_ready", f"this leader has not yet committed an entry of term "
                                               f"{self.current_term}; try again in a moment")

    def _may_change(self) -> bool:
        try:
            self._check_may_change()
        except MembershipError:
            return False
        return True

    # ---- following the log ----------------------------------------------------------
    def _latest_membership(self) -> tuple[Membership, int]:
        for entry in reversed(self.log.entries):
            if entry.get("op") == CONFIG_OP:
                return Membership.from_wire(entry["members"]), entry["index"]
        return self.base_membership, self.log.base_index

    def _refresh_membership(self) -> None:
        """After the log was cut or rebased: the newest membership it holds applies again."""
        membership, self.config_index = self._latest_membership()
        if membership != self.membership:
            self._switch_membership(membership)

    def _appended(self, entry: dict) -> None:
        """An entry is in the log now; a config entry takes effect at once."""
        if entry.get("op") == CONFIG_OP:
            self.config_index = entry["index"]
            self._switch_membership(Membership.from_wire(entry["members"]))

    def _switch_membership(self, membership: Membership) -> None:
        old, self.membership = self.membership, membership
        self.membership_changes += 1
        self._note("info", f"membership from index {self.config_index}: {describe_change(old, membership)}; "
                           f"voters {', '.join(membership.voters) or 'none'}; "
                           f"learners {', '.join(membership.learners) or 'none'}")
        if self.is_leader:
            learners = [name for name in membership.learners if name != self.name]
            self.tracker.reconfigure(self.voter_peers, learners, self.is_voter, self.log.last_index + 1)
        elif self.role is Role.CANDIDATE and not self.may_stand():
            self._become_follower(self.current_term, None)

    # ---- the leader's side ----------------------------------------------------------
    def _tick_membership(self) -> None:
        """Each leader tick: forget removed members that know it, promote a learner that caught up."""
        self._commit_history.append(self.commit_index)
        while len(self._commit_history) > self.election_ticks:
            self._commit_history.popleft()
        give_up = FORGET_REMOVED_TIMEOUTS * self.election_ticks
        for name in self.tracker.drop_informed(self.config_index, self.commit_index, give_up):
            self._note("info", f"{name} is no longer a member: no more appends go to it")
        self._promote_caught_up()

    def _promote_caught_up(self) -> None:
        """A learner that used its join token and holds what was committed one election timeout ago
        becomes a voter (one config entry)."""
        if (not self.membership.learners or len(self._commit_history) < self.election_ticks
                or len(self.membership.voters) >= MAX_VOTERS):
            return
        if not self._may_change():
            return
        committed_then = self._commit_history[0]
        for name in self.membership.learners:
            progress = self.tracker.peers.get(name)
            if name in self.membership.tokens or progress is None:
                continue
            if progress.match_index >= committed_then and progress.ticks_since_ack <= self.election_ticks:
                entry = self.propose_membership(self.membership.promoted(name))
                self._note("info", f"promoting {name} to voter at index {entry['index']}: it holds index "
                                   f"{progress.match_index}, committed was {committed_then} an election timeout ago")
                return

    def _leave_if_removed(self) -> None:
        """A leader whose own removal committed steps down and tells the most caught-up voter to stand."""
        if not self.is_leader or self.is_voter or self.commit_index < self.config_index:
            return
        target = max(self.voter_peers, key=lambda peer: self.tracker.peers[peer].match_index)
        self._become_follower(self.current_term, None, "its removal from the cluster is committed")
        self._messages.append(TimeoutNow(self.current_term, self.name, to=target))

    def _note_if_removed(self) -> None:
        if self.removed and not self._removal_noted:
            self._note("warning", f"this node was removed from the cluster (membership from index "
                                  f"{self.config_index}); it takes no more part in elections or commits")
        self._removal_noted = self.removed
