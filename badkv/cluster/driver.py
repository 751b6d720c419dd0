"""Carrying out the core's Readys: persist, apply, send, in that order, under the node lock.

Every thread that changes the core (a client's write, a replicator with an
answer, a follower with an append, the ticker) ends its turn with ``run``, so
nothing the core asks for waits for another thread to notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from badkv.consensus.messages import ANSWERS
from badkv.consensus.ready import Ready

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one ``run`` did that its caller must follow up on."""

    appended: int | None = None  # the leader's log grew to here: flush it (group commit, lock not held)
    replies: list = field(default_factory=list)  # answers to calls this node is serving
    installing: bool = False  # the leader asked for a copy of its state


class Driver:
    """Takes the core's Readys and does what they say (the node lock held)."""

    def __init__(self, node):
        self.node = node

    def run(self) -> Outcome:
        """Do everything the core asks for now; raises Unavailable if the disk failed."""
        node, core = self.node, self.node.core
        outcome = Outcome()
        while core.has_ready():
            ready = core.ready()
            for level, text in ready.notes:
                getattr(logger, level)("%s: %s", node.name, text)
            self._persist(ready)
            if ready.entries and core.is_leader:
                outcome.appended = ready.entries[-1]["index"]
            if ready.install is not None:
                outcome.installing = True
                node.snapshots.request_install(*ready.install)
            node.applier.apply(ready.committed)
            node.members.follow()  # (a config entry may have added the peer a message is for)
            for message in ready.messages:
                if isinstance(message, ANSWERS):
                    outcome.replies.append(message)
                else:
                    node.replicators[message.to].post(message)
        # Against the last leader reported, not the one at the start of this run: a caller may have
        # stepped the message that changed it into the core before calling run (Follower._answer does).
        if core.leader != node.leadership.known_leader:
            node.leadership.leader_changed(core.leader)
        return outcome

    def _persist(self, ready: Ready) -> None:
        """The hard state (fsync'ed here), then the log, buffered: the leader's writers and a follower's
        append handler flush it outside the lock (``Writer.make_durable``) before they answer."""
        node, core, wal = self.node, self.node.core, self.node.wal
        try:
            if ready.hard_state is not None:
                wal.save_state(ready.hard_state.term, ready.hard_state.voted_for)
            if ready.truncate_from is not None:
                wal.truncate_from(ready.truncate_from)
                node.applier.lost_from(ready.truncate_from)
            if ready.entries:
                wal.append(ready.entries)
                if not core.is_leader:
                    # Revisions stay strictly increasing across leaders: should this node lead next,
                    # it stamps above every entry it holds, applied or not.
                    node.clock.observe(ready.entries[-1]["revision"])
        except Exception as error:
            if core.is_leader and ready.entries:  # never replicate what is not in our log
                core.forget_unpersisted(ready.entries[0]["index"], ready.messages)
            # A follower's log in memory is ahead of its disk now: it must never answer an append again.
            raise node.storage_failed(error) from None
        core.persisted(wal.durable_index)
