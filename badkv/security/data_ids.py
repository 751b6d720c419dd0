"""Telling a member that kept its state from one started again on an empty data dir under its name.

A Raft member promises what it has on disk: its vote and the entries it acknowledged. A member whose
data dir was lost and that comes back under its old name with an empty one has forgotten those promises,
and counting it again as a voter can lose committed entries (it may vote for a candidate that lacks them,
and it holds none of the entries it helped commit). So every data dir draws a random id once
(``meta.json``), every peer call names it, and each node keeps the first id it heard from each member
(``peers.json``, in its own data dir). A call that names another id for a known member is refused with
409 ``data_dir_changed``, logged on both sides, and nothing changes: the operator removes the member and
adds it again (``POST /admin/members``, then ``-join``), which forgets its old id everywhere. A call that
names no id (an in-memory node, or a node of a release before data ids) is not checked.
"""

from __future__ import annotations

import threading
from typing import Callable

from badkv.errors import DataDirChanged

DATA_ID = "X-Badkv-Data-Id"
# On a call to a member whose answers come from another data dir than it had: the id this node knew, so the
# member (which heard nothing wrong: its new data dir knows no one yet) says so in its own log.
DATA_DIR_CHANGED = "X-Badkv-Data-Dir-Changed"


class DataIds:
    """The data id first heard from each member, kept through ``save`` (called with the whole map)."""

    def __init__(self, known: dict[str, str], save: Callable[[dict[str, str]], None]):
        self._known = dict(known)
        self._changed: set[str] = set()  # members last heard with another id than the one kept
        self._save = save
        self._lock = threading.Lock()

    def check(self, member: str, data_id: str) -> None:
        """Raise DataDirChanged if ``member`` was heard with another data id; remember a first one."""
        if not data_id:
            return
        with self._lock:
            known = self._known.get(member)
            if known == data_id:
                self._changed.discard(member)
                return
            if known is not None:
                self._changed.add(member)
                raise DataDirChanged(
                    f"{member} now runs on another data dir (data id {data_id}, this node knew {known}): a member "
                    f"that lost its state must not vote again under its old name; remove it "
                    f"(DELETE /admin/members/{member}) and add it again with a join token")
            self._known[member] = data_id
            self._save(dict(self._known))

    def keep_only(self, members) -> None:
        """The membership changed: forget the ids of names no longer in it, so a name removed and added
        again may come with a new data dir."""
        with self._lock:
            gone = [name for name in self._known if name not in members]
            for name in gone:
                del self._known[name]
                self._changed.discard(name)
            if gone:
                self._save(dict(self._known))

    def changed(self, member: str) -> str | None:
        """The id kept for ``member`` if it was last heard with another one, else None."""
        with self._lock:
            return self._known.get(member) if member in self._changed else None

    def known(self, member: str) -> str | None:
        with self._lock:
            return self._known.get(member)
