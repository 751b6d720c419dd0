"""Tests for badkv.testing.safety: each property's check fails on a history that breaks it, and passes otherwise."""

from types import SimpleNamespace

import pytest

from badkv.consensus.log import Log
from badkv.testing.safety import SafetyChecker, SafetyViolation, check_logs_match


def entry(index, term, revision=None):
    return {"index": index, "term": term, "revision": revision or index, "op": "put"}


def log_of(*terms):
    log = Log()
    log.append([entry(index, term) for index, term in enumerate(terms, 1)])
    return log


def leader(name, term):
    return SimpleNamespace(name=name, core=SimpleNamespace(is_leader=True, current_term=term, name=name,
                                                           log=log_of(), commit_index=0))


def test_two_nodes_applying_different_entries_at_one_index_is_a_violation():
    checker = SafetyChecker()
    checker.applied("n1", entry(1, 1, 7))
    checker.applied("n2", entry(1, 1, 7))
    with pytest.raises(SafetyViolation, match="n3 applied"):
        checker.applied("n3", entry(1, 2, 8))


def test_a_second_leader_in_a_term_is_a_violation():
    checker = SafetyChecker()
    checker.check([leader("n1", 3)])
    checker.check([leader("n1", 3), leader("n2", 4)])
    with pytest.raises(SafetyViolation, match="two leaders in term 3"):
        checker.check([leader("n2", 3)])


def test_a_leader_lacking_a_committed_entry_is_a_violation():
    checker = SafetyChecker()
    old = SimpleNamespace(log=log_of(1, 1), commit_index=2, current_term=1)
    checker.note_commits(old)
    assert checker.committed == {1: (1, 1, 1), 2: (1, 2, 1)}
    checker.check_holds_committed(SimpleNamespace(log=log_of(1, 1, 2), current_term=2, name="n2"))
    with pytest.raises(SafetyViolation, match="lacks committed entry 2"):
        checker.check_holds_committed(SimpleNamespace(log=log_of(1), current_term=2, name="n3"))


def test_logs_that_agree_on_a_term_but_differ_before_it_do_not_match():
    check_logs_match(log_of(1, 1, 2), log_of(1, 1, 3), "n1", "n2")  # differ only after the last agreement
    differing = Log()
    differing.append([entry(1, 1, 99), entry(2, 1)])
    with pytest.raises(SafetyViolation, match="n1 and n2 agree on entry 2's term but differ at 1"):
        check_logs_match(log_of(1, 1), differing, "n1", "n2")
