"""A record, the key it belongs to, and the rules every write is judged by (last-writer-wins, preconditions,
what a record counts against its tenant's quota); one page of a range listing. No state: ``store.py``
holds the records.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass

from badkv.errors import NotFound, PreconditionFailed, Stale

Key = tuple[str, str]


@dataclass(slots=True)
class Record:
    """The latest state of one key; a tombstone has ``deleted`` set and no value."""

    tenant: str
    name: str
    value: bytes
    timestamp: int
    revision: int
    deleted: bool = False

    @property
    def key(self) -> Key:
        return (self.tenant, self.name)

    def wins_over(self, other: "Record | None") -> bool:
        """Last-writer-wins: the greater timestamp wins; on a tie the later revision does."""
        return other is None or (self.timestamp, self.revision) > (other.timestamp, other.revision)

    def to_dict(self) -> dict:
        return {"tenant": self.tenant, "name": self.name, "value": self.value, "timestamp": self.timestamp,
                "revision": self.revision, "deleted": self.deleted}

    @classmethod
    def from_dict(cls, data: dict) -> "Record":
        return cls.build(data["tenant"], data["name"], bytes(data["value"]), int(data["timestamp"]),
                         int(data["revision"]), bool(data["deleted"]))

    def to_json(self) -> dict:
        """The record as the take feed shows it: the value in base64."""
        return {"tenant": self.tenant, "name": self.name, "value": base64.b64encode(self.value).decode("ascii"),
                "timestamp": self.timestamp, "revision": self.revision, "deleted": self.deleted}

    @classmethod
    def from_json(cls, data: dict) -> "Record":
        """The inverse of ``to_json`` (take sync reads the leader's feed with it)."""
        return cls(data["tenant"], data["name"], base64.b64decode(data["value"]), int(data["timestamp"]),
                   int(data["revision"]), bool(data["deleted"]))

    @classmethod
    def from_entry(cls, entry: dict) -> "Record":
        deleted = entry["op"] == "delete"
        return cls.build(entry["tenant"], entry["name"], b"" if deleted else entry["value"],
                         entry["timestamp"], entry["revision"], deleted)

    @classmethod
    def build(cls, tenant: str, name: str, value: bytes, timestamp: int, revision: int,
              deleted: bool) -> "Record":
        """A record that shares what it can: tenants are few (interned), and a write without a
        timestamp has timestamp == revision (one int object). A million keys are a lot of objects."""
        return cls(sys.intern(tenant), name, value, revision if timestamp == revision else timestamp,
                   revision, deleted)


def name_size(record: Record | None) -> int:
    """The bytes of a live record's name (a tombstone's name counts for nothing)."""
    return 0 if record is None or record.deleted else len(record.name.encode("utf-8", "surrogatepass"))


def stored_size(record: Record | None) -> int:
    """What a record counts against its tenant's bytes quota: its value and, while it is live, its name.
    Names are up to 1 KiB: a quota on values alone would let a tenant store any amount in names."""
    return 0 if record is None else name_size(record) + len(record.value)


@dataclass(slots=True)
class KeyPage:
    """One page of a range listing: its records, where the next page starts (None: no more), how many
    records (with ``count_only``: how many in the whole range), and the applied revision it was read at."""

    records: list[Record]
    next: str | None
    count: int
    revision: int


def prefix_end(prefix: str) -> str | None:
    """The first name after every name that starts with ``prefix`` (None: no such name, or no prefix)."""
    stripped = prefix.rstrip(chr(sys.maxunicode))
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


def check_write(current: Record | None, op: str, timestamp: int | None,
                if_match: int | None = None, if_none_match: bool = False) -> None:
    """Raise the error a write must get against ``current``, or return if it may proceed."""
    live = current is not None and not current.deleted
    if if_none_match and live:
        raise PreconditionFailed("the key exists (If-None-Match: *)", revision=current.revision)
    if if_match is not None and (not live or current.revision != if_match):
        raise PreconditionFailed("the key's revision is not the one in If-Match",
                                 revision=current.revision if live else None)
    if op == "delete" and not live:
        raise NotFound("no such key")
    if timestamp is not None and current is not None and timestamp < current.timestamp:
        raise Stale("the write's timestamp is older than the stored one", stored_timestamp=current.timestamp)
