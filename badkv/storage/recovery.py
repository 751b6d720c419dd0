"""How a node's state comes back from disk and goes into snapshots.

The write-ahead log (``badkv.storage.wal``) knows frames, segments and files; the
store knows records. This module joins them: it loads the store from what
``WriteAheadLog.open`` found and hands back the log entries after the snapshot, for
the caller to build its consensus log from; and it turns the store into a snapshot.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from badkv.config import Config
from badkv.storage.memory_wal import MemoryWal
from badkv.storage.log_contract import Recovery
from badkv.storage.wal import WriteAheadLog
from badkv.clock import HybridClock
from badkv.records import Record
from badkv.store import Store

logger = logging.getLogger(__name__)

# Above this many records after recovery, the objects recovery made are moved out of the cyclic
# collector's reach (gc.freeze). Below it, full collections are cheap and tests keep a normal heap.
FREEZE_RECORDS = 100_000


@dataclass
class Recovered:
    """What a starting node has: the snapshot's position (0 and 0 without one), the log entries
    after it, its term and vote, and its log to write on (a MemoryWal in memory)."""

    base_index: int
    base_term: int
    entries: list[dict]
    term: int
    voted_for: str | None
    wal: WriteAheadLog | MemoryWal
    seconds: float = 0.0
    snapshot_record_count: int = 0
    membership: dict | None = None  # the snapshot's membership (wire form), if it kept one


def open_storage(config: Config, store: Store, clock: HybridClock) -> Recovered:
    """Open the data dir (unless in memory), load the newest snapshot into ``store``, and return the log.

    Raises the WAL's CorruptLogError / DataDirMismatch for the caller to report.
    """
    if config.in_memory:
        wal = MemoryWal()
        recovery = wal.open(node=config.name, cluster_id=config.cluster_id)
        return Recovered(0, 0, recovery.entries, recovery.term, recovery.voted_for, wal,
                         membership=recovery.snapshot.membership if recovery.snapshot else None)
    started = time.monotonic()
    with _without_cyclic_gc():  # a million new records would set off full collections that free nothing
        recovered = _recover(config, store, clock)
    if len(store) >= FREEZE_RECORDS:
        gc.freeze()  # and keep later collections from walking them again: records hold no cycles
    recovered.seconds = time.monotonic() - started
    logger.info("%s: recovered %d records from a snapshot and %d log entries in %.2fs", config.name,
                recovered.snapshot_record_count, len(recovered.entries), recovered.seconds)
    return recovered


def _recover(config: Config, store: Store, clock: HybridClock) -> Recovered:
    wal = WriteAheadLog(Path(config.data_dir))
    wal.record_factory = Record.from_dict  # build records while reading: no second copy as dicts
    wal.entry_factory = compact_entry
    recovery = wal.open(node=config.name, cluster_id=config.cluster_id, repair=config.repair)
    _log_what_was_dropped(config, recovery)
    base_index = base_term = 0
    membership = None
    snapshot_count = len(recovery.snapshot_records)
    if recovery.snapshot is not None:
        meta = recovery.snapshot
        store.load(_emptied_as_read(recovery.snapshot_records), meta.revision, meta.index, meta.horizon)
        base_index, base_term, membership = meta.index, meta.term, meta.membership
        clock.observe(meta.revision)
    if recovery.entries:
        clock.observe(max(entry["revision"] for entry in recovery.entries))
    return Recovered(base_index, base_term, recovery.entries, recovery.term, recovery.voted_for, wal,
                     snapshot_record_count=snapshot_count, membership=membership)


def check_storage(config: Config) -> None:
    """Open the data dir as a starting node would, reading and checking every frame and record, but
    keep none of it: the ``badkv`` command's check before gunicorn starts (with -repair, the cut).

    Raises what ``open_storage`` raises. Records are built and dropped one at a time, so the check
    costs a fraction of a recovery and none of its memory.
    """
    started = time.monotonic()
    with _without_cyclic_gc():
        wal = WriteAheadLog(Path(config.data_dir))
        wal.record_factory = _check_record
        recovery = wal.open(node=config.name, cluster_id=config.cluster_id, repair=config.repair)
        wal.close()
    _log_what_was_dropped(config, recovery)
    logger.info("%s: checked %d snapshot records and %d log entries in %.2fs", config.name,
                len(recovery.snapshot_records), len(recovery.entries), time.monotonic() - started)


def _emptied_as_read(items: list):
    """Yield the items of ``items``, then empty the list: a million-record list is gone before the
    store sorts its revision index (the recovery's peak), not after."""
    yield from items
    items.clear()


def _log_what_was_dropped(config: Config, recovery: Recovery) -> None:
    for message in recovery.truncated:
        logger.warning("%s: %s", config.name, message)
    for message in recovery.repaired:
        logger.warning("%s: repair: %s", config.name, message)


@contextlib.contextmanager
def _without_cyclic_gc():
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _check_record(data: dict) -> bool:
    Record.from_dict(data)  # raises on a missing field or a wrong type, as loading it would
    return True


def compact_entry(entry: dict) -> dict:
    """A log entry read back from disk, sharing what many entries repeat: the op and tenant strings
    (interned, as records' tenants are) and, for a write without a timestamp, the revision's int as its
    timestamp. A hundred thousand replayed entries are otherwise about 14 MB of copies."""
    for field in ("op", "tenant"):
        if type(entry.get(field)) is str:
            entry[field] = sys.intern(entry[field])
    revision = entry.get("revision")
    if revision is not None and entry.get("timestamp") == revision:
        entry["timestamp"] = revision
    return entry


class SnapshotRecords:
    """The store's records as the snapshot file stores them: sized (the snapshot header
    counts them) but made one at a time, so a million records never exist twice as dicts."""

    def __init__(self, records: list[Record]):
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self):
        return (record.to_dict() for record in self._records)
