"""How a node's state comes back from disk and goes into snapshots.

The write-ahead log (``wal.py``) knows frames, segments and files; the store
knows records. This module joins them: it rebuilds the store and the Raft log
from what ``WriteAheadLog.open`` found, and turns the store into a snapshot.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from badkv.config import Config
from badkv.raft import Log
from badkv.store import HybridClock, Record, Store
from badkv.wal import WriteAheadLog

logger = logging.getLogger(__name__)


@dataclass
class Recovered:
    """What a starting node has: its log (possibly empty), its term, and its WAL (None in memory)."""

    log: Log
    term: int
    wal: WriteAheadLog | None
    seconds: float = 0.0


def open_storage(config: Config, store: Store, clock: HybridClock) -> Recovered:
    """Open the data dir (unless in memory), load the newest snapshot into ``store``, and return the log.

    Raises the WAL's CorruptLogError / DataDirMismatch for the caller to report.
    """
    if config.in_memory:
        return Recovered(Log(), 0, None)
    started = time.monotonic()
    wal = WriteAheadLog(Path(config.data_dir))
    wal.record_factory = Record.from_dict  # build records while reading: no second copy as dicts
    recovery = wal.open(node=config.name, cluster_id=config.cluster_id, repair=config.repair)
    for message in recovery.truncated:
        logger.warning("%s: %s", config.name, message)
    for message in recovery.repaired:
        logger.warning("%s: repair: %s", config.name, message)
    log = Log()
    snapshot_count = len(recovery.snapshot_records)
    if recovery.snapshot is not None:
        meta = recovery.snapshot
        store.load(recovery.snapshot_records, meta.revision, meta.index)
        recovery.snapshot_records.clear()
        log = Log(meta.index, meta.term)
        clock.observe(meta.revision)
    log.append(recovery.entries)
    if recovery.entries:
        clock.observe(max(entry["revision"] for entry in recovery.entries))
    seconds = time.monotonic() - started
    logger.info("%s: recovered %d records from a snapshot and %d log entries in %.2fs", config.name,
                snapshot_count, len(recovery.entries), seconds)
    return Recovered(log, recovery.term, wal, seconds)


def starting_term(config: Config, persisted_term: int) -> int:
    """The term a static leader starts in: above any term it used before, even if its disk was replaced.

    Terms only need to grow across the leader's restarts; the wall clock in
    milliseconds covers a lost data dir, the persisted term a clock that stepped back.
    """
    if config.name != config.leader_name:
        return persisted_term
    return max(persisted_term + 1, time.time_ns() // 1_000_000)


def snapshot_records(records: list[Record]):
    """The store's records as the snapshot file stores them."""
    return (record.to_dict() for record in records)
