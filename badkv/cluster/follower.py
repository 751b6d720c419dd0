"""A follower's side of AppendEntries: step it into the core, persist, apply, answer."""

from __future__ import annotations

from badkv.consensus.messages import AppendRequest
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
        return reply.to_wire()
