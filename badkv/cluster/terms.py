"""The term a static leader starts in."""

from __future__ import annotations

import time

from badkv.config import Config


def starting_term(config: Config, persisted_term: int) -> int:
    """The term a static leader starts in: above any term it used before, even if its disk was replaced.

    Terms only need to grow across the leader's restarts; the wall clock in
    milliseconds covers a lost data dir, the persisted term a clock that stepped back.
    """
    if config.name != config.leader_name:
        return persisted_term
    return max(persisted_term + 1, time.time_ns() // 1_000_000)
