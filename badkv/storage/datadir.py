"""A data dir's identity: one process at a time (an flock on LOCK), one node of one cluster (meta.json).

A data directory holds:

- ``LOCK``: held with flock while a process has the log open;
- ``meta.json``: the node name and cluster id it belongs to, and a random ``data_id`` drawn when the dir is
  made, so that peers can tell a member that kept its state from one started again on an empty dir (written
  once, atomically; a dir made before data ids gets one at its next start);
- ``peers.json``: the data id first heard from each member (``badkv/security/data_ids.py``);
- ``state``: the current term and vote (``badkv.storage.hardstate``);
- ``wal/``: the log's segment files (``badkv.storage.segments``);
- ``snap/``: the newest two snapshots (``badkv.storage.snapshot_files``).
"""

import fcntl
import json
import logging
import os
import secrets

from badkv.storage.snapshot_files import write_file_atomically

LOCK_NAME = "LOCK"
META_NAME = "meta.json"
PEERS_NAME = "peers.json"
STATE_NAME = "state"

logger = logging.getLogger(__name__)


class DataDirMismatch(Exception):
    """The data directory belongs to another node or cluster, or is in use."""


class DataDir:
    """The folders of one data dir, and the claim on it: ``claim`` before use, ``release`` after.

    ``sync_file`` is called with each file descriptor to make durable, ``sync_folder`` with each
    folder whose entries changed; the write-ahead log passes its own, which count and time fsyncs.
    """

    def __init__(self, directory, *, sync_file, sync_folder):
        self.directory = os.fspath(directory)
        self.wal_dir = os.path.join(self.directory, "wal")
        self.snap_dir = os.path.join(self.directory, "snap")
        self.state_path = os.path.join(self.directory, STATE_NAME)
        self._sync_file = sync_file
        self._sync_folder = sync_folder
        self._lock_file = None
        self.data_id: str | None = None  # known once claimed

    def claim(self, node: str, cluster_id: str) -> None:
        """Take the dir for ``node`` of ``cluster_id`` (creating it on first use); DataDirMismatch if not theirs."""
        os.makedirs(self.directory, exist_ok=True)
        self._lock_file = open(os.path.join(self.directory, LOCK_NAME), "a+b")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"data dir {self.directory} is in use by another process; refusing to start"
            raise DataDirMismatch(message) from None
        meta_path = os.path.join(self.directory, META_NAME)
        if os.path.exists(meta_path):
            self.data_id = self._check_meta(meta_path, node, cluster_id)
        else:
            self._check_no_data_without_meta()
        if self.data_id is None:
            self.data_id = secrets.token_hex(16)
            meta = json.dumps({"node": node, "cluster_id": cluster_id, "data_id": self.data_id}).encode() + b"\n"
            write_file_atomically(meta_path, [meta], self._sync_file)
        for folder in (self.wal_dir, self.snap_dir):
            os.makedirs(folder, exist_ok=True)
        self._sync_folder(self.directory)

    def release(self) -> None:
        """Let go of the LOCK flock (closing the file drops it); harmless if never claimed."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def peer_data_ids(self) -> dict[str, str]:
        """The data ids first heard from each member ({} before any was kept)."""
        try:
            with open(os.path.join(self.directory, PEERS_NAME), "rb") as peers_file:
                known = json.loads(peers_file.read())
        except FileNotFoundError:
            return {}
        except ValueError:
            logger.warning("data dir %s: unreadable %s; the members' data ids are learnt again", self.directory,
                           PEERS_NAME)
            return {}
        return {name: value for name, value in known.items() if isinstance(value, str)}

    def save_peer_data_ids(self, known: dict[str, str]) -> None:
        write_file_atomically(os.path.join(self.directory, PEERS_NAME),
                              [json.dumps(known, sort_keys=True).encode() + b"\n"], self._sync_file)

    def _check_meta(self, meta_path: str, node: str, cluster_id: str) -> str | None:
        """Raise DataDirMismatch unless the dir is ``node``'s of ``cluster_id``; return its data id (None in a dir
        made before data ids)."""
        try:
            with open(meta_path, "rb") as meta_file:
                meta = json.loads(meta_file.read())
            found_node, found_cluster = meta["node"], meta["cluster_id"]
        except (ValueError, KeyError, TypeError) as error:
            raise DataDirMismatch(
                f"data dir {self.directory} has an unreadable meta.json ({error}); refusing to start"
            ) from None
        if (found_node, found_cluster) != (node, cluster_id):
            raise DataDirMismatch(
                f"data dir {self.directory} belongs to node {found_node!r} of cluster {found_cluster!r},"
                f" not node {node!r} of cluster {cluster_id!r}; refusing to start"
            )
        data_id = meta.get("data_id")
        return data_id if isinstance(data_id, str) and data_id else None

    def _check_no_data_without_meta(self) -> None:
        """Refuse a dir with a log or snapshots but no meta.json: it cannot be told whose they are."""
        folders = [folder for folder in (self.wal_dir, self.snap_dir) if os.path.isdir(folder)]
        if os.path.exists(self.state_path) or any(os.listdir(folder) for folder in folders):
            raise DataDirMismatch(
                f"data dir {self.directory} holds data but no meta.json naming its node and cluster; refusing to start"
            )
