"""Leadership benchmarks: failover time after kill -9 of the leader, and elections under steady load.

    .venv/bin/python bench/elections.py failover [--kills 20]
    .venv/bin/python bench/elections.py steady [--minutes 10] [--connections 32]

Both start a 3-node cluster of real ``badkv`` processes with default settings
(fsync on, data dirs under /var/tmp) on free loopback ports, and stop every
process they started.

``failover``: clients write through every node all the time (three threads per
node, a new key per write, no retries). Each round kills the leader with
SIGKILL and measures, for every survivor, the time from the kill to the first
write sent after the kill that this survivor acknowledged (202); the round's
figure is the slowest survivor. Then the old leader restarts and the cluster
settles before the next round. Prints the distribution and writes
bench/results/failover-<stamp>.json.

``steady``: wrk writes through the leader at 32 connections for ``--minutes``;
the figure is how many elections, leader changes and term changes that caused
(the goal is none). Writes bench/results/steady-<stamp>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, so "bench" and "badkv" import

from badkv.testing.processes import LocalCluster  # noqa: E402
from bench.disk import default_data_parent  # noqa: E402
from bench.loadgen import LoadSpec, ensure_wrk, run_wrk  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def durable_cluster(workdir: Path) -> LocalCluster:
    cluster = LocalCluster(3, workdir / "logs")
    for node in cluster.nodes.values():
        node.extra_args.extend(["-data-dir", str(workdir / "data" / node.name)])
    return cluster


class Writers:
    """Threads that write through every node; each write is (node, sent, done, status)."""

    def __init__(self, cluster: LocalCluster, per_node: int = 3):
        self.cluster = cluster
        self.stop = threading.Event()
        self.log: list[tuple[str, float, float, int]] = []
        self.threads = [threading.Thread(target=self._write, args=(name, number), daemon=True)
                        for name in cluster.names for number in range(per_node)]

    def _write(self, name: str, number: int) -> None:
        session, count = requests.Session(), 0
        node = self.cluster.nodes[name]
        while not self.stop.is_set():
            count += 1
            sent = time.monotonic()
            try:
                status = session.post(f"{node.url}/api/v1/keys/failover/{name}-{number}-{count}", data=b"x" * 100,
                                      timeout=5).status_code
            except requests.RequestException:
                status = 0
                time.sleep(0.01)  # a dead node refuses at once: do not spin
            self.log.append((name, sent, time.monotonic(), status))

    def first_ack_after(self, name: str, moment: float) -> float | None:
        done = [finished for node, sent, finished, status in list(self.log)
                if node == name and sent >= moment and status == 202]
        return min(done) - moment if done else None


def failover(args) -> dict:
    with tempfile.TemporaryDirectory(dir=default_data_parent(RESULTS)) as folder:
        cluster = durable_cluster(Path(folder))
        with cluster:
            cluster.wait_ready(30)
            writers = Writers(cluster)
            for thread in writers.threads:
                thread.start()
            rounds = []
            try:
                for round_number in range(1, args.kills + 1):
                    rounds.append(_one_kill(cluster, writers, round_number))
            finally:
                writers.stop.set()
                for thread in writers.threads:
                    thread.join(10)
    seconds = [r["recovery_s"] for r in rounds if r["recovery_s"] is not None]
    return {"kind": "failover", "kills": args.kills, "rounds": rounds,
            "median_s": statistics.median(seconds) if seconds else None,
            "p90_s": sorted(seconds)[int(0.9 * (len(seconds) - 1))] if seconds else None,
            "max_s": max(seconds) if seconds else None,
            "never_recovered": sum(1 for r in rounds if r["recovery_s"] is None)}


def _one_kill(cluster: LocalCluster, writers: Writers, round_number: int) -> dict:
    cluster.wait_ready(30)
    time.sleep(1.0)  # every node writing normally before the kill
    leader = cluster.leader
    moment = time.monotonic()
    leader.kill()
    survivors = [name for name in cluster.names if name != leader.name]
    deadline = moment + 10
    while time.monotonic() < deadline and any(writers.first_ack_after(s, moment) is None for s in survivors):
        time.sleep(0.02)
    per_survivor = {s: writers.first_ack_after(s, moment) for s in survivors}
    worst = None if None in per_survivor.values() else max(per_survivor.values())
    new_leader = cluster.wait_for_leader(other_than=(leader.name,)).name
    print(f"round {round_number:2d}: killed {leader.name}, {new_leader} leads; writes through every survivor "
          f"again after {'never' if worst is None else f'{worst:.3f} s'}", flush=True)
    leader.start()
    return {"round": round_number, "killed": leader.name, "new_leader": new_leader, "recovery_s": worst,
            "per_survivor_s": per_survivor}


def steady(args) -> dict:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(dir=default_data_parent(RESULTS)) as folder:
        cluster = durable_cluster(Path(folder))
        with cluster:
            cluster.wait_ready(30)
            leader = cluster.leader
            before = {name: _stats(node) for name, node in cluster.nodes.items()}
            result = run_wrk(wrk, LoadSpec(f"{leader.url}/api/v1/keys/bench/", "write.lua",
                                           ("POST", "raw", "10000", "100"), duration_s=int(args.minutes * 60),
                                           connections=args.connections))
            after = {name: _stats(node) for name, node in cluster.nodes.items()}
    changes = {name: {field: after[name][field] - before[name][field]
                      for field in ("term", "elections_started", "pre_votes_started", "leader_changes")}
               for name in before}
    return {"kind": "steady", "minutes": args.minutes, "connections": args.connections,
            "requests_per_second": result.requests_per_second, "non_2xx": result.non_2xx,
            "changes": changes, "elections": sum(c["elections_started"] for c in changes.values())}


def _stats(node) -> dict:
    return requests.get(node.url + "/admin/stats", timeout=5).json()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/elections.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    kill = commands.add_parser("failover", help="kill -9 the leader again and again under write load")
    kill.add_argument("--kills", type=int, default=20)
    quiet = commands.add_parser("steady", help="count elections under a long write load")
    quiet.add_argument("--minutes", type=float, default=10.0)
    quiet.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    result = failover(args) if args.command == "failover" else steady(args)
    result["machine_cpus"] = len(__import__("os").sched_getaffinity(0))
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{args.command}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("rounds",)}
    print(json.dumps(summary, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
