"""One thread per follower on the leader: carry the core's appends to it and its answers back.

The core keeps one append in flight per follower and builds the next when the
answer arrives, so while a call is on the wire new entries gather into the
next batch. A failed call is reported to the core as ``Unreachable`` and the
next one waits a little longer each time (50 ms doubling to 500 ms).
"""

from __future__ import annotations

import logging
import threading

from badkv.cluster.transport import PeerClient, TransportError
from badkv.consensus.messages import AppendRequest, AppendResponse, Unreachable

logger = logging.getLogger(__name__)


class Replicator:
    """The leader's link to follower ``peer``."""

    def __init__(self, node, peer: str, client: PeerClient):
        self.node = node
        self.peer = peer
        self.client = client
        self.wakeup = threading.Event()
        self.outbox: AppendRequest | None = None  # guarded by the node lock
        self.last_ack_at = node.monotonic()  # when the follower last took an append (for /admin/members)

    def post(self, message: AppendRequest) -> None:
        """Hand over the core's next append for this follower (node lock held)."""
        self.outbox = message
        self.wakeup.set()

    def loop(self) -> None:
        node = self.node
        while not node.stopping.is_set():
            try:
                self.wakeup.wait(node.config.heartbeat_interval)
                self.wakeup.clear()
                with node.lock:
                    message, self.outbox = self.outbox, None
                if message is not None and not node.stopping.is_set():
                    self._send(message)
            except Exception:
                logger.exception("%s: replicator for %s failed; going on", node.name, self.peer)
                node.stopping.wait(0.1)

    def _send(self, message: AppendRequest) -> None:
        node = self.node
        try:
            wire = self.client.append(message.to_wire())
        except TransportError as error:
            logger.debug("%s: append to %s failed: %s", node.name, self.peer, error)
            with node.lock:
                node.core.step(Unreachable(self.peer))
                node.driver.run()
                node.applier.progressed()
                failures = node.core.progress[self.peer].failures
            node.stopping.wait(min(0.05 * 2 ** min(failures, 4), 0.5))
            return
        response = AppendResponse.from_wire(wire, sender=self.peer, reply_to=message)
        with node.lock:
            if response.success:
                self.last_ack_at = node.monotonic()
            node.core.step(response)
            appended = node.driver.run().appended
            node.applier.progressed()
        if appended is not None:  # the core started a term and logged its no-op
            node.writer.make_durable(appended)
