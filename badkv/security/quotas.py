"""Per-tenant quotas: how many keys and value bytes a tenant may hold, and how fast it may write.

A tenant's own quota is a record of the reserved tenant ``_quota`` (name: the
tenant, value: the JSON of the fields it sets), replicated like any write;
fields it does not set come from the node's defaults (``-tenant-max-keys``,
``-tenant-max-bytes``, ``-tenant-writes-per-second``). 0 means no limit. The
leader checks a write against them when it admits it; nothing here knows the
store or the log, and time is passed in.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from badkv.errors import InvalidParameter, QuotaExceeded, RateLimited

QUOTA_TENANT = "_quota"
FIELDS = ("keys", "bytes", "writes_per_second")
# The slowest rate a quota may set: one write a day. Slower (5e-324 was tried) makes the wait of a
# refused write infinite, and Retry-After could not say it.
MIN_RATE = 1 / 86400
MAX_LIMIT = 2 ** 63 - 1  # a keys or bytes limit is a signed 64-bit integer, like every count badkv keeps


@dataclass(frozen=True)
class Quota:
    keys: int = 0
    bytes: int = 0
    writes_per_second: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def parse_quota_body(body) -> dict:
    """The fields of a ``PUT .../quota`` body, checked: integers for keys and bytes, a finite number for
    the rate, none negative (0: no limit); absent fields are left to the defaults."""
    if not isinstance(body, dict) or set(body) - set(FIELDS):
        raise InvalidParameter('the body must be a JSON object with some of "keys", "bytes", "writes_per_second"')
    for name in ("keys", "bytes"):
        value = body.get(name, 0)
        if type(value) is not int or not 0 <= value <= MAX_LIMIT:
            raise InvalidParameter(f"{name} must be an integer from 0 to {MAX_LIMIT} (0: no limit)")
    rate = body.get("writes_per_second", 0)
    if type(rate) not in (int, float) or not math.isfinite(rate) or not (rate == 0 or MIN_RATE <= rate):
        raise InvalidParameter(f"writes_per_second must be 0 (no limit) or a finite number from {MIN_RATE:g}")
    return dict(body)


def effective_quota(own: dict | None, default: Quota) -> Quota:
    """The tenant's own fields over the defaults."""
    if not own:
        return default
    return Quota(**{**default.to_json(), **own})


def quotas_by_tenant(records: list) -> dict[str, dict]:
    """The ``_quota`` records as tenant -> own fields (a record that is not a quota sets nothing)."""
    quotas = {}
    for record in records:
        try:
            quotas[record.name] = parse_quota_body(json.loads(record.value))
        except (ValueError, InvalidParameter):
            continue
    return quotas


def check_usage(quota: Quota, tenant: str, usage: tuple[int, int], change: tuple[int, int]) -> None:
    """Raise QuotaExceeded if ``change`` (keys, bytes) takes ``usage`` (keys, bytes, writes in flight
    included) past the quota. A write that does not add keys or bytes always passes, so a tenant over a
    lowered quota can still shrink. Exactly at the limit passes: N keys with a quota of N is allowed."""
    for what, limit, held, added in (("keys", quota.keys, usage[0], change[0]),
                                     ("bytes", quota.bytes, usage[1], change[1])):
        if limit and added > 0 and held + added > limit:
            raise QuotaExceeded(f"tenant {tenant} would hold {held + added} {what}, over its quota of {limit}; "
                                "nothing was stored", tenant=tenant, quota=what, limit=limit)


class TokenBucket:
    """``rate`` tokens a second, at most ``rate`` (and at least one) saved up: bursts of one second."""

    __slots__ = ("rate", "capacity", "tokens", "updated")

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float, cost: int = 1) -> float:
        """Spend ``cost`` tokens and return 0, or return the seconds until one is there (spending nothing).

        One token is enough to start: a transaction of more writes than a second's burst goes into debt
        (the bucket below zero), which the tenant's next writes wait off, instead of never passing."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= cost
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """One token bucket per tenant (on the leader); ``monotonic`` is the clock, injected for tests."""

    def __init__(self, monotonic):
        self.monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, tenant: str, rate: float, cost: int = 1) -> None:
        """Raise RateLimited (with Retry-After in whole seconds, at least 1) if the tenant writes faster
        than ``rate`` a second; 0 means no limit. ``cost``: how many writes this is (a transaction's)."""
        if not rate:
            return
        now = self.monotonic()
        bucket = self._buckets.get(tenant)
        if bucket is None or bucket.rate != rate:  # a new quota starts a full bucket
            bucket = self._buckets[tenant] = TokenBucket(rate, now)
        wait = bucket.take(now, cost)
        if wait:
            retry_after = max(1, math.ceil(min(wait, 86400)))
            raise RateLimited(f"tenant {tenant} writes faster than its quota of {rate:g} writes a second",
                              retry_after=retry_after, tenant=tenant)
