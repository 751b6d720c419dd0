"""``Ready``: what a core hands its caller to do, and the hard state it must persist first."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HardState:
    """What must be on disk before the node says anything in this term."""

    term: int
    voted_for: str | None


@dataclass
class Ready:
    """What the caller must do: persist the hard state, cut and append the log, apply ``committed``,
    then send ``messages`` (a leader may send before its own fsync finishes). Empty means nothing.
    ``notes`` are the core's decisions worth a log line (elections, step-downs), with a level."""

    hard_state: HardState | None = None
    truncate_from: int | None = None  # drop the durable log from here before appending ``entries``
    entries: list[dict] = field(default_factory=list)
    committed: list[dict] = field(default_factory=list)
    messages: list = field(default_factory=list)
    # (index, term, membership wire form or None): copy the leader's state; its log starts after it
    install: tuple[int, int, dict | None] | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)  # (level, text): "info" or "warning"
