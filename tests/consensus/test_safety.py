"""Raft's safety properties under every schedule Hypothesis can find on the simulated network.

Each step is one event: a proposal, a tick, an fsync, delivering, dropping,
duplicating or timing out a message, a partition or its healing, a crash or a
restart, a leadership transfer, a node added (it joins as a learner and is promoted once caught up)
or removed; elections happen as the ticks make them. The network checks election safety (one leader per term), log
matching, leader completeness (no committed entry lost) and state-machine
safety (one entry applied per index) after every step; a failure shrinks to
a short schedule. ``BADKV_SIM_EXAMPLES`` raises the number of schedules for a
longer manual run, e.g. ``BADKV_SIM_EXAMPLES=5000 pytest tests/consensus``.
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from badkv.testing.sim import SimNetwork

EXAMPLES = int(os.environ.get("BADKV_SIM_EXAMPLES", "200"))

MESSAGE_EVENTS = ("deliver", "drop", "duplicate", "time_out")
# Weighted by repetition: most steps move messages, time and disks on; faults are rarer, so that a
# schedule has both a working cluster and the faults that break it (and shrinks to few steps).
EVENTS = st.sampled_from(["deliver"] * 8 + ["propose"] * 3 + ["tick"] * 2 + ["tick_all"] * 2 + ["fsync_leader"] * 2
                         + ["fsync", "drop", "duplicate", "time_out", "isolate", "heal", "crash",
                            "crash_leader", "restart", "restart", "transfer", "add", "remove"])
MAX_NODES = 8  # names ever added, removed ones included: keeps a schedule's cluster within 1 to 7 voters


class ClusterSchedules(RuleBasedStateMachine):
    """Any interleaving of client writes, time, disks, network faults and membership changes, from 3 or 5
    nodes."""

    @initialize(size=st.sampled_from([3, 5]), batch=st.integers(1, 4), leader_syncs_at_once=st.booleans(),
                election_ticks=st.sampled_from([2, 4, 10]), isr_ticks=st.sampled_from([1, 2, 20]),
                seed=st.integers(0, 2**16), settled=st.booleans())
    def boot(self, size, batch, leader_syncs_at_once, election_ticks, isr_ticks, seed, settled):
        # A short in-sync timeout lets a bare majority commit (the in-sync set is the whole cluster
        # otherwise, which hides mistakes in who may lead).
        self.network = SimNetwork(size, max_batch_entries=batch, leader_syncs_at_once=leader_syncs_at_once,
                                  heartbeat_ticks=1, election_ticks=election_ticks, isr_ticks=isr_ticks,
                                  seed=seed)
        self.proposed = 0
        if settled:  # half the schedules start from a cluster with a leader: changes need one
            assert self.network.settle()

    @rule(event=EVENTS, choice=st.integers(0, 63))
    def happen(self, event, choice):
        """One event; ``choice`` picks the message or the node it concerns."""
        network = self.network
        node = network.names[choice % len(network.names)]
        if event == "propose":
            self.proposed += 1
            network.propose(f"v{self.proposed}")
        elif event in MESSAGE_EVENTS:
            if network.in_flight:
                getattr(network, event)(choice % len(network.in_flight))
        elif event in ("fsync_leader", "crash_leader"):
            if network.leader is not None:
                getattr(network, event.removesuffix("_leader"))(network.leader.name)
        elif event == "transfer":
            network.transfer(node)
        elif event == "add":
            if len(network.names) < MAX_NODES:
                network.add()
        elif event == "remove":
            network.remove(node)
        elif event == "heal":
            network.heal()
        elif event == "tick_all":
            network.tick()
        else:  # tick, fsync, isolate, crash, restart: of one node
            getattr(network, event)(node)

    @invariant()
    def safe(self):
        self.network.check()

    def teardown(self):
        """Once every fault is over, the cluster converges: everything proposed while it was up commits."""
        network = getattr(self, "network", None)
        if network is None:
            return
        network.heal()
        for name in network.names:
            network.restart(name)
        assert network.settle(), "the cluster did not converge after the faults ended"
        network.check()


ClusterSchedules.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=80, deadline=None)
test_cluster_schedules = ClusterSchedules.TestCase


def test_the_checks_catch_a_broken_rule():
    """The safety checks can fail: two entries at one index with one term break log matching."""
    network = SimNetwork(3, leader_syncs_at_once=True)
    network.settle()
    network.propose("a")
    network.settle()
    follower = network.core("n2")
    follower.log.entries[-1] = dict(follower.log.entries[-1], revision=-1)
    try:
        network.check()
    except AssertionError as error:
        assert "differ" in str(error)
    else:
        raise AssertionError("a forged entry went unnoticed")


def test_a_duplicated_append_does_not_swallow_the_original_answer():
    """Found by the schedules above: a copy of an append (its answer lost) was delivered after the
    original, and the simulator dropped the original's answer with the copy's. The leader then waited for
    that answer for ever, which no real call does (it times out), and the cluster never converged."""
    network = SimNetwork(3, max_batch_entries=1, heartbeat_ticks=1, election_ticks=2, isr_ticks=1, seed=0)
    network.tick("n1")
    network.tick("n1")
    network.drain()
    network.propose("v1")
    network.duplicate(0)
    assert network.settle(20)
    network.check()
