"""What both logs (``WriteAheadLog`` and ``MemoryWal``) promise: what ``open`` returns, and the bad
calls they refuse, with the very same errors."""

import dataclasses

from badkv.storage.snapshot_files import SnapshotMeta


@dataclasses.dataclass
class Recovery:
    """What open() found on disk.

    ``truncated`` describes what was dropped or skipped automatically (torn tails,
    unreadable snapshots); ``repaired`` what ``repair=True`` dropped.
    """

    snapshot: SnapshotMeta | None
    snapshot_records: list[dict]
    entries: list[dict]
    term: int
    voted_for: str | None
    truncated: list[str]
    repaired: list[str]


def check_consecutive(entries: list[dict]) -> int:
    """The first index of ``entries``, a non-empty batch whose indexes must follow one another."""
    first = entries[0]["index"]
    for position, entry in enumerate(entries):
        if entry["index"] != first + position:
            raise ValueError(f"entry indexes must be consecutive: {entry['index']} follows {first + position - 1}")
    return first


def check_continues(first: int, last_index: int) -> None:
    if first != last_index + 1:
        raise ValueError(f"entry {first} does not continue the log, which ends at {last_index}")


def check_within(index: int, last_index: int) -> None:
    if index > last_index:
        raise ValueError(f"cannot flush through entry {index}: the log ends at {last_index}")


def check_after_snapshot(index: int, base_index: int) -> None:
    if index <= base_index:
        raise ValueError(f"cannot truncate from {index}: the snapshot covers entries to {base_index}")


def check_not_older(index: int, base_index: int) -> None:
    if index < base_index:
        raise ValueError(f"snapshot at {index} is older than the one at {base_index}")
