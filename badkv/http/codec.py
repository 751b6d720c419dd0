"""How records look in HTTP answers: the record headers, a write's answer and a take page."""

from __future__ import annotations

import base64
import json

from badkv.records import Record


def record_headers(record: Record) -> dict:
    return {"X-Badkv-Timestamp": str(record.timestamp), "X-Badkv-Revision": str(record.revision),
            "ETag": f'"{record.revision}"'}


def write_answer(tenant: str, name: str, record: Record) -> str:
    """The 202 body of a put or delete: the same bytes as ``json.dumps`` of the dict, built directly.

    The tenant's characters never need escaping; the name needs it only when it holds a quote,
    a backslash or non-ASCII (control characters are refused at the edge)."""
    quoted_name = f'"{name}"' if name.isascii() and '"' not in name and "\\" not in name else json.dumps(name)
    return (f'{{"tenant": "{tenant}", "name": {quoted_name}, "timestamp": {record.timestamp}, '
            f'"revision": {record.revision}}}')


def key_page(page, keys_only: bool, leases: list | None = None) -> dict:
    """One page of ``GET /api/v1/keys/{tenant}`` (a range listing); values in base64, left out with keys_only;
    ``leases``: the lease id of each record, or None."""
    records = []
    leases = leases or [None] * len(page.records)
    for record, lease in zip(page.records, leases):
        shown = {"name": record.name, "timestamp": record.timestamp, "revision": record.revision, "lease": lease}
        if not keys_only:
            shown["value"] = base64.b64encode(record.value).decode("ascii")
        records.append(shown)
    return {"records": records, "next": page.next, "count": page.count, "revision": page.revision}


def take_page(records: list[Record], next_cursor: int, revision: int) -> dict:
    """One page of ``GET /api/v1/take/{cursor}``."""
    return {"records": [record.to_json() for record in records], "next": next_cursor, "revision": revision}
