"""The `perf` scenario's servers: a durable badkv cluster, an etcd cluster and a PySyncObj cluster.

Each `start_*` starts three members in the scenario's ServerPool, with their
data under one temp folder on disk, waits until they serve, finds the
leader, and returns the `Target`s the scenario loads. A cluster that cannot
start raises `SetupProblem` with the reason; the scenario skips only what
needs that cluster.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from bench import etcd_cluster
from bench.measure import BADKV_API, BADKV_LINEARIZABLE_API, ETCD_V2_API, Target
from bench.scenarios import (DURABLE_CLUSTER_NAMES, cluster_members, durable_spec, leader_first, storage_problem,
                             storage_stats, wait_for_replication)
from bench.servers import LOOPBACK, ServerSpec, ServerStartError, free_ports, one_line

logger = logging.getLogger(__name__)

SYNCOBJ_NAMES = ("s1", "s2", "s3")
SYNCOBJ_INSTALL_HINT = "pip install -e '.[bench]' (PyPI pysyncobj)"


class SetupProblem(Exception):
    """A cluster did not start or does not serve as the scenario needs; the message says why."""


@dataclass(frozen=True)
class BadkvTargets:
    leader: Target
    follower: Target
    leader_linearizable: Target
    follower_linearizable: Target
    members: str


def start_badkv(pool, config, data_root):
    """Three durable badkv nodes (-data-dir on disk, fsync on): the leader and a follower, plain and linearizable."""
    ports = free_ports(len(DURABLE_CLUSTER_NAMES))
    members = cluster_members(DURABLE_CLUSTER_NAMES, ports)
    specs = [durable_spec(config, name, port, members, Path(data_root) / name)
             for name, port in zip(DURABLE_CLUSTER_NAMES, ports)]
    try:
        pool.start(specs)
    except ServerStartError as error:
        raise SetupProblem(f"badkv cluster did not start: {one_line(error)}") from error
    leader_spec, follower_spec = leader_first(specs)[:2]
    leader = Target(f"badkv leader {_name(leader_spec)}", leader_spec.base_url, BADKV_API)
    follower = Target(f"badkv follower {_name(follower_spec)}", follower_spec.base_url, BADKV_API)
    problem = wait_for_replication(leader, follower) or storage_problem(leader.label, storage_stats(leader), False)
    if problem:
        raise SetupProblem(problem)
    return BadkvTargets(
        leader=leader, follower=follower, members=members,
        leader_linearizable=Target(f"{leader.label} linearizable", leader.base_url, BADKV_LINEARIZABLE_API),
        follower_linearizable=Target(f"{follower.label} linearizable", follower.base_url, BADKV_LINEARIZABLE_API),
    )


def _name(spec):
    return spec.label.removeprefix("badkv-")


def start_etcd(pool, data_root):
    """Three etcd 3.4 members (v2 API, data on disk): (leader Target, follower Target)."""
    try:
        binary = etcd_cluster.ensure_etcd()
    except etcd_cluster.EtcdMissing as error:
        raise SetupProblem(str(error)) from error
    specs = etcd_cluster.cluster_specs(binary, free_ports(2 * len(etcd_cluster.MEMBER_NAMES)), data_root)
    try:
        pool.start(specs)
    except ServerStartError as error:
        raise SetupProblem(f"etcd cluster did not start: {one_line(error)}") from error
    leader_spec, follower_spec = etcd_cluster.leader_first(specs)[:2]
    leader = Target(f"etcd leader {leader_spec.label.removeprefix('etcd-')}", leader_spec.base_url, ETCD_V2_API)
    follower = Target(f"etcd follower {follower_spec.label.removeprefix('etcd-')}", follower_spec.base_url, ETCD_V2_API)
    problem = wait_for_replication(leader, follower)  # also stores the read key
    if problem:
        raise SetupProblem(f"etcd: {problem}")
    return leader, follower


def syncobj_specs(config, data_root, names=SYNCOBJ_NAMES):
    """The ServerSpecs of a PySyncObj cluster: bench/syncobj_server.py, Raft and HTTP on loopback ports."""
    ports = free_ports(2 * len(names))
    raft_addresses = [f"{LOOPBACK}:{port}" for port in ports[:len(names)]]
    specs = []
    for index, name in enumerate(names):
        partners = ",".join(address for other, address in enumerate(raft_addresses) if other != index)
        argv = (str(config.venv_bin / "python"), "-m", "bench.syncobj_server",
                "--self", raft_addresses[index], "--partners", partners,
                "--http-port", str(ports[len(names) + index]), "--journal", str(Path(data_root) / f"{name}.journal"))
        specs.append(ServerSpec(label=f"pysyncobj-{name}", argv=argv, port=ports[len(names) + index]))
    return specs


def start_syncobj(pool, config, data_root):
    """Three PySyncObj members with a journal file each (no fsync): (leader Target, follower Target)."""
    Path(data_root).mkdir(parents=True, exist_ok=True)
    specs = syncobj_specs(config, data_root)
    try:
        pool.start(specs)
    except ServerStartError as error:
        hint = f"; install it with {SYNCOBJ_INSTALL_HINT}" if "No module named 'pysyncobj'" in str(error) else ""
        raise SetupProblem(f"PySyncObj cluster did not start: {one_line(error)}{hint}") from error
    leader_spec, follower_spec = leader_first(specs)[:2]
    leader = Target("PySyncObj leader (journal, no fsync)", leader_spec.base_url, BADKV_API)
    follower = Target("PySyncObj follower", follower_spec.base_url, BADKV_API)
    problem = wait_for_replication(leader, follower)
    if problem:
        raise SetupProblem(f"PySyncObj: {problem}")
    return leader, follower
