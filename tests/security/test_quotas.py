"""Tests for badkv/security/quotas.py: the quota check, its body parser and the token bucket."""

import pytest

from badkv.errors import InvalidParameter, QuotaExceeded, RateLimited
from badkv.security.quotas import (MAX_LIMIT, Quota, RateLimiter, TokenBucket, check_usage, effective_quota,
                                   parse_quota_body)


@pytest.mark.parametrize("usage, change, refused", [
    ((9, 0), (1, 0), False), ((10, 0), (1, 0), True), ((10, 0), (0, 5), False), ((11, 0), (-1, 0), False),
    ((0, 95), (0, 5), False), ((0, 96), (0, 5), True), ((0, 200), (0, -1), False),
])
def test_usage_is_refused_only_past_the_limit(usage, change, refused):
    quota = Quota(keys=10, bytes=100)
    if refused:
        with pytest.raises(QuotaExceeded):
            check_usage(quota, "acme", usage, change)
    else:
        check_usage(quota, "acme", usage, change)


def test_zero_means_no_limit():
    check_usage(Quota(), "acme", (10 ** 9, 10 ** 12), (1, 1000))


def test_own_fields_override_the_defaults():
    assert effective_quota({"keys": 3}, Quota(1, 2, 3.0)) == Quota(3, 2, 3.0)
    assert effective_quota(None, Quota(1, 2, 3.0)) == Quota(1, 2, 3.0)


@pytest.mark.parametrize("body", [None, [], {"keys": -1}, {"bytes": 2 ** 63}, {"writes_per_second": float("inf")},
                                  {"writes_per_second": "1"}, {"x": 1}])
def test_bad_bodies_are_refused(body):
    with pytest.raises(InvalidParameter):
        parse_quota_body(body)


def test_the_largest_limit_the_document_allows_is_accepted():
    assert parse_quota_body({"keys": MAX_LIMIT, "bytes": MAX_LIMIT}) == {"keys": 2 ** 63 - 1, "bytes": 2 ** 63 - 1}


def test_the_bucket_allows_a_burst_of_one_second_then_the_rate():
    bucket = TokenBucket(rate=4, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(0.0) == pytest.approx(0.25)
    assert bucket.take(0.25) == 0.0
    assert bucket.take(10.0) == 0.0 and bucket.tokens == pytest.approx(3)  # never more than the capacity


def test_a_slow_rate_keeps_one_token_of_burst():
    bucket = TokenBucket(rate=0.5, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(2.0)


def test_the_limiter_answers_retry_after_in_whole_seconds():
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    limiter.admit("acme", 0.4)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("acme", 0.4)
    assert refused.value.headers["Retry-After"] == "3"  # 2.5 s, rounded up
    limiter.admit("beta", 0.4)  # buckets are per tenant
    limiter.admit("acme", 0)  # no limit
    now[0] = 2.5
    limiter.admit("acme", 0.4)
