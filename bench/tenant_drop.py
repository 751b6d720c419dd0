"""Tenant drop with many keys: how long the drop entry takes to apply, how long pruning runs, and the
longest a concurrent request of another tenant waited meanwhile.

    PYTHONPATH=. .venv/bin/python bench/tenant_drop.py --keys 100000

A single in-memory node (the apply is the same on every node). The dropped tenant is loaded straight
into the store (loading it through the write path would only make the run longer); the drop itself
goes through the write path, the log and the applier like any write. Two threads keep working on
another tenant meanwhile: one writes through the leader's write path, one reads and takes.
"""

from __future__ import annotations

import argparse
import threading
import time

from badkv.cluster.node import Node
from badkv.config import Config
from badkv.records import Record


def load(node: Node, tenant: str, keys: int) -> None:
    for i in range(keys):
        revision = node.clock.next()
        node.store.apply(Record.build(tenant, f"key-{i:07d}", b"x" * 100, revision, revision, False))


def worker(stop: threading.Event, operation, stalls: list) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        operation()
        stalls.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--baseline", action="store_true", help="the same run without the drop: stalls anyway")
    args = parser.parse_args()
    node = Node(Config.from_sources({"name": "drop-bench", "in_memory": True}))
    node.start()
    try:
        load(node, "big", args.keys)
        load(node, "other", 1000)
        counter = iter(range(10 ** 9))
        write_stalls, read_stalls, stop = [], [], threading.Event()
        threads = [threading.Thread(target=worker, args=(stop, lambda: node.write(
                       "put", "other", f"w{next(counter) % 1000}", b"v"), write_stalls)),
                   threading.Thread(target=worker, args=(stop, lambda: (node.read("other", "key-0000001"),
                                    node.take(0, 100, "other")), read_stalls))]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        write_stalls.clear(), read_stalls.clear()
        started = time.perf_counter()
        holds = []
        prune_some = node.store.prune_some

        def timed_prune(limit):
            began = time.perf_counter()
            try:
                return prune_some(limit)
            finally:
                holds.append(time.perf_counter() - began)

        node.store.prune_some = timed_prune  # (an instance attribute: the prune thread calls this one)
        if args.baseline:
            time.sleep(1)
        else:
            node.tenants.drop("big")
        applied = time.perf_counter() - started
        while node.store.prune_wanted.is_set():
            time.sleep(0.001)
        pruned = time.perf_counter() - started
        time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join()
        if not args.baseline:
            assert node.store.get("big", "key-0000001") is None and not node.store.take(0, 10, "big")[0]
        print(f"keys dropped: {0 if args.baseline else args.keys} (tenant of {args.keys} keys)")
        print(f"drop acknowledged (entry applied): {applied * 1000:.1f} ms")
        print(f"index pruned: {pruned * 1000:.1f} ms after the drop was sent")
        if holds:
            print(f"pruning: {len(holds)} chunks, longest {max(holds) * 1000:.2f} ms, "
                  f"median {sorted(holds)[len(holds) // 2] * 1000:.2f} ms")
        for name, stalls in (("write of another tenant", write_stalls), ("read+take of another tenant", read_stalls)):
            stalls.sort()
            print(f"{name}: {len(stalls)} ops, median {stalls[len(stalls) // 2] * 1000:.2f} ms, "
                  f"p99 {stalls[int(len(stalls) * 0.99)] * 1000:.2f} ms, longest {stalls[-1] * 1000:.2f} ms")
    finally:
        node.stop()


if __name__ == "__main__":
    main()
