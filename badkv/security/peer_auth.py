"""Signing and checking one peer call with the cluster secret (HMAC-SHA256), and refusing replays.

A signed call carries ``X-Badkv-Timestamp`` (seconds since the epoch, microsecond
precision) and ``X-Badkv-Signature``: the hex HMAC-SHA256, keyed with the cluster
secret, of one line each of: a version tag, the method, the path, the SHA-256 of
the body as sent, the sender's name, the receiver's name, the cluster id, the
sender's instance id and the timestamp. The receiver's name is in it so a call
captured on its way to one member cannot be replayed to another. Time is
injected (``clock``) so tests control it; nothing here knows about HTTP servers.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import math
import threading
import time
from typing import Callable, Mapping

CLUSTER = "X-Badkv-Cluster"
SENDER = "X-Badkv-Sender"
INSTANCE = "X-Badkv-Instance"
TIMESTAMP = "X-Badkv-Timestamp"
SIGNATURE = "X-Badkv-Signature"
DUPLICATE = "X-Badkv-Duplicate"  # on a call to a member whose name another process claims too (instances.py)

WINDOW_SECONDS = 30.0
# Far above what a healthy cluster sends one member in a window: a follower takes at most a few
# thousand calls a second (a call costs its leader about 300 µs of CPU; see transport.py), so
# 30 s of them is under 100,000 remembered signatures. Full, the memory holds about 36 MB (measured:
# 16 bytes of each signature, its set slot and its expiry entry).
REPLAY_CAPACITY = 200_000
VERSION = "badkv-peer-v1"


class SignatureError(Exception):
    """A peer call whose signature is missing, wrong, outside the time window or seen before."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _string_to_sign(method: str, path: str, body: bytes, sender: str, receiver: str, cluster: str,
                    instance: str, timestamp: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((VERSION, method.upper(), path, digest, sender, receiver, cluster, instance,
                      timestamp)).encode()


def signature(secret: bytes, method: str, path: str, body: bytes, *, sender: str, receiver: str, cluster: str,
              instance: str, timestamp: str) -> str:
    """The hex HMAC-SHA256 of one call."""
    message = _string_to_sign(method, path, body, sender, receiver, cluster, instance, timestamp)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class Signer:
    """The headers one node puts on every peer call it sends (signed when there is a secret)."""

    def __init__(self, secret: bytes | None, *, cluster: str, sender: str, instance: str,
                 clock: Callable[[], float] = time.time):
        self.secret = secret
        self.clock = clock
        self.identity = {CLUSTER: cluster, SENDER: sender, INSTANCE: instance}

    def headers(self, method: str, path: str, body: bytes, receiver: str) -> dict:
        headers = dict(self.identity)
        if self.secret:
            timestamp = f"{self.clock():.6f}"
            headers[TIMESTAMP] = timestamp
            headers[SIGNATURE] = signature(self.secret, method, path, body, sender=headers[SENDER],
                                           receiver=receiver, cluster=headers[CLUSTER],
                                           instance=headers[INSTANCE], timestamp=timestamp)
        return headers


class ReplayMemory:
    """The signatures accepted within the time window, to refuse a second use of any of them.

    This is enough: a signature is only accepted while its timestamp is within ±window of
    the clock, so once the clock is a window past the timestamp the call is refused as
    expired anyway and the signature need not be remembered. Every entry is therefore
    forgotten at timestamp + window, which bounds the memory by the rate of genuine signed
    calls times the window. Should that still exceed ``capacity`` (far above a healthy
    cluster's rate), new calls are refused rather than old signatures forgotten early: a
    refused peer call is retried, a forgotten signature could be replayed.
    """

    def __init__(self, window: float = WINDOW_SECONDS, capacity: int = REPLAY_CAPACITY):
        self.window = window
        self.capacity = capacity
        self.seen: set[bytes] = set()
        # Arrival order, which is nearly timestamp order: an entry behind a later-expiring one is
        # kept a little longer than needed, never dropped too early.
        self.expiries: collections.deque[tuple[float, bytes]] = collections.deque()
        self.lock = threading.Lock()  # request threads check and add at once: one of two copies must lose

    def remember(self, key: bytes, timestamp: float, now: float) -> None:
        """Record ``key``; raise SignatureError if it was seen before or there is no room left."""
        with self.lock:
            self._remember(key, timestamp, now)

    def _remember(self, key: bytes, timestamp: float, now: float) -> None:
        while self.expiries and self.expiries[0][0] < now:
            self.seen.discard(self.expiries.popleft()[1])
        if key in self.seen:
            raise SignatureError("replayed: this signature was used before")
        if len(self.seen) >= self.capacity:
            raise SignatureError(f"more than {self.capacity} signed calls in {self.window:g} s: refusing until "
                                 f"older ones expire")
        self.seen.add(key)
        self.expiries.append((timestamp + self.window, key))

    def __len__(self) -> int:
        return len(self.seen)


class Verifier:
    """Checks the signature, the timestamp and the freshness of each call one node receives."""

    def __init__(self, secret: bytes, *, receiver: str, clock: Callable[[], float] = time.time,
                 window: float = WINDOW_SECONDS, capacity: int = REPLAY_CAPACITY):
        self.secret = secret
        self.receiver = receiver
        self.clock = clock
        self.window = window
        self.replays = ReplayMemory(window, capacity)

    def verify(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Return if the call is signed, fresh and new; else raise SignatureError saying which it is not."""
        given, stamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
        if not given or not stamp:
            raise SignatureError("missing: the call carries no signature" if not given
                                 else "missing: the call carries no timestamp")
        timestamp = _parse_timestamp(stamp)
        now = self.clock()
        if abs(now - timestamp) > self.window:
            raise SignatureError(f"expired: its timestamp is {now - timestamp:+.0f} s from this node's clock "
                                 f"(at most ±{self.window:g} s)")
        expected = signature(self.secret, method, path, body, sender=headers.get(SENDER, ""),
                             receiver=self.receiver, cluster=headers.get(CLUSTER, ""),
                             instance=headers.get(INSTANCE, ""), timestamp=stamp)
        if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
            raise SignatureError("bad: the signature does not match (another secret, or a changed call)")
        self.replays.remember(bytes.fromhex(expected)[:16], timestamp, now)


def _parse_timestamp(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SignatureError("bad: the timestamp is not a number") from None
    if not math.isfinite(value):
        raise SignatureError("bad: the timestamp is not a finite number")
    return value
