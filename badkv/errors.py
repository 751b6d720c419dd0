"""The whole error vocabulary of badkv.

Domain code raises a subclass of ``BadkvError``; each carries its HTTP status
and a stable code, and ``badkv.http.errors`` renders every one of them as the
same JSON shape: ``{"error": "<stable code>", "message": "<human text>", ...extra}``.
This module imports nothing of the web framework, so pure code can raise these.
"""

from __future__ import annotations


class BadkvError(Exception):
    """An error a client caused or must react to; rendered as JSON with ``status``."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def to_dict(self) -> dict:
        return {"error": self.code, "message": self.message, **self.extra}


class BadRequest(BadkvError):
    status = 400
    code = "bad_request"


class InvalidTenant(BadRequest):
    code = "invalid_tenant"


class InvalidName(BadRequest):
    code = "invalid_name"


class InvalidTimestamp(BadRequest):
    code = "invalid_timestamp"


class InvalidParameter(BadRequest):
    code = "invalid_parameter"


class InvalidTransaction(BadRequest):
    """A transaction body of the wrong shape; nothing was done."""

    code = "invalid_txn"


class Unauthenticated(BadkvError):
    """The caller did not prove who it is: with auth on, no bearer token or one that opens nothing (unknown,
    rotated or revoked); a peer call without a verified credential. Nothing was done."""

    status = 401
    code = "unauthenticated"

    def __init__(self, message: str, **extra):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="badkv"'}, **extra)


class Forbidden(BadkvError):
    """A valid token that does not open what was asked (another tenant, or an admin route)."""

    status = 403
    code = "forbidden"


class ReservedTenant(Forbidden):
    """A client write to a tenant whose name starts with ``_`` (kept for tokens, quotas, drops)."""

    code = "reserved_tenant"


class NotFound(BadkvError):
    status = 404
    code = "not_found"


class LeaseNotFound(NotFound):
    """A key write names a lease that does not exist (or has ended, or belongs to another tenant)."""

    code = "lease_not_found"


class Stale(BadkvError):
    """A write whose timestamp is older than the stored one (last-writer-wins)."""

    status = 409
    code = "stale"


class Conflict(BadkvError):
    """The thing changed while the request worked on it; trying again may work."""

    status = 409
    code = "conflict"


class TenantExists(Conflict):
    """A token is created for a tenant that has one already (rotate it instead)."""

    code = "tenant_exists"


class MembershipPending(Conflict):
    """Another membership change is not committed yet (one change at a time); try again shortly."""

    code = "membership_change_pending"


class AlreadyMember(Conflict):
    """A node of that name is a member already."""

    code = "already_member"


class JoinTokenInvalid(Unauthenticated):
    """A join with no token, or one that is not this learner's; nothing changed."""

    code = "join_token_invalid"


class JoinRefused(Forbidden):
    """A join whose token was used already or has expired; nothing changed."""

    code = "join_refused"


class PeerRefused(BadkvError):
    """A peer call from outside this cluster's membership; nothing was changed."""

    status = 409
    code = "peer_refused"


class WrongCluster(PeerRefused):
    code = "wrong_cluster"


class NotAMember(PeerRefused):
    code = "not_a_member"


class DuplicateMember(PeerRefused):
    """Two processes claim one member name; the later one is refused."""

    code = "duplicate_member"


class DataDirChanged(PeerRefused):
    """A member came back on another data dir than the one this node heard it with (badkv/security/data_ids.py)."""

    code = "data_dir_changed"


class CursorExpired(BadkvError):
    """A take cursor older than the tombstone horizon: deletes after it may have been removed by gc, so the
    caller copies again from take/0. ``horizon`` is the oldest cursor still answered."""

    status = 410
    code = "cursor_expired"

    def __init__(self, message: str, *, horizon: int, **extra):
        super().__init__(message, horizon=horizon, **extra)
        self.horizon = horizon


class PreconditionFailed(BadkvError):
    status = 412
    code = "precondition_failed"


class TooLarge(BadkvError):
    status = 413
    code = "too_large"


class RateLimited(BadkvError):
    """The tenant writes faster than its quota allows; nothing was stored."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1, **extra):
        super().__init__(message, headers={"Retry-After": str(retry_after)}, retry_after=retry_after, **extra)


class QuotaExceeded(BadkvError):
    """The write would take the tenant past its keys or bytes quota; nothing was stored."""

    status = 507
    code = "quota_exceeded"


class Unavailable(BadkvError):
    """No leader or no quorum: nothing was written; retrying later may work."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, **extra):
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **extra)


class NotLeader(Unavailable):
    """A forwarded request reached a node that is not the leader (never forwarded twice)."""

    code = "not_leader"


class Removed(Unavailable):
    """This node was removed from the cluster: it serves nothing more."""

    code = "removed"


class Timeout(BadkvError):
    """The operation did not finish in time; for a write the outcome is unknown."""

    status = 504
    code = "timeout"


class ConfigError(Exception):
    """A configuration value a user must fix; the message is one sentence."""
