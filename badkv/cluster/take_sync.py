"""Take sync: a follower's periodic anti-entropy pull of the leader's ``take`` feed.

Log replication normally brings every write already, so a sync usually
applies nothing; it repairs a follower that missed entries the leader can no
longer send from its log. Records are applied only when newer by revision,
one revision's records (a transaction's) at once.

Tombstone gc: a sync never merges across the leader's horizon. Told 410 (its
cursor is older than the horizon), a follower that has applied every entry
below the horizon through its log has nothing to repair there and goes on from
the horizon; one that has not waits for its log (or a copy of the leader's
state, ``copy_whole``), since a merge could keep keys whose tombstones the
leader removed. A copy of the leader's state replaces the store, never merges.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from badkv.errors import CursorExpired
from badkv.records import Record
from badkv.store import DROPPED_TENANT, Store

logger = logging.getLogger(__name__)


@dataclass
class Copy:
    """The leader's whole state as ``copy_whole`` read it: its records, the revision it had applied at the
    end, the cursor to sync on from, and its gc horizon."""

    records: list[Record]
    revision: int
    cursor: int
    horizon: int


class TakeSync:
    """Pages through a take feed from a cursor and applies what is newer; counts what it did.

    One pass runs at a time. ``reset`` and ``resume_from`` (a snapshot install that replaced the store)
    may come while a pass runs: they never wait for it, and that pass then leaves the cursor where they
    put it instead of moving it on.
    """

    def __init__(self, store: Store, fetch_page: Callable[[int, int], dict], page_limit: int = 1000,
                 name: str = ""):
        self.store = store
        self.name = name  # the node's, for its log lines
        self.fetch_page = fetch_page
        self.page_limit = page_limit
        self._one_pass = threading.Lock()
        self._resets = 0  # bumped by reset; a pass advances the cursor only if it did not change
        self.cursor = 0
        self.runs = 0
        self.records_seen = 0
        self.records_applied = 0
        self.errors = 0
        self.expired = 0  # passes told 410 while this store had not applied everything below the horizon
        self.last_source_revision = 0

    def reset(self) -> None:
        """Start the next sync from the beginning (after the store was reset)."""
        self.resume_from(0)

    def resume_from(self, cursor: int) -> None:
        """Start the next sync at ``cursor`` (after the store was replaced by a copy that ended there)."""
        self._resets += 1
        self.cursor = cursor

    def copy_whole(self, attempts: int = 3) -> Copy:
        """The source's whole state, paged from take/0 into a list of its own (the store is not touched),
        again from 0 if a gc overtook the copy (410 on a later page). Records of a tenant dropped while the
        copy ran are left out, as the store's drop would leave them."""
        for _ in range(attempts):
            latest: dict = {}
            cursor = revision = 0
            try:
                while True:
                    page = self.fetch_page(cursor, self.page_limit)
                    for data in page["records"]:
                        record = Record.from_json(data)
                        latest[record.key] = record  # pages come in revision order: a later one is newer
                    cursor, revision = max(cursor, int(page["next"])), int(page.get("revision", 0))
                    if len(page["records"]) < self.page_limit:
                        break
                horizon = self._horizon_of_source()
            except CursorExpired:
                continue
            return Copy(_without_dropped(latest.values()), revision, cursor, horizon)
        raise RuntimeError(f"the leader's tombstone gc overtook each of {attempts} copies of its take feed")

    def _horizon_of_source(self) -> int:
        """The source's gc horizon: the oldest cursor it answers, as asking it for take/1 tells."""
        try:
            self.fetch_page(1, 1)
        except CursorExpired as expired:
            return expired.horizon
        return 0

    def sync_once(self) -> int:
        """One full pass from the cursor to the end of the feed; returns records applied.

        Exceptions from ``fetch_page`` propagate after being counted; the cursor
        keeps the last page that was applied, so the next run resumes there.
        """
        with self._one_pass:
            applied = 0
            try:
                while True:
                    resets, cursor = self._resets, self.cursor
                    try:
                        page = self.fetch_page(cursor, self.page_limit)
                    except CursorExpired as expired:
                        if not self._past_horizon(expired.horizon, resets):
                            break
                        continue
                    records = page["records"]
                    for same_revision in _by_revision(records):
                        applied += self.store.apply_all_if_newer(same_revision)
                    self.records_seen += len(records)
                    self.last_source_revision = int(page.get("revision", 0))
                    if self._resets != resets:
                        break  # the store was emptied under this page: the next pass starts over
                    self.cursor = max(cursor, int(page["next"]))
                    if len(records) < self.page_limit:
                        break
            except Exception:
                self.errors += 1
                raise
            finally:
                self.records_applied += applied
            self.runs += 1
            return applied

    def _past_horizon(self, horizon: int, resets: int) -> bool:
        """Told 410: move the cursor to the source's ``horizon`` if this store applied every entry below it
        through its log (nothing below it is left to repair); else count it and leave the cursor."""
        if self.store.applied_revision + 1 >= horizon and self._resets == resets:
            logger.info("%s: take sync: cursor %d is behind the leader's horizon %d, which this node has applied "
                        "past; going on from there", self.name, self.cursor, horizon)
            self.cursor = max(self.cursor, horizon)
            return True
        self.expired += 1
        logger.warning("%s: take sync: cursor %d is behind the leader's horizon %d and this node has applied "
                       "only through revision %d; waiting for the log or a copy of the leader's state", self.name,
                       self.cursor, horizon, self.store.applied_revision)
        return False

    def stats(self) -> dict:
        return {"runs": self.runs, "records_seen": self.records_seen, "records_applied": self.records_applied,
                "errors": self.errors, "cursor": self.cursor, "expired": self.expired}


def _without_dropped(records) -> list[Record]:
    """``records`` less those of a tenant dropped after them (a drop marker of ``_dropped`` newer than them)."""
    records = list(records)
    dropped = {record.name: record.revision for record in records
               if record.tenant == DROPPED_TENANT and not record.deleted}
    return [record for record in records if record.revision >= dropped.get(record.tenant, 0)]


def _by_revision(page: list[dict]):
    """The page's records, a list per revision: a transaction's records are stored together (a page
    never splits a revision), so no reader here sees half of one."""
    group: list[Record] = []
    for data in page:
        record = Record.from_json(data)
        if group and record.revision != group[-1].revision:
            yield group
            group = []
        group.append(record)
    if group:
        yield group
