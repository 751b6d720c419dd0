"""Telling a restarted member from two processes that claim one member name.

Each process draws a random instance id at start and names it in every peer call
and every peer answer. A restart changes a member's id once: the old id may be
heard a time or two more (calls or answers still in flight), then never again. Two
processes with one name keep alternating. So a name is taken as claimed twice when
its instance ids switch back to one heard before at least ``RETURNS`` times within
``window`` seconds; from then on calls from every instance of it but the one heard
first among those switched between are refused, until the others fall silent for a
window. (Only those switched between: the instance a restart replaced may still be
remembered, and must not be the one kept.) A call that names
this node's own name from another instance is always another process's.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Callable

from badkv.errors import DuplicateMember

WINDOW_SECONDS = 10.0
RETURNS = 3  # a restart with stragglers makes at most two; two live processes make many a second
KEPT_INSTANCES = 4


@dataclass
class Sighting:
    first_seen: float
    last_seen: float
    where: str


@dataclass
class Member:
    """What one member name's instances have looked like lately."""

    last: str = ""
    instances: dict[str, Sighting] = field(default_factory=dict)
    returns: collections.deque = field(default_factory=collections.deque)  # (time, from, to) of each return


class InstanceTracker:
    """Remembers which instance ids each member name was heard from; refuses a second process."""

    def __init__(self, own_name: str, own_instance: str, *, clock: Callable[[], float] = time.monotonic,
                 window: float = WINDOW_SECONDS):
        self.own_name = own_name
        self.own_instance = own_instance
        self.clock = clock
        self.window = window
        self.members: dict[str, Member] = {}

    def observe(self, name: str, instance: str, where: str) -> None:
        """Record that ``name`` spoke as ``instance`` from ``where``; raise DuplicateMember if that
        instance is a second process claiming the name."""
        if name == self.own_name and instance != self.own_instance:
            raise DuplicateMember(f"another process (instance {instance} at {where}) claims this node's name "
                                  f"{name!r}", member=name, address=where)
        if not instance:
            return
        now = self.clock()
        member = self.members.setdefault(name, Member())
        self._forget_old(member, now)
        sighting = member.instances.get(instance)
        if sighting is None:
            member.instances[instance] = Sighting(now, now, where)
        else:
            if instance != member.last:
                member.returns.append((now, member.last, instance))
            sighting.last_seen, sighting.where = now, where
        member.last = instance
        if len(member.returns) >= RETURNS:
            self._refuse_all_but_first(name, member, instance)

    def others_than_first(self, name: str) -> str | None:
        """While ``name`` is claimed twice: the instances other than the first, as text; else None."""
        member = self.members.get(name)
        if member is None:
            return None
        self._forget_old(member, self.clock())
        if len(member.returns) < RETURNS:
            return None
        contested = self._contested(member)
        first = min(contested, key=lambda key: member.instances[key].first_seen)
        others = [f"instance {key} at {member.instances[key].where}" for key in sorted(contested) if key != first]
        return ", ".join(others) or None

    @staticmethod
    def _contested(member: Member) -> set[str]:
        """The instances switched between lately, that are still remembered."""
        return {key for _, *pair in member.returns for key in pair if key in member.instances}

    def _forget_old(self, member: Member, now: float) -> None:
        horizon = now - self.window
        while member.returns and member.returns[0][0] < horizon:
            member.returns.popleft()
        for old in [key for key, seen in member.instances.items() if seen.last_seen < horizon]:
            del member.instances[old]
        while len(member.instances) >= KEPT_INSTANCES:
            del member.instances[min(member.instances, key=lambda key: member.instances[key].last_seen)]

    def _refuse_all_but_first(self, name: str, member: Member, instance: str) -> None:
        first = min(self._contested(member), key=lambda key: member.instances[key].first_seen)
        if instance == first:
            return
        here, there = member.instances[instance], member.instances[first]
        raise DuplicateMember(f"two processes claim member name {name!r}: instance {instance} at {here.where} "
                              f"and instance {first} at {there.where}; refusing {instance} at {here.where}",
                              member=name, address=here.where)
