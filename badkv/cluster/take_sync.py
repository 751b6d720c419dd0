"""Take sync: a follower's periodic anti-entropy pull of the leader's ``take`` feed.

Log replication normally brings every write already, so a sync usually
applies nothing; it repairs a follower that missed entries the leader can no
longer send from its log. Records are applied only when newer by revision,
one revision's records (a transaction's) at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from badkv.records import Record
from badkv.store import Store

logger = logging.getLogger(__name__)


class TakeSync:
    """Pages through a take feed from a cursor and applies what is newer; counts what it did.

    Two threads run passes (the periodic sync and a snapshot install); one pass runs at a time.
    ``reset`` (a snapshot install starting over from zero) may come while the other thread's pass
    runs: it never waits for that pass, which then leaves the cursor at zero instead of moving it
    on, so the install's own pass copies the whole feed.
    """

    def __init__(self, store: Store, fetch_page: Callable[[int, int], dict], page_limit: int = 1000):
        self.store = store
        self.fetch_page = fetch_page
        self.page_limit = page_limit
        self._one_pass = threading.Lock()
        self._resets = 0  # bumped by reset; a pass advances the cursor only if it did not change
        self.cursor = 0
        self.runs = 0
        self.records_seen = 0
        self.records_applied = 0
        self.errors = 0
        self.last_source_revision = 0

    def reset(self) -> None:
        """Start the next sync from the beginning (after the store was reset)."""
        self._resets += 1
        self.cursor = 0

    def copy_from_start(self, attempts: int = 3) -> int:
        """Pass through the whole feed from the beginning, again if the store was reset meanwhile;
        returns records applied. A snapshot install relies on the copy being whole."""
        applied = 0
        for _ in range(attempts):
            self.reset()
            resets = self._resets
            applied += self.sync_once()
            if self._resets == resets:
                return applied
        raise RuntimeError(f"the store was reset during each of {attempts} passes over the leader's take feed")

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
                    page = self.fetch_page(cursor, self.page_limit)
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

    def stats(self) -> dict:
        return {"runs": self.runs, "records_seen": self.records_seen, "records_applied": self.records_applied,
                "errors": self.errors, "cursor": self.cursor}


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
