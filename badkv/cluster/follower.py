"""The answering side of peer calls: appends, votes, heartbeats and TimeoutNow. Step the call into the
core, persist (the answer promises it is on disk), apply, answer.

An append's entries are fsync'ed after the node lock is released: a disk that stalls for a second
(seen on this machine) then holds up only that answer, while heartbeats, votes and reads go on."""

from __future__ import annotations

from badkv.consensus.messages import AppendRequest, AppendResponse, Heartbeat, TimeoutNow, VoteRequest
from badkv import tracing
from badkv.errors import Unavailable


class Follower:
    """Answers the peer calls ``node`` receives."""

    def __init__(self, node):
        self.node = node
        self.last_leader_contact: float | None = None  # monotonic time of the last accepted append

    def handle_append(self, wire: dict) -> dict:
        """Answer one append (its wire form); the answer promises its entries are on disk here."""
        reply, outcome = self._answer(AppendRequest.from_wire(wire, to=self.node.name))
        if reply.success or outcome.installing:
            self.last_leader_contact = self.node.monotonic()
        return reply.to_wire()

    def handle_heartbeat(self, wire: dict) -> dict:
        """Answer the leader's heartbeat; it needs nothing from the disk."""
        reply, _ = self._answer(Heartbeat.from_wire(wire, to=self.node.name))
        if reply.term == reply.reply_to.term:
            self.last_leader_contact = self.node.monotonic()
        return reply.to_wire()

    def handle_vote(self, wire: dict) -> dict:
        """Answer a vote or pre-vote request; a granted vote is on disk before the answer leaves."""
        reply, _ = self._answer(VoteRequest.from_wire(wire, to=self.node.name))
        return reply.to_wire()

    def _answer(self, request):
        """Step ``request`` into the core and carry out the Ready; returns the core's answer to it and
        what the run did. A node whose disk failed answers nothing: its log may be ahead of its disk."""
        node = self.node
        if node.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {node.storage_error}", retry_after=5)
        tracing.stamp("peer-lock-wait")
        with node.lock:
            tracing.stamp("peer-locked")
            node.core.step(request)
            outcome = node.driver.run()
            node.applier.progressed()
        [reply] = [message for message in outcome.replies if message.reply_to is request]
        if type(reply) is AppendResponse and reply.success:
            # The answer says the entries through the request's last index are on disk here; they may
            # have come with this call or with an earlier one whose fsync is still running.
            node.writer.make_durable(min(request.last_index, node.wal.last_index))
        return reply, outcome

    def handle_timeout_now(self, wire: dict) -> dict:
        """The leader hands over: campaign at once (the vote requests go out from the send threads)."""
        node = self.node
        node.advance(lambda: node.core.step(TimeoutNow.from_wire(wire, to=node.name)))
        return {"term": node.core.current_term}
