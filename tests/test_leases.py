"""Tests for badkv/leases.py: the lease record, which keys are still attached, the ending entry, and the
countdown that starts when a node first holds a lease's record and never runs below zero."""

from badkv.leases import (LEASE_TENANT, Countdown, Lease, checkpoint_slack_ms, ending, lease_entry, lease_of,
                          lease_record, records_of_lease_entry)
from badkv.records import Record


class FakeClock:
    def __init__(self):
        self.now = 50.0

    def __call__(self):
        return self.now


def test_a_lease_record_holds_the_lease():
    lease = Lease(17, "acme", 10, 6500, {"a": 3})
    record = lease_record(lease, 20)
    assert (record.tenant, record.name, record.revision) == (LEASE_TENANT, "17", 20)
    assert lease_of(record) == lease
    assert lease_of(Record(LEASE_TENANT, "17", b"", 21, 21, True)) is None and lease_of(None) is None


def test_a_key_written_again_without_the_lease_is_no_longer_attached():
    records = {"kept": Record("acme", "kept", b"v", 3, 3), "rewritten": Record("acme", "rewritten", b"w", 9, 9),
               "deleted": Record("acme", "deleted", b"", 8, 8, True)}
    lease = Lease(1, "acme", 10, 10000, {"kept": 3, "rewritten": 4, "deleted": 5, "never": 6})
    assert lease.attached(records.get) == ["kept"]


def test_ending_deletes_the_lease_and_its_attached_keys_even_over_a_future_timestamp():
    future = Record("acme", "future", b"v", 2 ** 62, 3)
    records = {"future": future, "plain": Record("acme", "plain", b"v", 4, 4)}
    writes = ending(Lease(1, "acme", 10, 0, {"future": 3, "plain": 4}), records.get, 100)
    assert [(r.tenant, r.name, r.deleted, r.revision) for r in writes] == [
        (LEASE_TENANT, "1", True, 100), ("acme", "future", True, 100), ("acme", "plain", True, 100)]
    assert writes[1].wins_over(future) and writes[2].wins_over(records["plain"])


def test_a_lease_entry_round_trips_records_of_several_tenants():
    writes = [Record("acme", "a", b"1", 7, 7), lease_record(Lease(5, "acme", 3, 3000), 7),
              Record("acme", "b", b"", 2 ** 62, 7, True)]
    entry = lease_entry(7, writes)
    assert entry["op"] == "lease" and entry["revision"] == 7
    assert records_of_lease_entry(entry) == writes


def test_the_countdown_starts_when_a_node_first_holds_the_record():
    clock = FakeClock()
    countdown = Countdown(clock)
    record = lease_record(Lease(1, "acme", 10, 4000), 5)
    clock.now += 100  # however long ago the record was written elsewhere, this node counts from now
    assert countdown.remaining_ms(record) == 4000
    clock.now += 1.5
    assert countdown.remaining_ms(record) == 2500
    clock.now += 10
    assert countdown.remaining_ms(record) == 0
    renewed = lease_record(Lease(1, "acme", 10, 10000), 6)  # a keepalive: a new record, counted afresh
    assert countdown.remaining_ms(renewed) == 10000


def test_the_leader_counts_a_record_it_wrote_from_when_it_wrote_it():
    clock = FakeClock()
    countdown = Countdown(clock)
    record = lease_record(Lease(1, "acme", 10, 4000), 5)
    countdown.wrote(record)
    clock.now += 1
    assert countdown.remaining_ms(record) == 3000


def test_forgetting_ended_leases():
    clock = FakeClock()
    countdown = Countdown(clock)
    record = lease_record(Lease(1, "acme", 10, 4000), 5)
    countdown.remaining_ms(record)
    clock.now += 1
    countdown.forget_except(set())
    assert countdown.remaining_ms(record) == 4000  # counted again from now: it was forgotten


def test_checkpoint_slack_is_a_tenth_of_the_ttl_but_at_least_a_second():
    assert checkpoint_slack_ms(1) == 1000
    assert checkpoint_slack_ms(10) == 1000
    assert checkpoint_slack_ms(3600) == 360000
