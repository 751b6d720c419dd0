"""The answering side of peer calls: appends, votes and TimeoutNow. Step the call into the core,
persist (the answer promises it is on disk), apply, answer."""

from __future__ import annotations

from badkv.consensus.messages import AppendRequest, TimeoutNow, VoteRequest
from badkv.errors import Unavailable


class Follower:
    """Serves the leader's appends for ``node``."""

    def __init__(self, node):
        self.node = node
        self.last_leader_contact: float | None = None  # monotonic time of the last accepted append

    def handle_append(self, wire: dict) -> dict:
        """Answer one append (its wire form); the answer promises its entries are on disk here."""
        node = self.node
        if node.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {node.storage_error}", retry_after=5)
        request = AppendRequest.from_wire(wire, to=node.name)
        with node.lock:
            node.core.step(request)
            outcome = node.driver.run()
            node.applier.progressed()
        [reply] = [message for message in outcome.replies if message.reply_to is request]
        if reply.success or outcome.installing:
            self.last_leader_contact = node.monotonic()
        if outcome.appended is not None:
            node.writer.make_durable(outcome.appended)
        return reply.to_wire()

    def handle_vote(self, wire: dict) -> dict:
        """Answer a vote or pre-vote request; a granted vote is on disk before the answer leaves."""
        node = self.node
        if node.storage_error is not None:
            raise Unavailable(f"this node's storage failed: {node.storage_error}", retry_after=5)
        request = VoteRequest.from_wire(wire, to=node.name)
        with node.lock:
            node.core.step(request)
            outcome = node.driver.run()
            node.applier.progressed()
        [reply] = [message for message in outcome.replies if message.reply_to is request]
        return reply.to_wire()

    def handle_timeout_now(self, wire: dict) -> dict:
        """The leader hands over: campaign at once (the vote requests go out from the send threads)."""
        node = self.node
        node.advance(lambda: node.core.step(TimeoutNow.from_wire(wire, to=node.name)))
        return {"term": node.core.current_term}
