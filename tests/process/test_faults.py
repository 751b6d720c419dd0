"""Fault scenarios with real processes: the contract holds under crashes, pauses and network faults.

Each scenario runs a recorded workload against a 3-node cluster (5 nodes for
"kill-two-of-five") whose peer links go through the fault proxy, injects one
fault, heals, and judges the history. When the fault strikes the leader, the
others must elect a new one and acknowledge writes again before the fault ends. Seeds are fixed and printed; a failing run keeps its history, the
checker's verdict and the node logs under test-artifacts/faults/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from badkv.testing.faults import FAULTS, ScenarioResult, run_scenario

pytestmark = [pytest.mark.fault, pytest.mark.timeout(180)]

ARTIFACTS = Path("test-artifacts") / "faults"
SEED = 20261127


@pytest.mark.parametrize("scenario", sorted(FAULTS))
def test_the_contract_holds_under_a_fault(scenario, tmp_path):
    result = run_scenario(scenario, SEED, tmp_path, artifacts_root=ARTIFACTS)
    print(result.summary())
    assert result.operations > 100, "the workload must have done real work"
    assert result.acknowledged_writes > 20
    assert result.linearizable is True, result.checker_reason
    assert not result.local_read_problems, result.local_read_problems[:5]
    assert not result.lost_write_problems, result.lost_write_problems[:5]
    assert result.converged_after_s is not None and result.converged_after_s <= 5
    if FAULTS[scenario].leader:  # the survivors elect a leader and write again while the fault lasts
        assert result.first_ack_after_fault_s is not None and result.first_ack_after_fault_s < 3, result.summary()


def test_a_summary_says_n_a_for_a_time_that_was_never_measured():
    result = ScenarioResult("blackhole-follower", 7, True, 490, 255, True, "ok", converged_after_s=0.4693,
                            first_ack_after_fault_s=1.0304, first_ack_after_heal_s=None)
    assert result.summary() == ("blackhole-follower seed=7: OK, 490 ops, 255 acked writes, converged in 0.469s, "
                                "first ack after fault 1.030s, after heal n/a")
