"""Backup files: download one from a node, and seed a new node's data dir from one.

A backup is a snapshot file (``badkv/storage/snapshot_files.py``): a header,
one frame per record, and a trailer, each checksummed, so a damaged or
truncated copy is refused before anything is written.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from badkv.storage.datadir import LOCK_NAME
from badkv.storage.frames import CorruptLogError
from badkv.storage.snapshot_files import read_snapshot_file
from badkv.storage.wal import WriteAheadLog


class RestoreError(Exception):
    """A restore that must not go ahead; the message says why."""


def _progress(label: str, done: int, total: int | None) -> None:
    if not sys.stderr.isatty():
        return
    if total:
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    else:
        sys.stderr.write(f"\r{label} {done:,} bytes")
    sys.stderr.flush()


def download_backup(client, path: str) -> int:
    """Save GET /admin/backup of ``client``'s node to ``path`` (atomically); returns the bytes written."""
    temporary = f"{path}.partial"
    written = 0
    response = client.session.get(client.endpoint + "/admin/backup", stream=True, timeout=client.timeout)
    response.raise_for_status()
    with open(temporary, "wb") as out:
        for chunk in response.iter_content(1 << 20):
            out.write(chunk)
            written += len(chunk)
            _progress("backup", written, None)
        out.flush()
        os.fsync(out.fileno())
    read_snapshot_file(temporary)  # refuse to keep a copy that did not arrive whole
    os.replace(temporary, path)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return written


def _refuse_if_in_use(target: Path) -> None:
    """A running node holds an flock on DATA_DIR/LOCK; never delete its files under it."""
    lock_path = target / LOCK_NAME
    if not lock_path.exists():
        return
    with open(lock_path, "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreError(f"{target} is in use by a running node; stop it first") from None
        fcntl.flock(lock_file, fcntl.LOCK_UN)


def restore_backup(path: str, data_dir: str, *, node: str, cluster_id: str, force: bool = False) -> int:
    """Seed ``data_dir`` for ``node`` from the backup at ``path``; returns the number of records."""
    try:
        meta, records = read_snapshot_file(path)
    except CorruptLogError as error:
        raise RestoreError(f"the backup {path} is damaged: {error}") from None
    except OSError as error:
        raise RestoreError(f"cannot read {path}: {error.strerror or error}") from None
    target = Path(data_dir)
    if target.exists() and any(target.iterdir()):
        if not force:
            raise RestoreError(f"{data_dir} is not empty; pass --force to replace what is there")
        _refuse_if_in_use(target)
        for child in ("wal", "snap"):
            for file in (target / child).glob("*") if (target / child).exists() else ():
                file.unlink()
        for file in ("state", "meta.json"):
            (target / file).unlink(missing_ok=True)
    records = list(records)
    wal = WriteAheadLog(target)
    wal.open(node=node, cluster_id=cluster_id)
    try:
        wal.save_state(meta.term, None)

        def counted():
            for position, record in enumerate(records, 1):
                if position % 10000 == 0 or position == len(records):
                    _progress("restore", position, len(records))
                yield record

        # (Without the backed-up cluster's membership: the restored node starts a cluster of its own, whose
        # members its -cluster flag names.)
        wal.write_snapshot(index=meta.index, term=meta.term, revision=meta.revision, records=counted(),
                           horizon=meta.horizon)
    finally:
        wal.close()
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return len(records)
