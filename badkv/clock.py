"""Revision stamps from a hybrid logical clock: the wall clock in nanoseconds, never going back."""

from __future__ import annotations

import threading
import time
from typing import Callable


class HybridClock:
    """Revision stamps: ``max(now_ns, last + 1)``, strictly increasing even if the wall clock steps back."""

    def __init__(self, now_ns: Callable[[], int] = time.time_ns):
        self._now_ns = now_ns
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._now_ns(), self._last + 1)
            return self._last

    def now(self) -> int:
        """The time a stamp taken now would at least have, without taking one."""
        with self._lock:
            return max(self._now_ns(), self._last)

    def observe(self, revision: int) -> None:
        """Never stamp at or below a revision already seen (e.g. replayed from the log)."""
        with self._lock:
            self._last = max(self._last, revision)

    @property
    def last(self) -> int:
        return self._last
