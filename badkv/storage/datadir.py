"""A data dir's identity: one process at a time (an flock on LOCK), one node of one cluster (meta.json).

A data directory holds:

- ``LOCK``: held with flock while a process has the log open;
- ``meta.json``: the node name and cluster id it belongs to (written once, atomically);
- ``state``: the current term and vote (``badkv.storage.hardstate``);
- ``wal/``: the log's segment files (``badkv.storage.segments``);
- ``snap/``: the newest two snapshots (``badkv.storage.snapshot_files``).
"""

import fcntl
import json
import os

from badkv.storage.snapshot_files import write_file_atomically

LOCK_NAME = "LOCK"
META_NAME = "meta.json"
STATE_NAME = "state"


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
            self._check_meta(meta_path, node, cluster_id)
        else:
            self._check_no_data_without_meta()
            meta = json.dumps({"node": node, "cluster_id": cluster_id}).encode() + b"\n"
            write_file_atomically(meta_path, [meta], self._sync_file)
        for folder in (self.wal_dir, self.snap_dir):
            os.makedirs(folder, exist_ok=True)
        self._sync_folder(self.directory)

    def release(self) -> None:
        """Let go of the LOCK flock (closing the file drops it); harmless if never claimed."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _check_meta(self, meta_path: str, node: str, cluster_id: str) -> None:
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

    def _check_no_data_without_meta(self) -> None:
        """Refuse a dir with a log or snapshots but no meta.json: it cannot be told whose they are."""
        folders = [folder for folder in (self.wal_dir, self.snap_dir) if os.path.isdir(folder)]
        if os.path.exists(self.state_path) or any(os.listdir(folder) for folder in folders):
            raise DataDirMismatch(
                f"data dir {self.directory} holds data but no meta.json naming its node and cluster; refusing to start"
            )
