"""Tests for badkv.discovery: members from SRV records served by a DNS server on loopback, and every way it fails."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from badkv.config import Config
from badkv.discovery import srv_members
from badkv.errors import ConfigError
from badkv.testing.dns_server import DnsServer

SERVICE = "_badkv._tcp.example.test"


@pytest.fixture
def dns_server():
    """Three members on 127.0.0.1-3; n3 has the lowest priority value, so it is listed (and stands) first."""
    with DnsServer() as server:
        server.srv[SERVICE] = [(10, 0, 10002, "n2.example.test"), (10, 5, 10001, "n1.example.test"),
                               (0, 0, 10003, "n3.example.test")]
        for number in (1, 2, 3):
            server.a[f"n{number}.example.test"] = f"127.0.0.{number}"
        yield server


def members(dns_server, name="n1", domain="example.test", **kwargs):
    return srv_members(name, domain, dns_server.address, **kwargs)


def test_members_are_the_srv_targets_first_labels_in_priority_then_name_order(dns_server):
    assert members(dns_server) == (("n3", "127.0.0.3:10003"), ("n1", "127.0.0.1:10001"),
                                   ("n2", "127.0.0.2:10002"))


def test_every_node_derives_the_same_list_whatever_order_the_server_answers_in(dns_server):
    first = members(dns_server, "n2")
    dns_server.srv[SERVICE].reverse()
    assert members(dns_server, "n3") == first


def test_a_target_with_only_an_ipv6_address_gets_a_bracketed_address(dns_server):
    del dns_server.a["n2.example.test"]
    dns_server.aaaa["n2.example.test"] = "::1"
    assert dict(members(dns_server))["n2"] == "[::1]:10002"


def test_addresses_that_come_with_the_srv_answer_need_no_more_queries(dns_server):
    dns_server.glue = True
    assert members(dns_server)[0] == ("n3", "127.0.0.3:10003")
    assert dns_server.queries == 1
    dns_server.glue = False
    members(dns_server)
    assert dns_server.queries == 1 + 4  # without them: the SRV query, then one A query per target


def test_a_trailing_dot_on_the_domain_is_the_same_domain(dns_server):
    assert members(dns_server, domain="example.test.") == members(dns_server)


def only_an_address_record(server):
    """The service name exists, but holds an A record and no SRV."""
    del server.srv[SERVICE]
    server.a[SERVICE] = "127.0.0.9"


@pytest.mark.parametrize("name, change, fragment", [
    pytest.param("n9", lambda server: None, "this node's name 'n9' is not among the members of "
                 "_badkv._tcp.example.test (n3, n1, n2;", id="name-not-listed"),
    pytest.param("n1", lambda server: server.srv.clear(), "_badkv._tcp.example.test does not exist (NXDOMAIN)",
                 id="nxdomain"),
    pytest.param("n1", only_an_address_record, "_badkv._tcp.example.test has no SRV records", id="no-srv"),
    pytest.param("n1", lambda server: server.a.pop("n2.example.test"),
                 "the SRV target n2.example.test. has no A or AAAA record", id="target-without-address"),
    pytest.param("n1", lambda server: server.srv[SERVICE].append((0, 0, 10004, "n1.other.test")),
                 "two SRV targets of _badkv._tcp.example.test give the member name 'n1'", id="same-name-twice"),
    pytest.param("n1", lambda server: server.srv[SERVICE].append((0, 0, 10004, "-bad.example.test")),
                 "gives member name '-bad', which is not a valid node name", id="invalid-name"),
])
def test_bad_records_are_one_sentence_naming_the_problem(dns_server, name, change, fragment):
    change(dns_server)
    with pytest.raises(ConfigError) as raised:
        members(dns_server, name)
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_silent_server_is_a_timeout_within_the_bound(dns_server):
    dns_server.silent = True
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"no answer for _badkv._tcp.example.test SRV within 2.5 s \(timed out\)"):
        members(dns_server, timeout=2.5)
    assert time.monotonic() - started < 4.0  # bounded: about the 2.5 s allowed
    assert dns_server.queries >= 2  # a lost query is sent again within that time


def test_a_failing_server_is_asked_again_until_it_answers(dns_server):
    dns_server.failing = True
    pauses = []

    def recover_after_a_pause(seconds):
        pauses.append(seconds)
        dns_server.failing = False

    assert members(dns_server, sleep=recover_after_a_pause)[0] == ("n3", "127.0.0.3:10003")
    assert pauses == [0.5]


def test_a_server_that_keeps_failing_says_so(dns_server):
    dns_server.failing = True
    with pytest.raises(ConfigError, match="the DNS server answered with an error"):
        members(dns_server, timeout=1.0)


def test_config_from_sources_runs_as_if_cluster_had_listed_the_members(dns_server):
    discovered = Config.from_sources({"name": "n1", "discovery_srv": "example.test",
                                      "discovery_dns_server": dns_server.address})
    listed = Config.from_sources({"name": "n1", "cluster": "n3=127.0.0.3:10003,n1=127.0.0.1:10001,"
                                                          "n2=127.0.0.2:10002"})
    assert discovered.cluster == listed.cluster
    assert discovered.cluster_id == listed.cluster_id  # the data dir identity does not depend on how
    assert (discovered.peers, discovered.threads) == (listed.peers, listed.threads)


def test_config_asks_the_discover_function_it_is_given():
    asked = []

    def discover(name, domain, dns_server):
        asked.append((name, domain, dns_server))
        return (("a", "127.0.0.1:1"), ("b", "127.0.0.1:2"), ("c", "127.0.0.1:3"))

    config = Config.from_sources({"name": "b", "discovery_srv": "d.test"}, discover=discover)
    assert asked == [("b", "d.test", "")]
    assert config.peers == {"a": "127.0.0.1:1", "c": "127.0.0.1:3"}


def test_cluster_and_discovery_together_are_refused_before_any_lookup():
    def discover(*args):
        raise AssertionError("looked up")

    with pytest.raises(ConfigError, match="-cluster or -discovery-srv, not both"):
        Config.from_sources({"name": "n1", "cluster": "n1=127.0.0.1:1", "discovery_srv": "d.test"},
                            discover=discover)


def test_the_real_command_stops_with_one_line_when_its_name_is_not_listed(dns_server):
    done = subprocess.run([sys.executable, "-m", "badkv", "-name", "n9", "-in-memory", "-discovery-srv",
                           "example.test", "-discovery-dns-server", dns_server.address],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("badkv: -discovery-srv: this node's name 'n9' is not among the members")
