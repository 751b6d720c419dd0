"""The consensus core: Raft's log replication as a pure state machine.

No sockets, no clock, no threads: the caller passes ``now`` in, sends the
messages this module builds, persists what it is told to, and feeds answers
back. Leadership is static for now (the first cluster member leads, see
design section 5), but the log carries terms and the protocol is
AppendEntries, so elections slot in here later.

Commit rule ("write succeeds upon propagation"): an entry of the current term
commits once every in-sync follower *and* a majority of the cluster (leader
included) hold it durably. A follower that has not answered for
``isr_timeout`` leaves the in-sync set; it rejoins once it has caught up.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Log:
    """The in-memory log: entries ``base_index+1 .. last_index`` (dicts with index and term)."""

    def __init__(self, base_index: int = 0, base_term: int = 0):
        self.base_index = base_index
        self.base_term = base_term
        self.entries: list[dict] = []

    @property
    def last_index(self) -> int:
        return self.base_index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1]["term"] if self.entries else self.base_term

    def term_at(self, index: int) -> int | None:
        """The term of entry ``index``; None when it is beyond the log or compacted away."""
        if index == self.base_index:
            return self.base_term
        if self.base_index < index <= self.last_index:
            return self.entries[index - self.base_index - 1]["term"]
        return None

    def entry(self, index: int) -> dict:
        return self.entries[index - self.base_index - 1]

    def slice(self, start: int, limit: int) -> list[dict]:
        """Entries from ``start`` on, at most ``limit`` of them."""
        offset = start - self.base_index - 1
        return self.entries[offset:offset + limit]

    def append(self, entries: list[dict]) -> None:
        self.entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        del self.entries[index - self.base_index - 1:]

    def compact(self, index: int, term: int) -> None:
        """Forget entries up to ``index`` (they are in a snapshot)."""
        drop = min(index, self.last_index) - self.base_index
        if drop > 0:
            del self.entries[:drop]
        self.base_index, self.base_term = index, term


@dataclass
class Progress:
    """The leader's view of one follower."""

    next_index: int
    match_index: int = 0
    applied_index: int = 0
    in_sync: bool = True
    last_ack: float = 0.0
    last_sent: float = float("-inf")
    known_commit: int = 0
    acked_seq: int = 0
    reachable: bool = True
    failures: int = 0
    evictions: int = 0


@dataclass
class FollowerActions:
    """What a follower must do before it answers an append: persist these changes."""

    truncate_from: int | None = None
    append: list[dict] = field(default_factory=list)
    reset_state: bool = False
    install: tuple[int, int] | None = None  # (index, term): copy the leader's state, its log starts after


class RaftCore:
    """One node's consensus state. Every method is called with the caller's lock held."""

    def __init__(self, name: str, members: list[str], log: Log, *, term: int, leader: str,
                 isr_timeout: float, heartbeat_interval: float, max_batch_entries: int, now: float):
        self.name = name
        self.members = list(members)
        self.log = log
        self.current_term = term
        self.leader = leader
        self.isr_timeout = isr_timeout
        self.heartbeat_interval = heartbeat_interval
        self.max_batch_entries = max_batch_entries
        self.commit_index = log.base_index
        self.durable_index = log.last_index
        self.send_seq = 0
        self.higher_term_seen = 0
        self.progress = {peer: Progress(next_index=log.last_index + 1, last_ack=now)
                         for peer in members if peer != name}

    # ---- roles -------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.leader == self.name

    @property
    def quorum(self) -> int:
        return len(self.members) // 2 + 1

    # ---- leader side ---------------------------------------------------------------
    def propose(self, entry: dict) -> dict:
        """Append a client's entry (or a no-op) to the leader's log; returns it with index and term."""
        entry["index"] = self.log.last_index + 1
        entry["term"] = self.current_term
        self.log.append([entry])
        return entry

    def set_durable(self, index: int) -> None:
        """The leader's own log is durable through ``index`` (fsync'ed)."""
        self.durable_index = max(self.durable_index, min(index, self.log.last_index))
        self._advance_commit()

    def has_quorum(self, now: float) -> bool:
        """Whether a majority (this node included) answered within the in-sync timeout."""
        live = 1 + sum(1 for p in self.progress.values() if now - p.last_ack <= self.isr_timeout)
        return live >= self.quorum

    def wants_to_send(self, peer: str, now: float) -> bool:
        progress = self.progress[peer]
        return (progress.next_index <= self.log.last_index
                or progress.known_commit < self.commit_index
                or now - progress.last_sent >= self.heartbeat_interval)

    def append_request(self, peer: str, now: float) -> dict:
        """The AppendEntries message for ``peer``: every pending entry up to the batch limit."""
        progress = self.progress[peer]
        prev_index = max(progress.next_index - 1, self.log.base_index)
        entries = self.log.slice(prev_index + 1, self.max_batch_entries)
        self.send_seq += 1
        progress.last_sent = now
        request = {"term": self.current_term, "leader": self.name, "prev_index": prev_index,
                   "prev_term": self.log.term_at(prev_index), "entries": entries,
                   "leader_commit": self.commit_index, "seq": self.send_seq}
        if progress.next_index <= self.log.base_index:
            request["install"] = True  # the entries it needs are compacted away
        return request

    def handle_append_response(self, peer: str, request: dict, response: dict, now: float) -> None:
        progress = self.progress[peer]
        progress.reachable = True
        progress.failures = 0
        progress.acked_seq = max(progress.acked_seq, request["seq"])
        if response.get("term", 0) > self.current_term:
            self.higher_term_seen = max(self.higher_term_seen, response["term"])
        if response["success"]:
            # Only an accepted append counts as contact for the in-sync set: a follower that answers
            # but cannot take entries (it needs older ones) must not hold back every commit.
            progress.last_ack = now
            match = request["prev_index"] + len(request["entries"])
            progress.match_index = max(progress.match_index, match)
            progress.next_index = progress.match_index + 1
            progress.known_commit = max(progress.known_commit, request["leader_commit"])
        else:
            # Walk back to the follower's hint: its last index, or before its conflicting entry.
            hint = min(response.get("last_index", 0), request["prev_index"] - 1)
            # Below the leader's log base the follower needs the leader's state (install), not entries.
            progress.next_index = max(1, hint + 1)
            progress.match_index = min(progress.match_index, hint)
        progress.applied_index = max(progress.applied_index, response.get("applied_index", 0))
        if not progress.in_sync and progress.match_index >= self.commit_index:
            progress.in_sync = True
        self._advance_commit()

    def handle_append_failure(self, peer: str, now: float) -> None:
        progress = self.progress[peer]
        progress.failures += 1
        progress.reachable = False
        self.tick(now)

    def tick(self, now: float) -> None:
        """Evict followers silent for longer than the in-sync timeout, then recompute the commit."""
        for progress in self.progress.values():
            if progress.in_sync and now - progress.last_ack > self.isr_timeout:
                progress.in_sync = False
                progress.evictions += 1
        self._advance_commit()

    def _advance_commit(self) -> None:
        if not self.is_leader:
            return
        # The static leader must hold every committed entry on its own disk: after a crash it
        # restarts from that disk, and nothing else may overwrite what a majority applied.
        candidate = self.durable_index
        if self.progress:  # (a cluster of one commits what it holds; this runs on every write)
            matches = sorted([self.durable_index] + [p.match_index for p in self.progress.values()], reverse=True)
            candidate = min(matches[self.quorum - 1], self.durable_index)
            for progress in self.progress.values():
                if progress.in_sync:
                    candidate = min(candidate, progress.match_index)
        if candidate > self.commit_index and self.log.term_at(candidate) == self.current_term:
            self.commit_index = candidate

    def acknowledged_index(self, leader_applied: int, acks: str) -> int:
        """Highest index a client may be told about: committed and applied where the ack mode requires."""
        index = min(self.commit_index, leader_applied)
        if acks == "all":
            for progress in self.progress.values():
                if progress.in_sync:
                    index = min(index, progress.applied_index)
        return index

    def confirmed_by_majority(self, seq: int) -> bool:
        """ReadIndex: a majority answered a message sent at or after ``seq``."""
        return 1 + sum(1 for p in self.progress.values() if p.acked_seq >= seq) >= self.quorum

    # ---- follower side --------------------------------------------------------------
    def handle_append(self, request: dict, applied_index: int) -> tuple[dict, FollowerActions]:
        """Check and accept an AppendEntries; the caller persists ``actions`` before answering."""
        actions = FollowerActions()
        if request["term"] < self.current_term:
            return self._reply(False), actions
        self.current_term = request["term"]
        self.leader = request["leader"]
        prev_index, prev_term = request["prev_index"], request["prev_term"]
        if request.get("install") and self.log.term_at(prev_index) != prev_term:
            actions.install = (prev_index, prev_term)
            return self._reply(False), actions
        if prev_index > self.log.last_index:
            return self._reply(False), actions
        local_prev_term = self.log.term_at(prev_index)
        if local_prev_term is not None and local_prev_term != prev_term:
            return self._reply(False, last_index=prev_index - 1), actions
        for entry in request["entries"]:
            index = entry["index"]
            if index <= self.log.base_index:
                continue
            if index <= self.log.last_index:
                if self.log.term_at(index) == entry["term"]:
                    continue
                if index <= applied_index:
                    # Only a leader that lost its own log (in-memory restart) rewrites applied
                    # history; start over from its log rather than keep state it does not have.
                    actions.reset_state = True
                    self.log = Log()
                    self.commit_index = 0
                    return self._reply(False, last_index=0), actions
                self.log.truncate_from(index)
                actions.truncate_from = index
                self.commit_index = min(self.commit_index, index - 1)
            self.log.append([entry])
            actions.append.append(entry)
        last_new = prev_index + len(request["entries"])
        self.commit_index = max(self.commit_index, min(request["leader_commit"], last_new))
        return self._reply(True), actions

    def _reply(self, success: bool, last_index: int | None = None) -> dict:
        return {"term": self.current_term, "success": success,
                "last_index": self.log.last_index if last_index is None else last_index}
