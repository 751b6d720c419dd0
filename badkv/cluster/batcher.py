"""A follower's requests to the leader in batches: one peer call carries every request that queued up.

Two kinds go this way: clients' writes (``/cluster/v1/propose``: the leader
answers each write as its public API would, status, headers and body, and the
follower relays that answer unchanged) and linearizable reads
(``/cluster/v1/read-index``: one confirmed commit index serves every read that
queued before the call left). Relaying each as its own HTTP request cost the
leader a request's parsing, routing and thread hand-offs each, and the follower
one connection per waiting client.

Nobody waits for a timer: the first caller to find a free call slot sends the
queue, and whoever's call ends with callers still queued hands the slot to the
first of them (a combining queue). ``max_calls`` calls may be on their way at
once, so a batch that waits for its acknowledgement does not hold up the next.
"""

from __future__ import annotations

import threading

from badkv.cluster.transport import TransportError

MAX_CALLS = 2  # calls of one kind on their way to the leader at once, from this follower
MAX_BATCH_ITEMS = 256
MAX_BATCH_BYTES = 4 << 20


class _Queued:
    __slots__ = ("payload", "size", "leader", "event", "answer", "error", "sends")

    def __init__(self, payload, size: int, leader: str):
        self.payload, self.size, self.leader = payload, size, leader
        self.event = threading.Event()
        self.answer = None  # what the leader answered to this payload
        self.error: Exception | None = None  # the call failed (TransportError)
        self.sends = False  # this writer holds a call slot: it sends the queue


class Batcher:
    """Batches of one kind of call: ``send(leader, payloads, timeout)`` makes the call and returns one
    answer per payload, or raises TransportError."""

    def __init__(self, send, max_calls: int = MAX_CALLS):
        self.send, self.max_calls = send, max_calls
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._calls = 0

    def call(self, leader: str, payload, timeout: float, size: int = 0):
        """Send ``payload`` (of ``size`` bytes, for the batch limit) to ``leader`` in the next batch; the
        leader's answer to it. Raises TransportError (TransportTimeout when the outcome is unknown) if the
        call failed."""
        item = _Queued(payload, size, leader)
        with self._lock:
            self._queue.append(item)
            if self._calls < self.max_calls:
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
                answers = self.send(leader, [item.payload for item in batch], timeout)
                if len(answers) != len(batch):
                    raise TransportError(f"{leader}: {len(answers)} answers to {len(batch)} requests")
                for item, answer in zip(batch, answers):
                    item.answer = answer
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
        """The queued payloads for ``leader``, oldest first, within the batch limits."""
        with self._lock:
            batch, size, rest = [], 0, []
            for item in self._queue:
                fits = len(batch) < MAX_BATCH_ITEMS and (not batch or size + item.size <= MAX_BATCH_BYTES)
                if item.leader == leader and fits:
                    batch.append(item)
                    size += item.size
                else:
                    rest.append(item)
            self._queue = rest
            return batch
