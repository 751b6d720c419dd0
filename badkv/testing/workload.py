"""A recorded client workload for fault tests: every request becomes an Operation.

Several client threads each pick a random node per request and do unique-value
writes, deletes, compare-and-set (If-Match) and reads, linearizable and local,
on a small key set, and transactions and range pages on pairs of keys
(``badkv.testing.pairs``: each pair is one register to the checker), with a short client timeout and no retries. Call and
return times come from one monotonic clock so the checker can order them.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, fields

import requests

from badkv.testing.history import Operation
from badkv.testing.pairs import PairRequests

TENANT = "faults"


@dataclass
class Mix:
    """Relative weights of the kinds of request."""

    write: float = 0.3
    delete: float = 0.08
    cas: float = 0.17
    read_linearizable: float = 0.3
    read_local: float = 0.15
    # Transactions and range pages, on pairs of keys (badkv.testing.pairs).
    txn_write: float = 0.1
    txn_cas: float = 0.08
    txn_delete: float = 0.02
    range_read_linearizable: float = 0.1
    range_read_local: float = 0.05


def classify_write(status: int | None) -> str:
    """ok, fail (had no effect for sure) or unknown, from an HTTP status (None: no answer)."""
    if status == 202:
        return "ok"
    if status is not None and (400 <= status < 500 or status == 503):
        return "fail"
    return "unknown"


class Workload(PairRequests):
    """Runs ``processes`` client threads against ``endpoints`` and keeps the history."""

    def __init__(self, endpoints: dict[str, str], *, keys: int = 5, pairs: int = 2, processes: int = 6, seed: int = 0,
                 client_timeout: float = 1.0, mix: Mix | None = None, rate_per_process: float = 40.0,
                 tenant: str = TENANT, session_options: dict | None = None):
        """``session_options``: attributes set on each client's requests.Session (``headers`` for a bearer
        token, ``verify`` and ``cert`` for TLS), for a cluster with auth or TLS on."""
        self.endpoints = dict(endpoints)
        self.tenant = tenant
        self.session_options = dict(session_options or {})
        self.keys = [f"k{i}" for i in range(keys)]
        self.pairs = [f"pair{i}" for i in range(pairs)]
        self.processes = processes
        self.seed = seed
        self.client_timeout = client_timeout
        self.mix = mix or Mix()
        self.pause = 1.0 / rate_per_process
        self.history: list[Operation] = []
        self._ids = itertools.count()
        self._values = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clock = time.monotonic
        self.first_ack_after: dict[float, float | None] = {}

    def run(self, duration: float) -> list[Operation]:
        """Run for ``duration`` seconds (or until ``stop``) and return the history."""
        threads = [threading.Thread(target=self._process, args=(p, duration), daemon=True,
                                    name=f"workload-{p}") for p in range(self.processes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(duration + 5 * self.client_timeout + 5)
        return sorted(self.history, key=lambda op: op.call)

    def start(self, duration: float) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(duration,), daemon=True, name="workload")
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def first_ack_since(self, moment: float) -> float | None:
        """Seconds from ``moment`` (monotonic) to the first acknowledged write that was sent after it."""
        with self._lock:
            acks = [op.return_ for op in self.history
                    if op.kind in ("write", "cas", "delete") and op.status == "ok" and op.outcome is None
                    and op.call >= moment]
        return min(acks) - moment if acks else None

    # ---- one client -------------------------------------------------------------------
    def _process(self, process: int, duration: float) -> None:
        rng = random.Random(self.seed * 1000 + process)
        session = requests.Session()
        session.trust_env = False
        for name, value in self.session_options.items():
            if name == "headers":
                session.headers.update(value)
            else:
                setattr(session, name, value)
        seen: dict[str, tuple[str, int]] = {}
        deadline = self._clock() + duration
        kinds = [field.name for field in fields(Mix)]
        weights = [getattr(self.mix, kind) for kind in kinds]
        while self._clock() < deadline and not self._stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            key = rng.choice(self.pairs if kind.startswith(("txn_", "range_")) else self.keys)
            node = rng.choice(list(self.endpoints))
            if kind in ("cas", "txn_cas") and key not in seen:
                kind = kind.replace("cas", "write")
            op = getattr(self, f"_{kind}")(session, process, node, key, seen)
            with self._lock:
                self.history.append(op)
            time.sleep(rng.uniform(0, 2 * self.pause))
        session.close()

    def _send(self, session, method: str, node: str, key: str, **kwargs):
        return self._send_to(session, method, f"{self.endpoints[node]}/api/v1/keys/{self.tenant}/{key}", **kwargs)

    def _send_to(self, session, method: str, url: str, **kwargs):
        """(call time, return time or None, status or "refused" or None, response) of one request."""
        call = self._clock()
        try:
            response = session.request(method, url, timeout=self.client_timeout, **kwargs)
        except requests.ConnectionError as error:
            refused = "refused" in str(error).lower()
            return call, self._clock(), ("refused" if refused else None), None
        except requests.RequestException:
            return call, None, None, None
        return call, self._clock(), response.status_code, response

    def _new_op(self, process, node, key, kind, call, returned, status, **fields) -> Operation:
        return Operation(id=next(self._ids), process=process, node=node, key=key, kind=kind, call=call,
                         return_=returned if status != "unknown" else None, status=status, **fields)

    def _write(self, session, process, node, key, seen) -> Operation:
        value = f"v{next(self._values)}"
        call, returned, code, response = self._send(session, "POST", node, key, data=value.encode())
        status = "fail" if code == "refused" else classify_write(code)
        revision = response.json().get("revision") if status == "ok" else None
        if status == "ok":
            seen[key] = (value, revision)
        return self._new_op(process, node, key, "write", call, returned, status, value=value, revision=revision)

    def _cas(self, session, process, node, key, seen) -> Operation:
        expected, revision = seen.pop(key)
        value = f"v{next(self._values)}"
        call, returned, code, response = self._send(session, "POST", node, key, data=value.encode(),
                                                    headers={"If-Match": f'"{revision}"'})
        if code == 412:
            return self._new_op(process, node, key, "cas", call, returned, "ok", value=value, expected=expected,
                                outcome="precondition_failed")
        status = "fail" if code == "refused" else classify_write(code)
        new_revision = response.json().get("revision") if status == "ok" else None
        if status == "ok":
            seen[key] = (value, new_revision)
        return self._new_op(process, node, key, "cas", call, returned, status, value=value, expected=expected,
                            revision=new_revision)

    def _delete(self, session, process, node, key, seen) -> Operation:
        call, returned, code, _ = self._send(session, "DELETE", node, key)
        seen.pop(key, None)
        if code == 404:
            return self._new_op(process, node, key, "delete", call, returned, "ok", outcome="not_found")
        status = "fail" if code == "refused" else classify_write(code)
        return self._new_op(process, node, key, "delete", call, returned, status)

    def _read(self, session, process, node, key, seen, consistency: str) -> Operation:
        params = {"consistency": consistency} if consistency != "local" else {}
        call, returned, code, response = self._send(session, "GET", node, key, params=params)
        if code == 200:
            value = response.content.decode()
            revision = int(response.headers["X-Badkv-Revision"])
            seen[key] = (value, revision)
            return self._new_op(process, node, key, "read", call, returned, "ok", consistency=consistency,
                                value=value, revision=revision)
        if code == 404:
            return self._new_op(process, node, key, "read", call, returned, "ok", consistency=consistency)
        return self._new_op(process, node, key, "read", call, returned or call, "fail", consistency=consistency)

    def _read_linearizable(self, session, process, node, key, seen) -> Operation:
        return self._read(session, process, node, key, seen, "linearizable")

    def _read_local(self, session, process, node, key, seen) -> Operation:
        return self._read(session, process, node, key, seen, "local")
