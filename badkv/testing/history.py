"""Records of the requests a client made during a test, and their JSON Lines form.

Fault tests record every request as an Operation with the times it was sent
and answered; badkv.testing.checker then judges the history. A history is
saved one operation per line, so a run that dies half-way still leaves a
readable file and a long history can be inspected with grep.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable

KINDS = ("read", "write", "delete", "cas")
STATUSES = ("ok", "fail", "unknown")
CONSISTENCIES = ("linearizable", "local")
# A definite answer other than plain success, and the one kind that can give it.
OUTCOME_KINDS = {"not_found": "delete", "precondition_failed": "cas"}


@dataclass
class Operation:
    """One request and what its client learnt about it.

    status is "ok" when the request was served, "fail" when it certainly had
    no effect, and "unknown" when it may or may not have taken effect (a
    timeout, a dropped connection). outcome records a definite answer that
    is not plain success: "not_found" for a delete answered 404, and
    "precondition_failed" for a compare-and-set answered 412. Values written
    must be unique across a history, so a value names the request that wrote it.
    """

    id: int
    process: int  # the client thread that sent it
    node: str  # the node it was sent to
    key: str
    kind: str  # read, write, delete or cas
    call: float  # monotonic seconds when it was sent
    return_: float | None  # monotonic seconds when the answer came; None if none came
    status: str  # ok, fail or unknown
    consistency: str = "linearizable"  # for reads: linearizable or local
    value: str | None = None  # write/cas: the value written; read: the value returned (None: not found)
    expected: str | None = None  # cas: the value whose revision was sent in If-Match
    revision: int | None = None  # the revision the server reported
    outcome: str | None = None  # not_found or precondition_failed, see above

    def __post_init__(self) -> None:
        _require(self.kind in KINDS, f"kind must be one of {KINDS}, not {self.kind!r}")
        _require(self.status in STATUSES, f"status must be one of {STATUSES}, not {self.status!r}")
        _require(
            self.consistency in CONSISTENCIES,
            f"consistency must be one of {CONSISTENCIES}, not {self.consistency!r}",
        )
        if self.kind in ("write", "cas"):
            _require(self.value is not None, f"a {self.kind} must carry the value it writes (operation {self.id})")
        if self.outcome is not None:
            kind = OUTCOME_KINDS.get(self.outcome)
            _require(kind is not None, f"unknown outcome {self.outcome!r}")
            _require(kind == self.kind, f"outcome {self.outcome!r} belongs to a {kind}, not a {self.kind}")
            _require(self.status != "unknown", "an outcome is a definite answer, so its status cannot be 'unknown'")
        if self.return_ is not None:
            _require(self.return_ >= self.call, f"operation {self.id} returns before it was called")

    @property
    def is_open(self) -> bool:
        """True when the request may still take effect: no answer, or an unknown one."""
        return self.return_ is None or self.status == "unknown"

    @property
    def effective_return(self) -> float:
        """When the request stopped being able to take effect: infinity for open requests."""
        return math.inf if self.is_open else self.return_

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["return"] = data.pop("return_")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        data = dict(data)
        if "return" in data:
            data["return_"] = data.pop("return")
        unknown = set(data) - {field.name for field in fields(cls)}
        _require(not unknown, f"unknown operation fields: {sorted(unknown)}")
        return cls(**data)


def save_history(path: str | Path, ops: Iterable[Operation]) -> None:
    """Write a history as JSON Lines, one operation per line."""
    with open(path, "w", encoding="utf-8") as out:
        for op in ops:
            out.write(json.dumps(op.to_dict(), sort_keys=True))
            out.write("\n")


def load_history(path: str | Path) -> list[Operation]:
    """Read a history written by save_history; blank lines are skipped."""
    with open(path, encoding="utf-8") as source:
        return [Operation.from_dict(json.loads(line)) for line in source if line.strip()]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
