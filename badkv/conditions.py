"""A condition variable whose notify_all costs nothing while nobody waits.

The write path notifies twice per write (the store's "applied" and the node's
"changed"), almost always with no waiter; threading.Condition.notify_all still
checks lock ownership and walks its waiter queue in Python each time.
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
