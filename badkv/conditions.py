"""Two cheaper stand-ins for threading's primitives on the hot paths.

``QuietCondition``: the write path notifies twice per write (the store's
"applied" and the node's "changed"), almost always with no waiter;
threading.Condition.notify_all still checks lock ownership and walks its waiter
queue in Python each time.

``OneShot``: every write (and every linearizable read on the leader) waits for
one wake-up of its own. threading.Event builds that from a Condition: the waiter
allocates a lock, queues it and, once woken, takes the condition's lock again,
which the waking thread may still hold; setting walks the queue in Python. A
lock that starts out held and is released once does the same in one C call on
each side.
"""

from __future__ import annotations

import threading


class QuietCondition(threading.Condition):
    """threading.Condition that skips notify_all when no thread waits on it."""

    def __init__(self, lock) -> None:
        super().__init__(lock)
        self.waiting = 0  # changed only with the lock held: in wait(), before and after the wait itself

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting += 1
        try:
            return super().wait(timeout)
        finally:
            self.waiting -= 1

    def notify_all(self) -> None:
        if self.waiting:
            super().notify_all()


class OneShot:
    """A wake-up that happens once, for one waiting thread: ``set`` once, ``wait`` until it was.

    Calls of ``set`` must not race each other (every caller holds the node lock); ``wait`` and
    ``is_set`` may come from any thread, before or after ``set``."""

    __slots__ = ("_held", "_set")

    def __init__(self) -> None:
        self._held = threading.Lock()
        self._held.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._held.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False if ``timeout`` seconds passed first."""
        if self._set:
            return True
        if self._held.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            self._held.release()  # (free again: a later wait returns at once)
            return True
        return self._set
