"""The key table: each tenant's records by name, each tenant's names in order, and the per-tenant counts
(live keys, value and name bytes, tombstones) that quotas and stats read.

The Store owns one and holds its lock around every call; nothing here locks, keeps the revision index, or
knows about applying, watching or dropping: it stores what it is given. Python orders strings by code
point, which is the byte order of their UTF-8, so name order is byte order.
"""

from __future__ import annotations

from typing import Iterator

from sortedcontainers import SortedList

from badkv.records import Record, name_size, prefix_end

NO_NAMES: dict = {}


class KeyTable:
    """(tenant, name) -> Record in one dict per tenant (no tuple per key: memory per key matters), with the
    names of each tenant in order, tombstones too (skipped when read) for range listing."""

    def __init__(self) -> None:
        self._tenants: dict[str, dict[str, Record]] = {}
        self._names_in_order: dict[str, SortedList] = {}
        self._tenant_bytes: dict[str, int] = {}
        self._tenant_keys: dict[str, int] = {}  # live keys per tenant (quotas and /admin/tenants)
        self._tenant_name_bytes: dict[str, int] = {}  # the live keys' names, which quotas count too
        self.tombstones = 0

    def get(self, tenant: str, name: str) -> Record | None:
        """The key's record, tombstones included; None if never written."""
        names = self._tenants.get(tenant)
        return None if names is None else names.get(name)

    def is_current(self, record: Record) -> bool:
        """Whether ``record`` is its key's record (not one of a dropped tenant, say)."""
        return self._tenants.get(record.tenant, NO_NAMES).get(record.name) is record

    def records(self) -> Iterator[Record]:
        return (record for names in self._tenants.values() for record in names.values())

    def put(self, record: Record, *, in_order: bool = True) -> Record | None:
        """Put ``record`` in its tenant's dict (and name order, unless ``in_order`` is off: ``order_names``
        later) and the counts; return the record it replaced."""
        tenant = record.tenant
        names = self._tenants.get(tenant)
        if names is None:
            names = self._tenants[tenant] = {}
            self._tenant_bytes[tenant] = self._tenant_keys[tenant] = 0
        old = names.get(record.name)
        if old is None:
            if in_order:
                self._names_in_order.setdefault(tenant, SortedList()).add(record.name)
        else:
            self._tenant_name_bytes[tenant] -= name_size(old)
            self._tenant_bytes[tenant] -= len(old.value)
            self._tenant_keys[tenant] -= not old.deleted
            self.tombstones -= old.deleted
        names[record.name] = record
        self._tenant_name_bytes[tenant] = self._tenant_name_bytes.get(tenant, 0) + name_size(record)
        self._tenant_bytes[tenant] += len(record.value)
        self._tenant_keys[tenant] += not record.deleted
        self.tombstones += record.deleted
        return old

    def forget(self, record: Record) -> None:
        """Take a current tombstone out of the dict, the name order and the counts; an emptied tenant goes."""
        tenant = record.tenant
        names = self._tenants[tenant]
        del names[record.name]
        self._names_in_order[tenant].remove(record.name)
        self.tombstones -= 1
        if not names:
            del self._tenants[tenant], self._tenant_bytes[tenant], self._tenant_keys[tenant]
            self._tenant_name_bytes.pop(tenant, None)
            self._names_in_order.pop(tenant, None)

    def drop(self, tenant: str) -> list[Record] | None:
        """Take the whole tenant out, counts and all; its records (None if it had none)."""
        names = self._tenants.pop(tenant, None)
        if names is None:
            return None
        self.tombstones -= len(names) - self._tenant_keys.pop(tenant)
        del self._tenant_bytes[tenant]
        self._tenant_name_bytes.pop(tenant, None)
        self._names_in_order.pop(tenant, None)
        return list(names.values())

    def clear(self) -> None:
        for table in (self._tenants, self._names_in_order, self._tenant_bytes, self._tenant_keys,
                      self._tenant_name_bytes):
            table.clear()
        self.tombstones = 0

    def order_names(self) -> None:
        """Sort every tenant's names at once (after ``put`` with ``in_order`` off: one sort is far cheaper
        than inserting one by one)."""
        self._names_in_order = {tenant: SortedList(names) for tenant, names in self._tenants.items()}

    def range(self, tenant: str, start: str, end: str | None, prefix: str, limit: int, reverse: bool,
              count_only: bool) -> tuple[list[Record], int, str | None]:
        """The tenant's live records with names in ``[start, end)`` that begin with ``prefix``, in name order
        (descending with ``reverse``), at most ``limit`` (none with ``count_only``); how many there are (up to
        the page's end when it is full); and the name the next page starts at, if any."""
        low, high = max(start, prefix), end
        after_prefix = prefix_end(prefix)
        if after_prefix is not None and (high is None or after_prefix < high):
            high = after_prefix
        names, records = self._names_in_order.get(tenant), self._tenants.get(tenant, NO_NAMES)
        page, count, next_name = [], 0, None
        in_range = names.irange(low, high, inclusive=(True, False), reverse=reverse) if names else ()
        for name in in_range:
            record = records[name]
            if record.deleted:
                continue
            count += 1
            if count_only:
                continue
            if len(page) == limit:  # one more exists: where the next page starts
                next_name = page[-1].name if reverse else name
                count -= 1
                break
            page.append(record)
        return page, count, next_name

    def live_records(self, tenant: str) -> list[Record]:
        return [record for record in self._tenants.get(tenant, NO_NAMES).values() if not record.deleted]

    def usage(self, tenant: str) -> tuple[int, int]:
        """The tenant's live keys and the bytes quotas count: values, and live keys' names (``stored_size``)."""
        size = self._tenant_bytes.get(tenant, 0) + self._tenant_name_bytes.get(tenant, 0)
        return self._tenant_keys.get(tenant, 0), size

    def usage_by_tenant(self) -> dict[str, tuple[int, int]]:
        """``usage`` of every tenant that has records."""
        return {tenant: (self._tenant_keys[tenant], size + self._tenant_name_bytes.get(tenant, 0))
                for tenant, size in self._tenant_bytes.items()}

    def value_bytes(self) -> dict[str, int]:
        """Each tenant's value bytes (a copy)."""
        return dict(self._tenant_bytes)
