"""A real 3-node cluster whose nodes find each other through SRV records (``-discovery-srv``), no ``-cluster``."""

from __future__ import annotations


import pytest

from badkv.client import Client
from badkv.testing.dns_server import DnsServer
from badkv.testing.processes import LocalCluster, wait_until

pytestmark = pytest.mark.process

FAST = ["-in-memory", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
        "-sync-interval", "1", "-peer-timeout", "0.5"]
SERVICE = "_badkv._tcp.example.test"


@pytest.fixture
def dns_server():
    with DnsServer() as server:
        yield server


@pytest.fixture
def discovered_cluster(tmp_path, dns_server):
    """n2 has the lowest SRV priority value, so it is listed first although the server lists it last."""
    cluster = LocalCluster(3, tmp_path, extra_args=FAST)
    priorities = {"n1": 10, "n2": 0, "n3": 10}
    for name, node in cluster.nodes.items():
        dns_server.srv.setdefault(SERVICE, []).insert(0, (priorities[name], 0, node.port, f"{name}.example.test"))
        dns_server.a[f"{name}.example.test"] = "127.0.0.1"
        node.cluster = None  # no -cluster: the members come from DNS only
        node.extra_args += ["-discovery-srv", "example.test", "-discovery-dns-server", dns_server.address]
    with cluster:
        cluster.wait_ready()
        yield cluster


def test_nodes_that_discover_each_other_elect_a_leader_and_replicate_a_write(discovered_cluster, dns_server):
    expected = [("n2", f"127.0.0.1:{discovered_cluster.ports['n2']}"),
                ("n1", f"127.0.0.1:{discovered_cluster.ports['n1']}"),
                ("n3", f"127.0.0.1:{discovered_cluster.ports['n3']}")]
    for node in discovered_cluster.nodes.values():
        members = Client(node.url, timeout=5).members()
        assert [(member["name"], member["address"]) for member in members] == expected
    assert dns_server.queries >= 3  # every node asked (none was given -cluster)

    leader = discovered_cluster.wait_for_leader()
    answer = Client(leader.url, timeout=5).put("discovery", "k", b"found")
    for node in discovered_cluster.nodes.values():
        got = Client(node.url, timeout=5).get("discovery", "k", min_revision=answer["revision"])
        assert (got.value, got.revision) == (b"found", answer["revision"])
    for node in discovered_cluster.nodes.values():
        assert wait_until(lambda: "members from the SRV records of _badkv._tcp.example.test"
                          in node.log_path.read_text(), timeout=5), f"{node.name} did not log what it found"
