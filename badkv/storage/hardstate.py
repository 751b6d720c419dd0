"""The ``state`` file: the current term and vote, one frame, replaced atomically on every change.

Unlike the log, this cannot be rebuilt from other members, so a damaged file stops
recovery with ``STATE_HINT`` instead of being cut like a torn log tail.
"""

import threading

from badkv.storage.frames import CorruptLogError, decode_frames, encode_frame
from badkv.storage.snapshot_files import write_file_atomically

STATE_HINT = "the term and vote cannot be rebuilt; replace this member with one that starts from an empty data dir"


class HardState:
    """The term-and-vote file at ``path``; ``sync_file`` makes a file descriptor durable."""

    def __init__(self, path: str, sync_file):
        self.path = path
        self._sync_file = sync_file
        # Two savers at once would share the one temp file name.
        self._lock = threading.Lock()

    def load(self) -> tuple[int, str | None]:
        """(term, voted_for) as last saved, or (0, None) before the first save."""
        try:
            with open(self.path, "rb") as state_file:
                items, problem = decode_frames(state_file.read())
        except FileNotFoundError:
            return 0, None
        if problem is not None:
            raise CorruptLogError(self.path, problem.offset, problem.reason, STATE_HINT)
        if len(items) != 1 or not isinstance(items[0], dict) or "term" not in items[0]:
            raise CorruptLogError(self.path, 0, "not a term-and-vote record", STATE_HINT)
        return items[0]["term"], items[0].get("voted_for")

    def save(self, term: int, voted_for: str | None) -> None:
        """Durably record the current term and vote."""
        with self._lock:
            state = encode_frame({"term": term, "voted_for": voted_for})
            write_file_atomically(self.path, [state], self._sync_file)
