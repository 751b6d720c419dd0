"""An in-process network of consensus cores: the test bench for ``badkv.consensus``.

Every node is a ``Core`` and a simulated disk. Messages wait in ``in_flight``
until a test delivers, drops, duplicates or times one out, in any order, so
delay and reordering are the default. A crash loses what was not fsync'ed; a
restart rebuilds the core from the disk alone. ``check`` tests Raft's safety
properties after every step (``badkv/testing/safety.py``): one leader per
term, log matching, leader completeness, one entry applied per index.
Membership changes (``add``, ``remove``) go through the leader as config
entries; a new node boots with the membership that names it a learner.

A real transport answers every call once, with the answer or an error; so
here a dropped or timed-out call reports ``Unreachable`` to its caller, and
an answer to a call that already failed is thrown away.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

from badkv.consensus.core import Core
from badkv.consensus.log import Log
from badkv.consensus.membership import MAX_VOTERS, MembershipError
from badkv.consensus.messages import ANSWERS, TimeoutNow, Unreachable
from badkv.testing.safety import SafetyChecker


@dataclasses.dataclass
class Disk:
    """What survives a crash: the hard state and the fsync'ed log (entries 1..n)."""

    term: int = 0
    voted_for: str | None = None
    entries: list[dict] = dataclasses.field(default_factory=list)
    unsynced: list[dict] = dataclasses.field(default_factory=list)  # written, not yet fsync'ed
    members: object = None  # the membership the node started with (a list of names or a Membership)

    def truncate_from(self, index: int) -> None:
        del self.entries[index - 1:]
        self.unsynced = [entry for entry in self.unsynced if entry["index"] < index]

    def fsync(self) -> int:
        self.entries.extend(self.unsynced)
        self.unsynced = []
        return len(self.entries)


@dataclasses.dataclass
class Envelope:
    message: object
    sender: str
    to: str
    answer_lost: bool = False  # the call this request belongs to already failed at the caller

class SimNode:
    """One node: a core, its disk, and the entries it applied, in order."""

    def __init__(self, name: str, members, disk: Disk, settings: dict, stamp, rng):
        self.name = name
        self.disk = disk
        self.up = True
        self.applied: dict[int, dict] = {}
        log = Log()
        log.append([dict(entry) for entry in disk.entries])
        self.core = Core(name, members, log, term=disk.term, voted_for=disk.voted_for, stamp=stamp, rng=rng,
                         **settings)


class SimNetwork:
    """N cores wired through an in-memory network."""

    def __init__(self, size: int = 3, *, heartbeat_ticks: int = 2, election_ticks: int = 10, isr_ticks: int = 12,
                 max_batch_entries: int = 3, leader_syncs_at_once: bool = False, seed: int = 0):
        self.names = [f"n{i + 1}" for i in range(size)]
        self.settings = {"heartbeat_ticks": heartbeat_ticks, "election_ticks": election_ticks,
                         "isr_ticks": isr_ticks, "max_batch_entries": max_batch_entries}
        self.leader_syncs_at_once = leader_syncs_at_once
        self.rng = random.Random(seed)
        self.revisions = itertools.count(1)
        self.disks = {name: Disk(members=list(self.names)) for name in self.names}
        self.nodes = {name: self._boot(name) for name in self.names}
        self.in_flight: list[Envelope] = []
        self.cut: set[frozenset] = set()
        self.safety = SafetyChecker()
        for name in self.names:
            self._process(self.nodes[name])

    def _boot(self, name: str) -> SimNode:
        return SimNode(name, self.disks[name].members, self.disks[name], self.settings,
                       lambda: next(self.revisions), random.Random(self.rng.random()))

    def add(self, name: str | None = None, token_hash: str | None = None) -> str | None:
        """A new node joins as a learner through the leader; returns its name, or None if refused. With
        ``token_hash`` it is promoted only once a change marks that token used."""
        node = self.leader
        name = name or f"n{len(self.names) + 1}"
        if node is None or name in self.names:
            return None
        try:
            node.core.propose_membership(node.core.membership.with_learner(name, "", token_hash))
        except MembershipError:
            return None
        self.names.append(name)
        self.disks[name] = Disk(members=node.core.membership)
        self.nodes[name] = self._boot(name)
        self._process(node)
        self._process(self.nodes[name])
        return name

    def remove(self, name: str) -> bool:
        """The leader proposes ``name``'s removal; returns whether it took the change."""
        node = self.leader
        if node is None:
            return False
        try:
            node.core.propose_membership(node.core.membership.without(name))
        except MembershipError:
            return False
        self._process(node)
        return True

    @property
    def leader(self) -> SimNode | None:
        """The up node that leads the highest term, if any."""
        leaders = [node for node in self.nodes.values() if node.up and node.core.is_leader]
        return max(leaders, key=lambda node: node.core.current_term, default=None)

    def core(self, name: str) -> Core:
        return self.nodes[name].core

    def values(self, name: str) -> list:
        """The values in ``name``'s log, no-ops left out."""
        return [entry.get("value") for entry in self.core(name).log.entries if entry["op"] != "noop"]

    def propose(self, value: str) -> int | None:
        """A client's write at the leader; returns its index, or None while there is none."""
        node = self.leader
        if node is None or node.core.transferring:
            return None
        entry = node.core.propose({"op": "put", "tenant": "t", "name": "k", "value": value, "timestamp": 0,
                                   "revision": next(self.revisions)})
        self._process(node)
        return entry["index"]

    def flush(self, name: str) -> None:
        """Carry out what ``name``'s core asks for after a test changed it directly."""
        self._process(self.nodes[name])

    def tick(self, name: str | None = None) -> None:
        for node in ([self.nodes[name]] if name else list(self.nodes.values())):
            if node.up:
                node.core.tick()
                self._process(node)

    def fsync(self, name: str) -> None:
        node = self.nodes[name]
        if node.up:
            node.core.persisted(node.disk.fsync())
            self._process(node)

    def transfer(self, target: str | None = None) -> None:
        node = self.leader
        if node and not node.core.transferring and node.core.voter_peers and target in node.core.voter_peers + [None]:
            node.core.transfer_leadership(target)
            self._process(node)

    def deliver(self, position: int = 0) -> None:
        """Hand one message to its node; across a cut or to a node that is down, the call fails instead."""
        envelope = self.in_flight.pop(position)
        node = self.nodes[envelope.to]
        if frozenset((envelope.sender, envelope.to)) in self.cut or not node.up:
            if not envelope.answer_lost:
                self._report_failure(envelope)
            return
        before = len(self.in_flight)
        node.core.step(envelope.message)
        self._process(node)
        if envelope.answer_lost:  # the caller gave up on this call: the answer of this delivery goes nowhere
            # (Only this delivery's: a duplicate shares its message with the original, whose answer, already
            # on its way, must still arrive; dropping it too left a call that no timeout ever ends.)
            self.in_flight[before:] = [e for e in self.in_flight[before:]
                                       if getattr(e.message, "reply_to", None) is not envelope.message]

    def drop(self, position: int = 0) -> None:
        if not (envelope := self.in_flight.pop(position)).answer_lost:
            self._report_failure(envelope)

    def time_out(self, position: int = 0) -> None:
        """The caller's transport gives up on a call that may still arrive (a request) or not (an answer)."""
        envelope = self.in_flight[position]
        if isinstance(envelope.message, ANSWERS):
            self.drop(position)
        elif not envelope.answer_lost:
            envelope.answer_lost = True
            self._report_failure(envelope)

    def duplicate(self, position: int = 0) -> None:
        """A copy of a request arrives too (its answer is lost: a call is answered once)."""
        envelope = self.in_flight[position]
        if not isinstance(envelope.message, ANSWERS):
            self.in_flight.append(dataclasses.replace(envelope, answer_lost=True))

    def isolate(self, name: str) -> None:
        """Cut every link of ``name``; calls over them fail when delivered."""
        self.cut.update(frozenset((name, other)) for other in self.names if other != name)

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, name: str) -> None:
        """Kill a node: what it did not fsync is gone, and so is every call to or from it."""
        node = self.nodes[name]
        if not node.up:
            return
        node.up = False
        node.disk.unsynced = []
        # Calls to it fail when delivered. Of what it sent, its answers fail their callers (the
        # connection breaks) and its own calls die with it.
        for envelope in [e for e in self.in_flight if e.sender == name]:
            position = self.in_flight.index(envelope)
            if isinstance(envelope.message, ANSWERS):
                self.drop(position)
            else:
                del self.in_flight[position]

    def restart(self, name: str) -> None:
        if not self.nodes[name].up:
            self.nodes[name] = self._boot(name)
            self._process(self.nodes[name])

    def settle(self, rounds: int = 300) -> bool:
        """Deliver, fsync and tick until one leader leads every node that is up and they all hold and
        applied its whole log; returns whether that happened within ``rounds``."""
        for _ in range(rounds):
            for name in self.names:
                self.fsync(name)
            self.drain(len(self.in_flight))  # (a call to a down node fails and is sent again: not forever)
            if self.converged():
                return True
            self.tick()
        return False

    def drain(self, limit: int = 1000) -> None:
        """Deliver until nothing is in flight (at most ``limit`` deliveries), without moving time on."""
        for _ in range(limit):
            if not self.in_flight:
                return
            self.deliver(0)

    def converged(self) -> bool:
        leader = self.leader
        if leader is None:
            return False
        last, membership = leader.core.log.last_index, leader.core.membership
        members = membership.nodes
        promotable = len(membership.voters) < MAX_VOTERS and any(name not in membership.tokens
                                                                 for name in membership.learners)
        return not leader.core.membership_pending and not promotable and all(
            node.core.leader == leader.name and node.core.log.last_index == last
            and max(node.applied, default=node.core.log.base_index) == last
            for node in self.nodes.values() if node.up and node.name in members)

    def _process(self, node: SimNode) -> None:
        core = node.core
        while core.has_ready():
            ready = core.ready()
            if ready.hard_state is not None:
                node.disk.term, node.disk.voted_for = ready.hard_state.term, ready.hard_state.voted_for
            if ready.truncate_from is not None:
                node.disk.truncate_from(ready.truncate_from)
            node.disk.unsynced.extend(dict(entry) for entry in ready.entries)
            if not core.is_leader or self.leader_syncs_at_once:  # a follower fsyncs before it answers
                core.persisted(node.disk.fsync())
            for entry in ready.committed:
                self.safety.applied(node.name, entry)
                node.applied[entry["index"]] = entry
            for message in ready.messages:
                self.in_flight.append(Envelope(message, node.name, message.to))
            if core.is_leader:
                self.safety.note_commits(core)
        self.check()

    def _report_failure(self, envelope: Envelope) -> None:
        """Tell the caller of a failed call: the sender of a request, the addressee of an answer."""
        message = envelope.message
        if isinstance(message, TimeoutNow):
            return
        answer = isinstance(message, ANSWERS)
        caller, peer = (envelope.to, envelope.sender) if answer else (envelope.sender, envelope.to)
        node = self.nodes[caller]
        if node.up:
            node.core.step(Unreachable(peer, message.reply_to if answer else message))
            self._process(node)

    def check(self) -> None:
        """Raise SafetyViolation unless every Raft safety property holds now (``badkv/testing/safety.py``)."""
        self.safety.check([node for node in self.nodes.values() if node.up])
