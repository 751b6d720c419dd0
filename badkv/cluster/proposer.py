"""A follower's client writes go to the leader in batches: one ``/cluster/v1/propose`` call per batch.

Relaying each write as its own HTTP request cost the leader a request's parsing,
routing and thread hand-offs per write, and the follower one connection per
waiting writer. Instead the writers that arrive while calls are on their way
queue up, and the next call carries all of them. Nobody waits for a timer: the
first writer to find a free call slot sends the queue, and whoever's call ends
with writers still queued hands the slot to the first of them (a combining
queue). ``MAX_CALLS`` calls per leader may be on their way at once, so a batch
that waits for its acknowledgement does not hold up the next one.

The leader answers each write as its public API would (status, headers, body),
and the follower relays that answer unchanged.
"""

from __future__ import annotations

import threading

from badkv.cluster.transport import TransportError

MAX_CALLS = 2  # proposals on their way to the leader at once, from this follower
MAX_BATCH_WRITES = 256
MAX_BATCH_BYTES = 4 << 20


class _Queued:
    __slots__ = ("write", "leader", "event", "answer", "error", "sends")

    def __init__(self, write: dict, leader: str):
        self.write, self.leader = write, leader
        self.event = threading.Event()
        self.answer = None  # (status, headers, body) from the leader
        self.error: Exception | None = None  # the call failed (TransportError)
        self.sends = False  # this writer holds a call slot: it sends the queue


class Proposer:
    """The follower side of batched writes for ``node``."""

    def __init__(self, node):
        self.node = node
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._calls = 0

    def propose(self, leader: str, write: dict, timeout: float):
        """Send ``write`` to ``leader`` in the next batch; its (status, headers, body). Raises
        TransportError (TransportTimeout when the outcome is unknown) if the call failed."""
        item = _Queued(write, leader)
        with self._lock:
            self._queue.append(item)
            if self._calls < MAX_CALLS:
                self._calls += 1
                item.sends = True
        # (Flags are set before the event; the event is cleared only after the flags were read again.)
        while item.answer is None and item.error is None:
            if item.sends:
                item.sends = False  # the slot moves on after this call (perhaps back to this writer)
                self._send_queue(leader, timeout)
                continue
            if not item.event.wait(timeout + 1.0):
                with self._lock:
                    if item in self._queue:  # never sent: nothing was done
                        self._queue.remove(item)
                        raise TransportError(f"{leader}: the proposal queue did not move in {timeout:g}s")
            item.event.clear()
        if item.error is not None:
            raise item.error
        return item.answer

    def _send_queue(self, leader: str, timeout: float) -> None:
        """Holding a call slot: send one batch, then pass the slot on (or give it back)."""
        batch = self._take_batch(leader)
        if batch:
            try:
                answers = self.node.peers[leader].propose([item.write for item in batch], timeout)
                if len(answers) != len(batch):
                    raise TransportError(f"{leader}: {len(answers)} answers to {len(batch)} proposals")
                for item, answer in zip(batch, answers):
                    item.answer = tuple(answer)
            except TransportError as error:
                for item in batch:
                    item.error = error
            for item in batch:
                item.event.set()
        with self._lock:
            if self._queue:
                heir = self._queue[0]
                heir.sends = True
                heir.event.set()
            else:
                self._calls -= 1

    def _take_batch(self, leader: str) -> list[_Queued]:
        """The queued writes for ``leader``, oldest first, within the batch limits."""
        with self._lock:
            batch, size, rest = [], 0, []
            for item in self._queue:
                fits = len(batch) < MAX_BATCH_WRITES and (not batch or size + len(item.write["value"]) <= MAX_BATCH_BYTES)
                if item.leader == leader and fits:
                    batch.append(item)
                    size += len(item.write["value"])
                else:
                    rest.append(item)
            self._queue = rest
            return batch
