"""Which filesystem a path lives on, so a "durable" number is known to come from a real disk.

Data on tmpfs (e.g. /dev/shm) is memory: fsync returns at once there, and a
benchmark of durable writes or of recovery measured on it would flatter badkv.
"""

import os
from dataclasses import dataclass
from pathlib import Path

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})
DEFAULT_DATA_PARENT = Path("/var/tmp")


@dataclass(frozen=True)
class Filesystem:
    mount_point: str
    fstype: str
    device: str

    @property
    def in_memory(self):
        return self.fstype in MEMORY_FILESYSTEMS

    def describe(self):
        kind = "in memory: fsync costs nothing here" if self.in_memory else "on disk"
        return f"{self.fstype} ({self.device} mounted on {self.mount_point}; {kind})"


def _unescape(field):
    """/proc/mounts writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def filesystem_of(path, mounts_text=None):
    """The Filesystem holding `path` (the mount with the longest matching mount point), or None if unknown.

    `mounts_text` is the content of /proc/mounts (read from there when None). The
    last of several mounts on the same point wins, as the kernel shows it.
    """
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best = None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount_point, fstype = _unescape(fields[0]), _unescape(fields[1]), fields[2]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) >= len(best.mount_point)):
            best = Filesystem(mount_point, fstype, device)
    return best


def default_data_parent(fallback):
    """/var/tmp (on the root disk on most systems, unlike /tmp, which may be tmpfs) or `fallback`."""
    return DEFAULT_DATA_PARENT if DEFAULT_DATA_PARENT.is_dir() else Path(fallback)
