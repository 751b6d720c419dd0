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


class NotFound(BadkvError):
    status = 404
    code = "not_found"


class Stale(BadkvError):
    """A write whose timestamp is older than the stored one (last-writer-wins)."""

    status = 409
    code = "stale"


class Unauthenticated(BadkvError):
    """The call carries no valid credential (for a peer call: no valid signature with the cluster secret)."""

    status = 401
    code = "unauthenticated"


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


class PreconditionFailed(BadkvError):
    status = 412
    code = "precondition_failed"


class TooLarge(BadkvError):
    status = 413
    code = "too_large"


class Unavailable(BadkvError):
    """No leader or no quorum: nothing was written; retrying later may work."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, **extra):
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **extra)


class NotLeader(Unavailable):
    """A forwarded request reached a node that is not the leader (never forwarded twice)."""

    code = "not_leader"


class Timeout(BadkvError):
    """The operation did not finish in time; for a write the outcome is unknown."""

    status = 504
    code = "timeout"


class ConfigError(Exception):
    """A configuration value a user must fix; the message is one sentence."""
