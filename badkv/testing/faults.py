"""Fault scenarios: a 3-node cluster wired through the fault proxy, a recorded workload, one fault, a verdict.

A run starts the cluster with every peer link going through ``ProxyNetwork``,
runs the workload, injects one fault for a while, heals, waits for the nodes
to converge, and then checks the history (linearizability, local reads, no
lost acknowledged write). A failing run keeps its history, the verdict and
every node's log in one folder.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import requests

from badkv.client import Client, ClientError
from badkv.testing.checker import CheckResult, check_linearizable, check_local_reads, check_no_lost_writes
from badkv.testing.history import save_history
from badkv.testing.pairs import final_pair_values
from badkv.testing.processes import LocalCluster, free_port
from badkv.testing.proxy import ProxyNetwork
from badkv.testing.workload import TENANT, Workload

logger = logging.getLogger(__name__)

NODE_ARGS = ["-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2",
             "-peer-timeout", "0.5", "-sync-interval", "2"]


@dataclass
class Fault:
    """Inject and heal one fault on a running cluster. ``inject`` returns the nodes it struck, and
    ``heal`` gets them back: the leader may have changed by then. ``leader`` says whether the fault
    strikes the leader, so the cluster must elect another to go on writing."""

    name: str
    inject: Callable[["Harness"], list]
    heal: Callable[["Harness", list], None]
    size: int = 3
    leader: bool = False


@dataclass
class ScenarioResult:
    scenario: str
    seed: int
    ok: bool
    operations: int
    acknowledged_writes: int
    linearizable: bool | None
    checker_reason: str
    local_read_problems: list[str] = field(default_factory=list)
    lost_write_problems: list[str] = field(default_factory=list)
    converged_after_s: float | None = None
    first_ack_after_fault_s: float | None = None
    first_ack_after_heal_s: float | None = None
    artifacts: str | None = None

    def summary(self) -> str:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}s"

        return (f"{self.scenario} seed={self.seed}: {'OK' if self.ok else 'FAILED'}, {self.operations} ops, "
                f"{self.acknowledged_writes} acked writes, converged in {seconds(self.converged_after_s)}, "
                f"first ack after fault {seconds(self.first_ack_after_fault_s)}, "
                f"after heal {seconds(self.first_ack_after_heal_s)}"
                + (f"; artifacts in {self.artifacts}" if self.artifacts else ""))


class Harness:
    """A cluster behind a proxy network; the handles a Fault needs."""

    def __init__(self, workdir: Path, *, size: int = 3, durable: bool = True):
        self.workdir = Path(workdir)
        self.proxy = ProxyNetwork().start()
        names = [f"n{i + 1}" for i in range(size)]
        ports = {name: free_port() for name in names}
        peer_addresses = {}
        for src in names:
            for dst in names:
                if src != dst:
                    port = self.proxy.add_link(src, dst, ("127.0.0.1", ports[dst]))
                    peer_addresses[(src, dst)] = f"127.0.0.1:{port}"
        self.cluster = LocalCluster(size, self.workdir / "logs", extra_args=NODE_ARGS + ([] if durable else ["-in-memory"]),
                                    peer_addresses=peer_addresses, ports=ports)
        if durable:
            for node in self.cluster.nodes.values():
                node.extra_args.extend(["-data-dir", str(self.workdir / "data" / node.name)])

    @property
    def leader(self):
        return self.cluster.leader

    @property
    def follower(self):
        return self.cluster.followers[0]

    def start(self) -> "Harness":
        """Start the cluster; if it does not come up, stop what did (nodes and the proxy's thread) and raise."""
        try:
            self.cluster.start()
            self.cluster.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def restart_stopped(self) -> None:
        for node in self.cluster.nodes.values():
            if not node.running:
                node.start(wait=False)
        for node in self.cluster.nodes.values():
            node.wait_healthy(20)

    def stop(self) -> None:
        try:
            self.cluster.stop()
        finally:
            self.proxy.stop()


def _kill(which: str) -> Fault:
    def inject(harness: "Harness") -> list:
        node = getattr(harness, which)
        node.kill()
        return [node]
    return Fault(f"kill-{which}", inject, lambda h, struck: h.restart_stopped(), leader=which == "leader")


def _pause_leader(harness: "Harness") -> list:
    node = harness.leader
    node.pause()
    return [node]


def _isolate(which: str):
    def inject(harness: "Harness") -> list:
        node = getattr(harness, which)
        harness.proxy.isolate(node.name)
        return [node]
    return inject


def _drop_leader_to_follower(harness: "Harness") -> list:
    leader, follower = harness.leader, harness.follower
    harness.proxy.drop_one_way(leader.name, follower.name)
    return [leader, follower]


def _kill_two(harness: "Harness") -> list:
    """Of five: the leader and one follower."""
    struck = [harness.leader, harness.follower]
    for node in struck:
        node.kill()
    return struck


def _change_with_a_follower_down(harness: "Harness") -> list:
    """A follower is down while a learner is added and removed again: both changes commit on the two nodes
    that are up, and the follower takes both config entries when it comes back."""
    node = harness.follower
    node.kill()
    leader = Client(harness.leader.url, timeout=5)
    leader.member_add("n9", f"127.0.0.1:{free_port()}")
    leader.member_remove("n9")
    return [node]


def _kill_leader_during_a_change(harness: "Harness") -> list:
    """The leader dies while it replicates a config entry: the next leader keeps or drops it."""
    leader = harness.leader

    def add() -> None:
        try:
            Client(leader.url, timeout=5).member_add("n9", f"127.0.0.1:{free_port()}")
        except ClientError:
            pass  # (the outcome is unknown to this caller; the cluster decides)

    adding = threading.Thread(target=add, daemon=True)
    adding.start()
    time.sleep(0.005)
    leader.kill()
    adding.join(10)
    return [leader]


def _heal_network(harness: "Harness", struck: list) -> None:
    harness.proxy.heal()


FAULTS: dict[str, Fault] = {
    "kill-leader": _kill("leader"),
    "kill-follower": _kill("follower"),
    "pause-leader": Fault("pause-leader", _pause_leader, lambda h, struck: struck[0].resume(), leader=True),
    "blackhole-leader": Fault("blackhole-leader", _isolate("leader"), _heal_network, leader=True),
    "blackhole-follower": Fault("blackhole-follower", _isolate("follower"), _heal_network),
    "drop-leader-to-follower": Fault("drop-leader-to-follower", _drop_leader_to_follower, _heal_network),
    "delay-all": Fault("delay-all", lambda h: h.proxy.delay_all(0.1, 0.05) or [], _heal_network),
    "kill-two-of-five": Fault("kill-two-of-five", _kill_two, lambda h, struck: h.restart_stopped(), size=5,
                              leader=True),
    "change-with-follower-down": Fault("change-with-follower-down", _change_with_a_follower_down,
                                       lambda h, struck: h.restart_stopped()),
    "kill-leader-during-change": Fault("kill-leader-during-change", _kill_leader_during_a_change,
                                       lambda h, struck: h.restart_stopped(), leader=True),
}


def wait_converged(endpoints: dict[str, str], timeout: float) -> float | None:
    """Seconds until every node reports the same applied revision and the same take/0; None if never."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            revisions = {requests.get(url + "/admin/stats", timeout=1).json()["applied_revision"]
                         for url in endpoints.values()}
            if len(revisions) == 1:
                takes = [_take_all(url) for url in endpoints.values()]
                if all(take == takes[0] for take in takes):
                    return round(time.monotonic() - started, 3)
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.1)
    return None


def _take_all(url: str) -> list[dict]:
    records, cursor = [], 0
    while True:
        page = requests.get(f"{url}/api/v1/take/{cursor}", params={"limit": 1000}, timeout=2).json()
        records.extend(page["records"])
        cursor = page["next"]
        if len(page["records"]) < 1000:
            return records


def final_values(endpoints: dict[str, str], keys: list[str],
                 pairs: list[str] = ()) -> dict[str, dict[str, str | None]]:
    """Each node's final value of every key, and of every pair (badkv.testing.pairs) as one register."""
    finals: dict[str, dict[str, str | None]] = {}
    for node, url in endpoints.items():
        finals[node] = final_pair_values(url, TENANT, list(pairs))
        for key in keys:
            response = requests.get(f"{url}/api/v1/keys/{TENANT}/{key}", timeout=2)
            finals[node][key] = response.content.decode() if response.status_code == 200 else None
    return finals


def run_scenario(scenario: str, seed: int, workdir: Path, *, duration: float = 8.0, fault_at: float = 2.0,
                 fault_for: float = 3.0, artifacts_root: Path | None = None, durable: bool = True,
                 check_deadline: float = 60.0) -> ScenarioResult:
    """Run one scenario end to end and judge it; artifacts are kept when it fails."""
    fault = FAULTS[scenario]
    harness = Harness(workdir, size=fault.size, durable=durable).start()
    endpoints = {name: node.url for name, node in harness.cluster.nodes.items()}
    workload = Workload(endpoints, seed=seed)
    try:
        runner = workload.start(duration)
        time.sleep(fault_at)
        fault_moment = time.monotonic()
        struck = fault.inject(harness)
        time.sleep(fault_for)
        heal_moment = time.monotonic()
        fault.heal(harness, struck)
        runner.join(duration + 30)
        history = sorted(workload.history, key=lambda op: op.call)
        converged = wait_converged(endpoints, timeout=5.0)
        finals = final_values(endpoints, workload.keys, workload.pairs) if converged is not None else {}
    finally:
        harness.stop()
    verdict = check_linearizable(history, deadline_s=check_deadline)
    result = ScenarioResult(
        scenario=scenario, seed=seed, ok=False, operations=len(history),
        acknowledged_writes=sum(1 for op in history if op.kind != "read" and op.status == "ok"),
        linearizable=verdict.ok, checker_reason=verdict.reason,
        local_read_problems=check_local_reads(history),
        lost_write_problems=check_no_lost_writes(history, finals) if finals else ["the nodes did not converge"],
        converged_after_s=converged, first_ack_after_fault_s=workload.first_ack_since(fault_moment),
        first_ack_after_heal_s=workload.first_ack_since(heal_moment))
    result.ok = bool(verdict.ok) and not result.local_read_problems and not result.lost_write_problems
    if not result.ok and artifacts_root is not None:
        result.artifacts = _keep_artifacts(Path(artifacts_root), Path(workdir), result, history, verdict)
    return result


def _keep_artifacts(artifacts_root: Path, workdir: Path, result: ScenarioResult, history: list,
                    verdict: CheckResult) -> str:
    """Save a failed run's history, verdict and node logs in a folder of their own; return its path."""
    folder = artifacts_root / f"{result.scenario}-seed{result.seed}-{int(time.time())}"
    folder.mkdir(parents=True, exist_ok=True)
    save_history(folder / "history.jsonl", history)
    (folder / "verdict.json").write_text(json.dumps({**asdict(result), "checker": verdict.to_dict()},
                                                    indent=2, default=str))
    shutil.copytree(workdir / "logs", folder / "logs", dirs_exist_ok=True)
    return str(folder)
