"""Tests for badkv.testing.checker and badkv.testing.history."""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from badkv.testing.checker import (
    CheckResult,
    _RegisterSearch,
    check_linearizable,
    check_local_reads,
    check_no_lost_writes,
)
from badkv.testing.history import Operation, load_history, save_history

_ids = itertools.count(1)


def make(kind, call, ret, status="ok", *, key="k", process=0, node="n1", **fields):
    return Operation(next(_ids), process, node, key, kind, call, ret, status, **fields)


def write(value, call, ret, status="ok", **fields):
    return make("write", call, ret, status, value=value, **fields)


def read(value, call, ret, status="ok", **fields):
    return make("read", call, ret, status, value=value, **fields)


def delete(call, ret, status="ok", **fields):
    return make("delete", call, ret, status, **fields)


def cas(expected, value, call, ret, status="ok", **fields):
    return make("cas", call, ret, status, expected=expected, value=value, **fields)


def accepted(ops):
    result = check_linearizable(ops, deadline_s=10)
    assert result.ok is not None, result.reason
    return result.ok


# --- histories written out by hand -------------------------------------------

VALID_HISTORIES = {
    "empty": [],
    "sequential": [
        read(None, 0, 1),
        write("a", 2, 3),
        read("a", 4, 5),
        cas("a", "b", 6, 7),
        read("b", 8, 9),
        delete(10, 11),
        read(None, 12, 13),
        delete(14, 15, outcome="not_found"),
    ],
    "overlapping writes, first order": [write("a", 0, 10), write("b", 1, 11), read("a", 12, 13)],
    "overlapping writes, second order": [write("a", 0, 10), write("b", 1, 11), read("b", 12, 13)],
    "read during a write sees old or new": [
        write("a", 0, 1),
        write("b", 2, 10),
        read("a", 3, 4),
        read("b", 5, 6),
    ],
    "open write appears later": [write("a", 0, 1), write("b", 2, None, "unknown"), read("a", 5, 6), read("b", 50, 51)],
    "open write never appears": [write("a", 0, 1), write("b", 2, None, "unknown"), read("a", 50, 51)],
    "timed out write appears after its error": [write("a", 0, 1), write("b", 2, 3, "unknown"), read("b", 60, 61)],
    "failed write ignored": [write("a", 0, 1), write("b", 2, 3, "fail"), read("a", 4, 5)],
    "failed and local reads ignored": [
        write("a", 0, 1),
        read("zzz", 2, 3, "fail"),
        read("old", 2, 3, consistency="local"),
        read("a", 4, 5),
    ],
    "412 while a concurrent write changes the value": [
        write("a", 0, 1),
        cas("a", "x", 2, 6, outcome="precondition_failed"),
        write("b", 3, 5),
        read("b", 7, 8),
    ],
    "two CAS on one value, one refused": [
        write("a", 0, 1),
        cas("a", "b", 2, 5),
        cas("a", "c", 2, 5, outcome="precondition_failed"),
        read("b", 6, 7),
    ],
    "open CAS takes effect": [write("a", 0, 1), cas("a", "b", 2, None, "unknown"), read("b", 9, 10)],
    "open CAS chain": [
        write("a", 0, 1),
        cas("a", "b", 2, None, "unknown"),
        cas("b", "c", 3, None, "unknown"),
        read("c", 9, 10),
    ],
    "open delete takes effect": [write("a", 0, 1), delete(2, None, "unknown"), read(None, 5, 6)],
    "404 after an open delete": [write("a", 0, 1), delete(2, 3, "unknown"), delete(4, 5, outcome="not_found")],
    "open write lets a refused CAS through": [
        write("a", 0, 1),
        write("b", 2, None, "unknown"),
        cas("a", "c", 3, 4, outcome="precondition_failed"),
        read("b", 5, 6),
    ],
}

INVALID_HISTORIES = {
    "stale read of an empty key": [write("a", 0, 1), read(None, 2, 3)],
    "lost write": [write("a", 0, 1), write("b", 2, 3), read("b", 4, 5), read("a", 6, 7)],
    "read of a value nobody wrote": [write("a", 0, 1), read("ghost", 2, 3)],
    "read of a failed write": [write("a", 0, 1), write("b", 2, 3, "fail"), read("b", 4, 5)],
    "read from the future": [read("a", 0, 1), write("a", 2, 3)],
    "open write seen, then gone": [write("a", 0, 1), write("b", 2, None, "unknown"), read("b", 3, 4), read("a", 5, 6)],
    "two CAS on one value both succeed": [write("a", 0, 1), cas("a", "b", 2, 5), cas("a", "c", 2, 5)],
    "412 although the value was the expected one": [
        write("a", 0, 1),
        cas("a", "b", 2, 3, outcome="precondition_failed"),
    ],
    "404 although the key exists": [write("a", 0, 1), delete(2, 3, outcome="not_found")],
    "delete of an absent key succeeds": [delete(0, 1)],
    "CAS on a replaced value succeeds": [write("a", 0, 1), write("b", 2, 3), cas("a", "c", 4, 5)],
}


@pytest.mark.parametrize("name", sorted(VALID_HISTORIES))
def test_accepts_valid_history(name):
    assert accepted(VALID_HISTORIES[name]) is True


@pytest.mark.parametrize("name", sorted(INVALID_HISTORIES))
def test_rejects_invalid_history(name):
    result = check_linearizable(INVALID_HISTORIES[name], deadline_s=10)
    assert result.ok is False
    assert result.key == "k"
    assert result.failing_history
    assert "op " in result.reason


def test_keys_are_checked_apart():
    ops = [write("a", 0, 1, key="x"), read("a", 2, 3, key="y")]
    result = check_linearizable(ops)
    assert (result.ok, result.key) == (False, "y")


def test_failing_history_is_the_shortest_broken_prefix():
    ops = []
    for step in range(200):
        ops += [write(f"v{step}", 10 * step, 10 * step + 2), read(f"v{step}", 10 * step + 3, 10 * step + 5)]
    stale = read("v49", 1001, 1002)
    result = check_linearizable(ops + [stale])
    assert result.ok is False
    assert result.failing_history[-1] is stale
    assert len(result.failing_history) == 202  # 100 writes and reads, the write of v100 it overlaps, itself
    assert f"op {stale.id}" in result.reason
    json.dumps(result.to_dict())


def test_counts_what_was_checked():
    ops = [write("a", 0, 1, key="x"), read("a", 2, 3, key="x"), write("b", 0, 1, key="y", status="unknown")]
    result = check_linearizable(ops)
    assert (result.ok, result.ops_checked, result.keys_checked) == (True, 3, 2)


def test_gives_up_at_the_deadline():
    ticks = itertools.count(0, 1000)
    # Both values must be the last one written: only trying every order shows it cannot be.
    ops = [write(f"w{i}", 0, 100, process=i) for i in range(12)] + [read("w0", 101, 102), read("w1", 103, 104)]
    assert check_linearizable(ops).ok is False
    result = check_linearizable(ops, deadline_s=5, clock=lambda: next(ticks))
    assert result.ok is None
    assert result.key == "k"
    assert "deadline" in result.reason


def test_result_is_json():
    result = CheckResult(False, "k", [write("a", 0, 1)], "because", 1, 1)
    assert json.loads(json.dumps(result.to_dict()))["failing_history"][0]["return"] == 1


# --- history records ----------------------------------------------------------


def test_history_round_trips_through_a_file(tmp_path):
    ops = [
        write("a", 0.5, 1.25, revision=7),
        read(None, 2, None, "unknown", consistency="local"),
        delete(3, 4, outcome="not_found"),
    ]
    path = tmp_path / "history.jsonl"
    save_history(path, ops)
    assert load_history(path) == ops


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "append"},
        {"status": "maybe"},
        {"consistency": "eventual"},
        {"kind": "write", "value": None},
        {"kind": "read", "outcome": "not_found"},
        {"kind": "delete", "outcome": "not_found", "status": "unknown"},
        {"return_": -1.0},
    ],
)
def test_rejects_malformed_operation(fields):
    base = dict(id=1, process=0, node="n1", key="k", kind="delete", call=0.0, return_=1.0, status="ok")
    with pytest.raises(ValueError):
        Operation(**{**base, **fields})


def test_rejects_unknown_fields():
    with pytest.raises(ValueError):
        Operation.from_dict({**write("a", 0, 1).to_dict(), "colour": "red"})


# --- local reads ----------------------------------------------------------------


def local(value, call, revision, node="n2", process=1):
    return read(value, call, call + 1, consistency="local", revision=revision, node=node, process=process)


def test_local_reads_of_written_values_pass():
    ops = [write("a", 0, 1), write("b", 2, 3, "unknown"), local(None, 0, 0), local("a", 4, 5), local("b", 6, 6)]
    assert check_local_reads(ops) == []


def test_local_read_of_a_value_never_written_fails():
    problems = check_local_reads([write("a", 0, 1, "fail"), local("a", 2, 5), local("ghost", 3, 5)])
    assert len(problems) == 2


def test_local_read_going_back_fails():
    ops = [write("a", 0, 1), write("b", 2, 3), local("b", 4, 9), local("a", 6, 5)]
    assert len(check_local_reads(ops)) == 1


@pytest.mark.parametrize("other", [{"node": "n3"}, {"process": 2}])
def test_local_reads_are_compared_per_process_and_node(other):
    ops = [write("a", 0, 1), write("b", 2, 3), local("b", 4, 9), local("a", 6, 5, **other)]
    assert check_local_reads(ops) == []


# --- final state ----------------------------------------------------------------

FINAL_HISTORY = [write("a", 0, 1), write("b", 2, 3), write("c", 4, 8, "unknown"), write("d", 5, 6, "fail")]


@pytest.mark.parametrize(
    ("ops", "final", "problems"),
    [
        (FINAL_HISTORY, "b", 0),
        (FINAL_HISTORY, "c", 0),
        (FINAL_HISTORY, "a", 1),
        (FINAL_HISTORY, "d", 1),
        (FINAL_HISTORY, None, 1),
        ([write("a", 0, 5), write("b", 1, 6)], "a", 0),
        ([write("a", 0, 1), delete(2, 3)], None, 0),
        ([write("a", 0, 1), delete(2, 3), delete(4, 5, outcome="not_found")], None, 0),
        ([write("a", 0, 1), delete(2, 3, "fail")], None, 1),
        ([write("a", 0, 1, "unknown")], None, 0),
        ([], None, 0),
        ([], "a", 1),
    ],
)
def test_final_value(ops, final, problems):
    assert len(check_no_lost_writes(ops, {"n1": {"k": final}})) == problems


def test_nodes_must_agree():
    problems = check_no_lost_writes(FINAL_HISTORY, {"n1": {"k": "b"}, "n2": {"k": "c"}, "n3": {}})
    assert len(problems) == 1
    assert "disagree" in problems[0]


# --- generated histories ----------------------------------------------------------


@dataclass
class Plan:
    """One request of a simulated client: when it runs, and where inside its window it takes effect."""

    process: int
    key: str
    kind: str
    gap: float
    duration: float
    where: float
    fate: str
    pick: int


def simulate(plans, processes):
    """Run plans against a real register; each takes effect at one moment inside its own window.

    Such a history is linearizable by construction: those moments give the order.
    """
    free_at = [0.0] * processes
    timed = []
    for index, plan in enumerate(plans):
        process = plan.process % processes
        call = free_at[process] + plan.gap
        ret = free_at[process] = call + plan.duration
        timed.append((call + plan.where * plan.duration, index, process, call, ret))
    state, written, ops = {}, defaultdict(list), []
    for _, index, process, call, ret in sorted(timed):
        plan = plans[index]
        kind, fields, effect = register_answer(plan, f"v{index}", state.get(plan.key), written[plan.key])
        status, return_ = "ok", ret
        if kind != "read" and plan.fate != "ok":
            status = "fail" if plan.fate == "fail" else "unknown"
            fields["outcome"] = None
            effect = effect and plan.fate == "open_applied"
            return_ = None if plan.fate == "open_applied" else ret
        if effect and kind == "delete":
            state[plan.key] = None
        elif effect:
            state[plan.key] = fields["value"]
            written[plan.key].append(fields["value"])
        ops.append(Operation(index, process, "n1", plan.key, kind, call, return_, status, **fields))
    return sorted(ops, key=lambda op: op.id)


def register_answer(plan, value, current, history):
    """What a register holding current answers to plan: (kind, fields, whether the state changes)."""
    if plan.kind == "write":
        return "write", {"value": value}, True
    if plan.kind == "delete":
        return ("delete", {}, True) if current is not None else ("delete", {"outcome": "not_found"}, False)
    if plan.kind == "cas" and history:
        expected = current if current is not None and plan.pick % 2 == 0 else history[plan.pick % len(history)]
        if expected == current:
            return "cas", {"expected": expected, "value": value}, True
        return "cas", {"expected": expected, "value": value, "outcome": "precondition_failed"}, False
    return "read", {"value": current}, False


plan_lists = st.lists(
    st.builds(
        Plan,
        process=st.integers(0, 3),
        key=st.sampled_from(["a", "b"]),
        kind=st.sampled_from(["read", "read", "write", "write", "cas", "delete"]),
        gap=st.integers(0, 3),
        duration=st.integers(0, 8),
        where=st.floats(0, 1),
        fate=st.sampled_from(["ok", "ok", "ok", "ok", "open_applied", "open_lost", "fail"]),
        pick=st.integers(0, 7),
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(plan_lists)
def test_histories_of_a_real_register_are_accepted(plans):
    assert accepted(simulate(plans, 4)) is True


def definitely_stale_values(ops, victim):
    """Values the victim read could not return in any order: written wholly after it, or surely replaced before it."""
    done = [op for op in ops if op.kind != "read" and op.outcome is None and not op.is_open and op.status == "ok"]
    stale = set()
    for writer in done:
        if writer.kind == "delete" or writer.key != victim.key:
            continue
        replaced = any(
            other.key == victim.key and writer.return_ < other.call and other.return_ < victim.call for other in done
        )
        if replaced or writer.call > victim.return_:
            stale.add(writer.value)
    return sorted(stale)


@settings(max_examples=300, deadline=None)
@given(plan_lists, st.integers(0, 10**6))
def test_a_read_of_an_impossible_value_is_rejected(plans, choice):
    ops = simulate(plans, 4)
    reads = [op for op in ops if op.kind == "read" and op.status == "ok" and op.return_ is not None]
    mutations = [(victim, value) for victim in reads for value in definitely_stale_values(ops, victim)]
    if not reads:
        reads = [read(None, 0, 0, key="a")]
        ops += reads
    if not mutations:
        mutations = [(reads[choice % len(reads)], "never written")]
    victim, victim.value = mutations[choice % len(mutations)]
    result = check_linearizable(ops, deadline_s=10)
    assert result.ok is False
    assert result.key == victim.key
    key_ops = [op for op in ops if op.key == victim.key]
    assert _RegisterSearch(key_ops).run(float("inf"), lambda: 0.0) is False, "the search alone must reject it too"


# --- agreement with trying every order ------------------------------------------------


def replays(order):
    """Whether a register starting empty gives every answer in this order; open requests take effect if they can."""
    state = None
    for op in order:
        open_ = op.is_open
        if op.kind == "read" and op.value != state:
            return False
        if op.kind == "write":
            state = op.value
        if op.kind == "delete":
            if op.outcome == "not_found":
                if state is not None:
                    return False
            elif state is None and not open_:
                return False
            else:
                state = None
        if op.kind == "cas":
            if op.outcome == "precondition_failed":
                if state == op.expected:
                    return False
            elif state == op.expected:
                state = op.value
            elif not open_:
                return False
    return True


def linearizable_by_trying_every_order(ops):
    """The definition itself, for tiny histories: some subset of open requests, in some real-time order, replays."""
    answered = [
        op
        for op in ops
        if not op.is_open
        and (op.status == "ok" or op.outcome is not None)
        and (op.kind != "read" or op.consistency == "linearizable")
    ]
    open_changes = [op for op in ops if op.is_open and op.kind != "read"]
    for count in range(len(open_changes) + 1):
        for chosen in itertools.combinations(open_changes, count):
            for order in itertools.permutations(answered + list(chosen)):
                in_time = all(
                    not later.effective_return < earlier.call
                    for position, earlier in enumerate(order)
                    for later in order[position + 1 :]
                )
                if in_time and replays(order):
                    return True
    return False


@st.composite
def tiny_histories(draw):
    size = draw(st.integers(1, 6))
    names = [None] + [f"w{i}" for i in range(size)]
    ops = []
    for index in range(size):
        kind = draw(st.sampled_from(KINDS_TO_DRAW))
        call = draw(st.integers(0, 8))
        status = draw(st.sampled_from(["ok", "ok", "ok", "unknown", "fail"]))
        ret = None if status == "unknown" and draw(st.booleans()) else call + draw(st.integers(0, 6))
        fields = {}
        if kind in ("write", "cas"):
            fields["value"] = f"w{index}"
        if kind == "cas":
            fields["expected"] = draw(st.sampled_from(names))
        if kind == "read":
            fields["value"] = draw(st.sampled_from(names))
        if kind in ("delete", "cas") and status != "unknown" and draw(st.booleans()):
            fields["outcome"] = "not_found" if kind == "delete" else "precondition_failed"
        ops.append(Operation(index, index, "n1", "k", kind, call, ret, status, **fields))
    return ops


KINDS_TO_DRAW = ["read", "read", "write", "write", "delete", "cas", "cas"]


@settings(max_examples=1000, deadline=None)
@given(tiny_histories())
def test_agrees_with_trying_every_order(ops):
    expected = linearizable_by_trying_every_order(ops)
    assert _RegisterSearch(ops).run(float("inf"), lambda: 0.0) is expected
    result = check_linearizable(ops)
    assert result.ok is expected
    if not expected:
        assert linearizable_by_trying_every_order(result.failing_history) is False


def test_a_long_history_checks_quickly():
    rng = random.Random(20240607)
    open_writes = set(rng.sample(range(5000), 8))
    plans = [
        Plan(
            process=rng.randrange(8),
            key=f"key{rng.randrange(5)}",
            kind="write" if index in open_writes else rng.choice(["read", "read", "write", "write", "cas", "delete"]),
            gap=rng.uniform(0, 2),
            duration=rng.uniform(0.5, 10),
            where=rng.random(),
            fate="open_applied" if index in open_writes else rng.choice(["ok"] * 20 + ["open_lost", "fail"]),
            pick=rng.randrange(8),
        )
        for index in range(5000)
    ]
    result = check_linearizable(simulate(plans, 8), deadline_s=10)
    assert result.ok is True, result.reason
    assert result.keys_checked == 5
