"""Path, query, header and body parameters of the public API: each parsed and checked once, at the edge.

Shared by the views of keys, take and range (``api.py``), transactions (``txn.py``), leases (``leases.py``)
and the leader's side of a follower's proposals (``proposals.py``).
"""

from __future__ import annotations

import re

from flask import request

from badkv.errors import InvalidName, InvalidParameter, InvalidTenant, InvalidTimestamp, TooLarge

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME_BYTES = 1024
MAX_TIMESTAMP = 2 ** 63
CONSISTENCY_LEVELS = ("local", "leader", "linearizable")
DEFAULT_TAKE_LIMIT = 1000
MAX_TAKE_LIMIT = 10000


def parse_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidTenant("tenant must be 1-128 characters of letters, digits, '.', '_' or '-'")
    return tenant


def parse_name(name: str) -> str:
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_NAME_BYTES:
        raise InvalidName(f"name must be 1-{MAX_NAME_BYTES} bytes of UTF-8")
    if CONTROL_CHARACTERS.search(name) or "/" in name:
        raise InvalidName("name must not contain '/' or control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName("name must be valid UTF-8") from None
    return name


def parse_timestamp(text: str, what: str = "timestamp") -> int:
    """A count of nanoseconds since the epoch, 0 <= t < 2^63."""
    if not is_small_integer(text) or int(text) >= MAX_TIMESTAMP:
        raise InvalidTimestamp(f"{what} must be an integer count of nanoseconds, 0 <= t < 2^63")
    return int(text)


def is_small_integer(text: str) -> bool:
    """Digits only and short enough that int() is cheap and cannot refuse it."""
    return text.isascii() and text.isdigit() and len(text) <= 19


def query_int(args, name: str, default, low: int, high: int):
    text = args.get(name)
    if text is None:
        return default
    if not is_small_integer(text) or not low <= int(text) <= high:
        raise InvalidParameter(f"{name} must be an integer from {low} to {high}")
    return int(text)


def seconds_of(text: str) -> float:
    """A parameter in seconds (a trailing ``s`` allowed); -1 when it is not a number, so range checks refuse it."""
    try:
        return float(text.removesuffix("s"))
    except ValueError:
        return -1.0


def read_timeout(args, limit: float):
    text = args.get("timeout")
    if text is None:
        return None
    seconds = seconds_of(text)
    if not 0 <= seconds <= limit:
        raise InvalidParameter(f"timeout must be a number of seconds from 0 to {limit:g}")
    return seconds


_NO_ARGS: dict = {}


def query_args(environ):
    """The query arguments, parsed only when there are any (most key requests have none)."""
    return request.args if environ.get("QUERY_STRING") else _NO_ARGS


def parse_if_match(header: str | None) -> int | None:
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not is_small_integer(text):
        raise InvalidParameter('If-Match must be a quoted revision, e.g. "1700000000000000000"')
    return int(text)


def parse_if_none_match(header: str | None) -> bool:
    if header is None:
        return False
    if header.strip() != "*":
        raise InvalidParameter("If-None-Match supports only *")
    return True


def read_value(environ, limit: int) -> bytes:
    """The request body, refused (413) above ``limit`` bytes.

    With a Content-Length (every client we know sends one) the WSGI input is read
    directly: werkzeug's stream wrappers cost more than the rest of a write's parsing.
    """
    length = environ.get("CONTENT_LENGTH")
    if length and length.isascii() and length.isdigit():
        if not is_small_integer(length) or int(length) > limit:  # (a 20-digit length is too large too)
            raise TooLarge(f"the value is larger than the limit of {limit} bytes", limit=limit)
        value = environ["wsgi.input"].read(int(length))
    else:
        value = request.get_data(cache=True)
    if len(value) > limit:
        raise TooLarge(f"the value is larger than the limit of {limit} bytes", limit=limit)
    return value
