"""Watch: ``GET /api/v1/take/{cursor}?wait=S``, a take that waits for a matching change.

The answer comes as soon as a matching record at or after the cursor has been applied, else at the
deadline with no records. Each look is one ``Node.take`` that registers a watcher if it finds nothing,
in the same hold of the store lock, so a change applied between the look and the wait still wakes it.
Under the badkv worker the wait holds no thread (``parking.py``); elsewhere it waits on an Event.
``next`` is the take's cursor: past the last record returned, else past the applied revision, so a
filtered watcher moves past other tenants' changes instead of scanning them again on every call.
"""

from __future__ import annotations

import threading
import time

from badkv.errors import InvalidParameter
from badkv.http import parking
from badkv.http.params import seconds_of
from badkv.watchers import Watcher

MAX_WAIT = 300.0


def parse_wait(args) -> float | None:
    """``wait``: seconds, more than 0 and at most 300 (a trailing ``s`` allowed); None when absent."""
    text = args.get("wait")
    if text is None:
        return None
    seconds = seconds_of(text)
    if not 0 < seconds <= MAX_WAIT:  # (NaN fails too)
        raise InvalidParameter(f"wait must be a number of seconds, more than 0 and at most {MAX_WAIT:g}")
    return seconds


def long_poll(node, since: int, limit: int, tenant: str | None, prefix: str, wait: float):
    """(records, next, revision): matching records as soon as there are some, else none at the deadline."""
    earlier = parking.resumed()
    deadline = earlier.deadline if earlier is not None else time.monotonic() + wait
    over = earlier is not None and earlier.over()
    while not over:
        woken = threading.Event()
        watcher = Watcher(tenant, prefix, None if parking.can_park() else woken.set)
        records, next_cursor, revision = node.take(since, limit, tenant, prefix, watcher)
        if records:
            return records, next_cursor, revision
        if parking.can_park():
            parking.park(watcher, deadline, node.unwatch)
        woken.wait(max(0.0, deadline - time.monotonic()))
        node.unwatch(watcher)
        over = time.monotonic() >= deadline or node.stopping.is_set()
    return node.take(since, limit, tenant, prefix)
