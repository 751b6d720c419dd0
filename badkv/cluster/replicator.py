"""One thread per peer: carry this node's calls to it (appends, votes, TimeoutNow) and the answers back.

On the leader, the core keeps one append in flight per follower and builds the
next when the answer arrives, so while a call is on the wire new entries
gather into the next batch. A candidate's vote requests go out through the
same threads, one per peer, so a dead peer delays nobody else. A failed call
is reported to the core as ``Unreachable``; after a failed append the next
call waits a little longer each time (50 ms, then one heartbeat interval).
Heartbeats, which the leader sends only while an append waits for its answer,
go through a second thread per peer: they must not queue behind that append.
"""

from __future__ import annotations

import collections
import logging
import threading

from badkv import tracing
from badkv.cluster.transport import PeerClient, TransportError
from badkv.consensus.messages import (AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse, TimeoutNow,
                                      Unreachable, VoteRequest, VoteResponse)

logger = logging.getLogger(__name__)


class Replicator:
    """This node's link to peer ``peer``."""

    def __init__(self, node, peer: str, client: PeerClient):
        self.node = node
        self.peer = peer
        self.client = client
        self.wakeup = threading.Event()
        self.outbox: collections.deque = collections.deque()  # guarded by the node lock
        self.heartbeat_wakeup = threading.Event()
        self.heartbeats: collections.deque = collections.deque()  # guarded by the node lock
        self.last_ack_at = node.monotonic()  # when the follower last took an append (for /admin/members)
        self.retired = False  # the peer left the membership: the threads end

    def retire(self) -> None:
        """The peer is no longer a member: end this link's threads and close its connections."""
        self.retired = True
        self.wake()
        self.client.close()

    def post(self, message) -> None:
        """Hand over the core's next call for this peer (node lock held)."""
        if type(message) is Heartbeat:
            self.heartbeats.append(message)
            self.heartbeat_wakeup.set()
        else:
            self.outbox.append(message)
            self.wakeup.set()

    def wake(self) -> None:
        self.wakeup.set()
        self.heartbeat_wakeup.set()

    def loop(self) -> None:
        self._carry(self.outbox, self.wakeup)

    def heartbeat_loop(self) -> None:
        self._carry(self.heartbeats, self.heartbeat_wakeup)

    def _carry(self, queue: collections.deque, wakeup: threading.Event) -> None:
        node = self.node
        while not node.stopping.is_set() and not self.retired:
            try:
                wakeup.wait(node.config.heartbeat_interval)
                wakeup.clear()
                tracing.stamp(f"repl-awake {self.peer}")
                while not node.stopping.is_set() and not self.retired:
                    with node.lock:
                        if not queue:
                            break
                        message = queue.popleft()
                    self._send(message)
            except Exception:
                logger.exception("%s: sending to %s failed; going on", node.name, self.peer)
                node.stopping.wait(0.1)

    def _send(self, message) -> None:
        node = self.node
        try:
            answer = self._call(message)
        except TransportError as error:
            logger.debug("%s: %s to %s failed: %s", node.name, type(message).__name__, self.peer, error)
            node.advance(lambda: node.core.step(Unreachable(self.peer, message)))
            if isinstance(message, AppendRequest):
                progress = node.core.progress.get(self.peer)
                failures = progress.failures if progress is not None else 1
                # At most a heartbeat apart: a follower that comes back should answer well within the
                # leader's check-quorum window, or the leader may step down needlessly.
                node.stopping.wait(min(0.05 * 2 ** min(failures, 4), node.config.heartbeat_interval))
            return
        if answer is not None:
            tracing.stamp(f"answer-step {self.peer}")
            node.advance(lambda: node.core.step(answer))
            tracing.stamp(f"answer-stepped {self.peer}")

    def _call(self, message):
        """Make the call; the answer as a message for the core (None for TimeoutNow)."""
        if isinstance(message, AppendRequest):
            wire = self.client.append(message.to_wire())
            response = AppendResponse.from_wire(wire, sender=self.peer, reply_to=message)
            if response.success:
                self.last_ack_at = self.node.monotonic()
            return response
        if isinstance(message, VoteRequest):
            return VoteResponse.from_wire(self.client.vote(message.to_wire()), sender=self.peer, reply_to=message)
        if isinstance(message, Heartbeat):
            return HeartbeatResponse.from_wire(self.client.heartbeat(message.to_wire()), sender=self.peer,
                                               reply_to=message)
        if isinstance(message, TimeoutNow):
            self.client.timeout_now(message.to_wire())
            return None
        raise TypeError(f"cannot send {type(message).__name__}")
