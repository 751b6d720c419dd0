"""Who waits for which change: the registry of watchers the store wakes when matching records are applied.

A watcher is a take that found nothing for its filter (a tenant, and a name prefix within it, or the
whole feed) and waits for a change. The store registers it under the store lock in the same hold as
the scan that found nothing, so no change can fall between the look and the registration. Waking is
once: a woken watcher leaves the registry, and the taker looks again (and registers again if it still
finds nothing). Nothing here knows about threads or sockets: ``wake`` is a callable the waiter brings
(an Event's ``set``, or the HTTP worker's hand-back of a parked connection), called with the store
lock held, so it must be quick and must not call the store.

The cost on the apply path is one truth test of the registry while nobody watches; with watchers, a
dictionary look-up per changed record and a prefix test per watcher of that record's tenant.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable, Iterable


class Watcher:
    """One waiting take: its filter and what to call, once, when something it may want is applied."""

    __slots__ = ("tenant", "prefix", "wake", "woken", "registered")

    def __init__(self, tenant: str | None, prefix: str = "", wake: Callable[[], None] | None = None):
        if prefix and tenant is None:
            raise ValueError("a prefix filter needs a tenant")
        self.tenant, self.prefix = tenant, prefix
        self.wake = wake
        self.woken = False
        self.registered = False

    def wants(self, tenant: str, name: str) -> bool:
        return self.tenant in (None, tenant) and name.startswith(self.prefix)

    def fire(self) -> None:
        self.woken = True
        if self.wake is not None:
            self.wake()


class WatcherRegistry:
    """Watchers by tenant (None: the whole feed), and those due once the applied revision reaches a mark."""

    def __init__(self) -> None:
        self._by_tenant: dict[str | None, set[Watcher]] = {}
        self.count = 0  # registered watchers (the apply path tests this plain attribute: the cheapest check)
        # (revision, order, watcher): records stored ahead of the applied revision (take sync brings a
        # follower records its log has not applied yet) are shown only once applied; wake then.
        self._due: list[tuple[int, int, Watcher]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return self.count

    def add(self, watcher: Watcher, due_at: int | None = None) -> None:
        """Register ``watcher``; with ``due_at``, also wake it once the applied revision reaches ``due_at``."""
        if watcher.registered or watcher.woken:
            raise ValueError("a watcher is registered once")
        self._by_tenant.setdefault(watcher.tenant, set()).add(watcher)
        watcher.registered = True
        self.count += 1
        if due_at is not None:
            heapq.heappush(self._due, (due_at, next(self._order), watcher))

    def remove(self, watcher: Watcher) -> bool:
        """Unregister ``watcher`` (its wait ended another way); False if it was not registered (woken)."""
        if not watcher.registered:
            return False
        self._discard(watcher)
        return True

    def _discard(self, watcher: Watcher) -> None:
        group = self._by_tenant[watcher.tenant]
        group.discard(watcher)
        if not group:
            del self._by_tenant[watcher.tenant]
        watcher.registered = False
        self.count -= 1

    def _wake(self, watchers: Iterable[Watcher]) -> int:
        woken = 0
        for watcher in list(watchers):
            if watcher.registered:
                self._discard(watcher)
                watcher.fire()
                woken += 1
        return woken

    def changed(self, records: Iterable) -> int:
        """Wake every watcher that wants one of ``records`` (anything with ``tenant`` and ``name``);
        return how many woke."""
        woken = 0
        for record in records:
            if not self.count:
                break
            every = self._by_tenant.get(None)
            if every:
                woken += self._wake(every)
            group = self._by_tenant.get(record.tenant)
            if group:
                woken += self._wake(watcher for watcher in group if record.name.startswith(watcher.prefix))
        return woken

    def applied(self, revision: int) -> int:
        """The applied revision reached ``revision``: wake the watchers due by then."""
        due = []
        while self._due and self._due[0][0] <= revision:
            due.append(heapq.heappop(self._due)[2])
        return self._wake(due)

    def wake_all(self) -> int:
        """Wake everyone (the store was replaced wholesale, or the node stops)."""
        self._due.clear()
        return self._wake([watcher for group in self._by_tenant.values() for watcher in group])
