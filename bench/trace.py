"""Where one request's time goes: timestamps along a write's and a read's path on a 3-node durable cluster.

    .venv/bin/python bench/trace.py [--count 200] [--durable-dir /var/tmp]

Starts three nodes with ``BADKV_TRACE`` set (``badkv/tracing.py``: each process appends
``<monotonic ns> <node> <thread> <event>`` lines), sends ``--count`` sequential requests of each kind
from one client (POST to the leader, linearizable GET on the leader, POST to a follower), a pause
between requests so that each one's events stand alone, then merges the files into one timeline
(CLOCK_MONOTONIC is one clock for every process of the machine). For each event it prints the median
time since the client sent the request, in the order events happen: L is the leader, F the follower the
client called (or the first follower), O the other follower; ``#2`` is an event's second occurrence
within one request (a write with ``-acks all`` takes two append rounds).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from badkv.testing.processes import LocalCluster  # noqa: E402

KINDS = (("POST to the leader", "leader", "post", ""), ("linearizable GET on the leader", "leader", "get",
         "?consistency=linearizable"), ("POST to a follower", "follower", "post", ""))


def record(count: int, workdir: str, extra: list[str]):
    """Run the requests; the leader's and follower's names and each request's (kind, sent, answered)."""
    os.environ["BADKV_TRACE"] = os.path.join(workdir, "trace")
    os.makedirs(os.environ["BADKV_TRACE"])
    cluster = LocalCluster(3, Path(workdir), extra_args=extra)
    for node in cluster.nodes.values():
        node.extra_args = node.extra_args + ["-data-dir", os.path.join(workdir, node.name)]
    marks = []
    with cluster:
        cluster.wait_ready()
        leader = cluster.wait_for_leader()
        follower = next(node for node in cluster.nodes.values() if node is not leader)
        session = requests.Session()
        session.trust_env = False
        for kind, target, method, query in KINDS:
            url = (leader if target == "leader" else follower).url + "/api/v1/keys/trace/k" + query
            for _ in range(count):
                time.sleep(0.02)
                sent = time.monotonic_ns()
                response = session.post(url, data=b"x" * 100) if method == "post" else session.get(url)
                marks.append((kind, sent, time.monotonic_ns()))
                response.raise_for_status()
    return leader.name, follower.name, marks


def timeline(trace_dir: str, leader: str, follower: str, marks):
    events = []
    for path in Path(trace_dir).glob("*.trace"):
        for line in path.read_text().splitlines():
            stamp, node, _thread, event = line.split(" ", 3)
            events.append((int(stamp), node, event))
    events.sort()
    stamps = [event[0] for event in events]
    offsets = collections.defaultdict(lambda: collections.defaultdict(list))
    for kind, sent, answered in marks:
        seen = collections.Counter()
        for stamp, node, event in events[bisect.bisect_left(stamps, sent):bisect.bisect_right(stamps, answered)]:
            where = "L" if node == leader else "F" if node == follower else "O"
            event = re.sub(r"apply \d+", "apply", event)
            seen[(where, event)] += 1
            offsets[kind][f"{where} {event} #{seen[(where, event)]}"].append((stamp - sent) / 1e6)
        offsets[kind]["client has the answer"].append((answered - sent) / 1e6)
    return offsets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--durable-dir", default="/var/tmp")
    parser.add_argument("--badkv-args", default="", help="more flags for every node, e.g. '-acks majority'")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="badkv-trace-", dir=args.durable_dir)
    try:
        leader, follower, marks = record(args.count, workdir, args.badkv_args.split())
        offsets = timeline(os.path.join(workdir, "trace"), leader, follower, marks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for kind, rows in offsets.items():
        total = len(rows["client has the answer"])
        print(f"== {kind}: {total} requests; median ms since the client sent it")
        for event, values in sorted(rows.items(), key=lambda row: statistics.median(row[1])):
            if len(values) >= total / 2:  # events of most requests only (not a stray heartbeat's)
                print(f"  {statistics.median(values):7.2f}  {event}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
