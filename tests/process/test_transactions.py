"""Transactions on a real 3-node cluster: sent through every node, no reader anywhere sees half of one,
and compare-and-set through transactions loses no update."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from badkv.client import Client, ClientError
from badkv.testing.processes import LocalCluster

pytestmark = pytest.mark.process

FAST = ["-in-memory", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
        "-sync-interval", "1", "-peer-timeout", "0.5"]
TENANT = "pairs"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(3, tmp_path_factory.mktemp("txn"), extra_args=FAST) as running:
        running.wait_ready()
        yield running


def clients_of(cluster) -> list[Client]:
    return [Client(node.url, timeout=5) for node in cluster.nodes.values()]


def write_pairs(client: Client, writer: int, count: int) -> int:
    """``count`` transactions that set a and b to one new value; returns the last revision."""
    revision = 0
    for i in range(count):
        value = f"w{writer}-{i}"
        answer = client.txn(TENANT, success=[{"op": "put", "name": "a", "value": value},
                                             {"op": "put", "name": "b", "value": value}])
        assert answer["succeeded"] and answer["revision"] > revision
        revision = answer["revision"]
    return revision


def read_pairs(client: Client, done: threading.Event) -> tuple[int, list]:
    """Range pages and take pages of the tenant until ``done``: (pages with both keys, pages that did not
    show the two equal)."""
    both, torn = 0, []
    while not done.is_set():
        records = client.range(TENANT)["records"]
        values = {record["name"]: record["value"] for record in records}
        take = client.take(0, limit=1, tenant=TENANT)["records"]  # one record asked: the whole revision comes
        took = {record["name"]: record["value"] for record in take}
        for seen in (values, took):
            if len(seen) == 2:
                both += 1
            if seen and (len(seen) != 2 or seen["a"] != seen["b"]):
                torn.append(seen)
    return both, torn


def test_no_reader_on_any_node_sees_half_of_a_transaction(cluster):
    writers, readers = clients_of(cluster), clients_of(cluster)
    done = threading.Event()
    with ThreadPoolExecutor(len(writers) + len(readers)) as pool:
        reading = [pool.submit(read_pairs, client, done) for client in readers]
        writing = [pool.submit(write_pairs, client, number, 40) for number, client in enumerate(writers)]
        try:
            last = max(future.result(timeout=120) for future in writing)
        finally:
            done.set()
        seen = [future.result(timeout=30) for future in reading]
    for (both, torn), client in zip(seen, readers):
        assert torn == [], f"{client.endpoint} showed part of a transaction: {torn[:3]}"
        assert both > 10, f"{client.endpoint} read too few pages to tell ({both})"
    finals = [client.get(TENANT, "a", min_revision=last).value for client in readers]
    assert len(set(finals)) == 1 and finals[0] == readers[0].get(TENANT, "b", min_revision=last).value


def increment(client: Client, times: int) -> int:
    """Add one to the counter ``times`` by compare-and-set transactions, retrying a lost race."""
    tries = 0
    for _ in range(times):
        while True:
            tries += 1
            current = client.txn(TENANT, success=[{"op": "get", "name": "counter"}])["results"][0]
            compare = ({"name": "counter", "target": "revision", "op": "==", "revision": current["revision"]}
                       if current["found"] else {"name": "counter", "target": "exists", "exists": False})
            value = int(base64.b64decode(current["value"])) if current["found"] else 0
            answer = client.txn(TENANT, compare=[compare],
                                success=[{"op": "put", "name": "counter", "value": str(value + 1)}])
            if answer["succeeded"]:
                break
    return tries


def test_compare_and_set_through_every_node_loses_no_increment(cluster):
    clients = clients_of(cluster)
    with ThreadPoolExecutor(len(clients)) as pool:
        tries = sum(pool.map(increment, clients, [10] * len(clients), timeout=120))
    assert [int(client.get(TENANT, "counter", consistency="linearizable").value) for client in clients] == [30] * 3
    assert tries >= 30


def test_a_bad_transaction_is_refused_by_the_follower_it_reached(cluster):
    follower = Client(cluster.followers[0].url, timeout=5)
    with pytest.raises(ClientError) as refused:
        follower.txn(TENANT, success=[{"op": "put", "name": "a/b", "value": "x"}])
    assert (refused.value.status, refused.value.code) == (400, "invalid_name")
