"""Transactions and range reads in the fault workload, modelled as requests on one register per pair of keys.

A pair ``pairN`` is the two keys ``pairN.a`` and ``pairN.b``, and only
transactions ever change them, always both to one value (or both away). So
while transactions are atomic and linearizable the two keys always hold the
same value, and the pair behaves as a single register: a transaction that puts
is a write of the register, one that puts under a compare on the value is a
compare-and-set, one that deletes both is a delete, and a range page of the
pair's prefix is a read of the register. A page that shows the two keys apart
(or one without the other) is recorded as a read of a value nobody wrote,
which the checker can never explain: a torn transaction fails the history.
This is the whole multi-key model for these keys, not a per-key projection.
"""

from __future__ import annotations

import base64

import requests

from badkv.testing.history import Operation

TORN = "torn:"  # the prefix of a value recorded for a page that showed a pair's keys apart


def pair_keys(pair: str) -> tuple[str, str]:
    return f"{pair}.a", f"{pair}.b"


def pair_value(pair: str, values: dict[str, str]) -> str | None:
    """The register value the pair's keys stand for (``values``: name -> value of the keys a page showed)."""
    a, b = (values.get(key) for key in pair_keys(pair))
    if a is None and b is None:
        return None
    return a if a == b else f"{TORN}{a}|{b}"


def classify_txn(status: int | None) -> str:
    """ok, fail (had no effect for sure) or unknown, from a transaction's HTTP status (None: no answer)."""
    if status == 200:
        return "ok"
    if status is not None and (400 <= status < 500 or status == 503):
        return "fail"
    return "unknown"


class PairRequests:
    """The pair requests of ``Workload`` (a mixin: it uses the workload's clock, ids, values and tenant)."""

    def _send_txn(self, session, node: str, body: dict):
        return self._send_to(session, "POST", f"{self.endpoints[node]}/api/v1/txn/{self.tenant}", json=body)

    def _txn_write(self, session, process, node, pair, seen) -> Operation:
        value = f"v{next(self._values)}"
        call, returned, code, response = self._send_txn(session, node, {"success": _puts(pair, value)})
        status = "fail" if code == "refused" else classify_txn(code)
        revision = response.json().get("revision") if status == "ok" else None
        if status == "ok":
            seen[pair] = (value, revision)
        return self._new_op(process, node, pair, "write", call, returned, status, value=value, revision=revision)

    def _txn_cas(self, session, process, node, pair, seen) -> Operation:
        expected, _ = seen.pop(pair)
        value = f"v{next(self._values)}"
        compare = [{"name": pair_keys(pair)[0], "target": "value", "op": "==", "value": expected}]
        call, returned, code, response = self._send_txn(session, node, {"compare": compare,
                                                                         "success": _puts(pair, value)})
        status = "fail" if code == "refused" else classify_txn(code)
        if status == "ok" and not response.json()["succeeded"]:
            return self._new_op(process, node, pair, "cas", call, returned, "ok", value=value, expected=expected,
                                outcome="precondition_failed")
        revision = response.json().get("revision") if status == "ok" else None
        if status == "ok":
            seen[pair] = (value, revision)
        return self._new_op(process, node, pair, "cas", call, returned, status, value=value, expected=expected,
                            revision=revision)

    def _txn_delete(self, session, process, node, pair, seen) -> Operation:
        body = {"success": [{"op": "delete", "name": key} for key in pair_keys(pair)]}
        call, returned, code, response = self._send_txn(session, node, body)
        seen.pop(pair, None)
        status = "fail" if code == "refused" else classify_txn(code)
        if status == "ok" and not response.json()["results"][0]["found"]:
            return self._new_op(process, node, pair, "delete", call, returned, "ok", outcome="not_found")
        return self._new_op(process, node, pair, "delete", call, returned, status)

    def _range_read(self, session, process, node, pair, seen, consistency: str) -> Operation:
        params = {"prefix": f"{pair}.", **({"consistency": consistency} if consistency != "local" else {})}
        call, returned, code, response = self._send_to(session, "GET", f"{self.endpoints[node]}/api/v1/keys/"
                                                       f"{self.tenant}", params=params)
        if code != 200:
            return self._new_op(process, node, pair, "read", call, returned or call, "fail", consistency=consistency)
        records = response.json()["records"]
        value = pair_value(pair, {r["name"]: _text(r["value"]) for r in records})
        revision = max((r["revision"] for r in records), default=None)
        return self._new_op(process, node, pair, "read", call, returned, "ok", consistency=consistency,
                            value=value, revision=revision)

    def _range_read_linearizable(self, session, process, node, pair, seen) -> Operation:
        return self._range_read(session, process, node, pair, seen, "linearizable")

    def _range_read_local(self, session, process, node, pair, seen) -> Operation:
        return self._range_read(session, process, node, pair, seen, "local")


def final_pair_values(url: str, tenant: str, pairs: list[str]) -> dict[str, str | None]:
    """Each pair's register value on the node at ``url`` (after the run: a local range page per pair)."""
    finals = {}
    for pair in pairs:
        response = requests.get(f"{url}/api/v1/keys/{tenant}", params={"prefix": f"{pair}."}, timeout=2)
        if response.status_code != 200:  # the final read must work: say what the node answered instead
            raise RuntimeError(f"final range read of {pair} on {url}: HTTP {response.status_code}: "
                               f"{response.text[:200]}")
        records = response.json()["records"]
        finals[pair] = pair_value(pair, {r["name"]: _text(r["value"]) for r in records})
    return finals


def _puts(pair: str, value: str) -> list[dict]:
    return [{"op": "put", "name": key, "value": value} for key in pair_keys(pair)]


def _text(value_b64: str) -> str:
    return base64.b64decode(value_b64).decode()
