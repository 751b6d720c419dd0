"""How a view gives its thread back while it waits: parking a request with the HTTP worker.

A long-polling take that finds nothing would hold a request thread for up to its whole wait. Under the
badkv gunicorn worker (``parked_worker.py``) it does not: the view raises ``Parked`` with a ``Park``
(its watcher and deadline), the worker keeps the connection on its event loop, and when the watcher is
woken or the deadline passes it serves the same request again on a pool thread, this time with
``resumed()`` returning the park, so the view knows its original deadline and whether it is over.

``Parked`` is a BaseException on purpose: it is no error, and it must pass through Flask's error
handling (which turns every Exception into a response) and gunicorn's, up to the worker. A view calls
``park`` only when ``can_park()`` says a worker that parks is serving it; elsewhere (the Flask test
client, another server) it waits on its thread instead.
"""

from __future__ import annotations

import contextlib
import threading
import time

_serving = threading.local()


class Park:
    """A parked request: the watcher the worker hands the connection back on, and when to stop waiting."""

    __slots__ = ("watcher", "deadline", "final", "unwatch")

    def __init__(self, watcher, deadline: float, unwatch):
        self.watcher = watcher
        self.deadline = deadline  # time.monotonic()
        self.final = False  # set by the worker: answer now, with what there is (deadline, or stopping)
        self.unwatch = unwatch  # ends the watcher's registration (client gone, deadline passed)

    def over(self) -> bool:
        return self.final or time.monotonic() >= self.deadline


class Parked(BaseException):
    """Raised by a view to leave its request parked with the worker (see the module docstring)."""

    def __init__(self, park: Park):
        super().__init__("parked")
        self.park = park


@contextlib.contextmanager
def serving(resumed: Park | None = None):
    """The worker serves a request on this thread and can park it (``resumed``: a parked one again)."""
    _serving.can_park, _serving.resumed = True, resumed
    try:
        yield
    finally:
        _serving.can_park, _serving.resumed = False, None


def can_park() -> bool:
    return getattr(_serving, "can_park", False)


def resumed() -> Park | None:
    """The park of the request being served again, or None on its first run."""
    return getattr(_serving, "resumed", None)


def park(watcher, deadline: float, unwatch) -> None:
    """Leave the request with the worker until ``watcher`` wakes or ``deadline`` passes."""
    raise Parked(Park(watcher, deadline, unwatch))
