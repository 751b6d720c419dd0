"""The etcd reference cluster: find or install etcd 3.4, build three members' commands, find the leader.

etcd comes from Debian's `etcd-server` package (`/usr/bin/etcd`). When it is
missing, `ensure_etcd` runs `apt-get install -y etcd-server` if it is root,
else it says which command to run. Each member keeps its data dir on disk
(under --durable-dir, not tmpfs) so its writes pay for fsync as badkv's
durable nodes do, and serves the v2 API (`--enable-v2`), whose keys the
harness writes form-encoded with PUT.
"""

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.servers import LOOPBACK, ServerSpec

logger = logging.getLogger(__name__)

ETCD_BINARY = Path("/usr/bin/etcd")
INSTALL_COMMAND = ("apt-get", "install", "-y", "-q", "etcd-server")
INSTALL_TIMEOUT_SECONDS = 600
MEMBER_NAMES = ("e1", "e2", "e3")
CLUSTER_TOKEN = "badkv-bench"
LEADER_STATE = "StateLeader"


class EtcdMissing(Exception):
    """etcd is not installed and could not be; the message says how to install it."""


def ensure_etcd(binary=ETCD_BINARY):
    """The path of etcd, installed with apt-get when missing and running as root."""
    found = binary if binary.exists() else shutil.which("etcd")
    if found:
        return Path(found)
    command = " ".join(INSTALL_COMMAND)
    if os.geteuid() != 0:
        raise EtcdMissing(f"etcd is not installed; install it with: sudo {command}")
    logger.warning("etcd is not installed; running: %s", command)
    try:
        subprocess.run(INSTALL_COMMAND, check=True, timeout=INSTALL_TIMEOUT_SECONDS,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.SubprocessError) as error:
        raise EtcdMissing(f"could not install etcd ({error}); install it with: {command}") from error
    found = binary if binary.exists() else shutil.which("etcd")
    if not found:
        raise EtcdMissing(f"etcd still missing after '{command}'")
    return Path(found)


@dataclass(frozen=True)
class EtcdMember:
    name: str
    client_port: int
    peer_port: int

    @property
    def client_url(self):
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://{LOOPBACK}:{self.peer_port}"


def members(ports, names=MEMBER_NAMES):
    """EtcdMembers from a flat list of ports: (client, peer) for each name in turn."""
    if len(ports) != 2 * len(names):
        raise ValueError(f"{len(names)} members need {2 * len(names)} ports, got {len(ports)}")
    return [EtcdMember(name, ports[2 * i], ports[2 * i + 1]) for i, name in enumerate(names)]


def initial_cluster(cluster_members):
    """etcd's --initial-cluster value: name=peer URL, comma separated."""
    return ",".join(f"{member.name}={member.peer_url}" for member in cluster_members)


def member_spec(binary, member, cluster_members, data_root):
    """The ServerSpec of one member of a new cluster, its data in <data_root>/<name>."""
    argv = (
        str(binary), "--name", member.name, "--data-dir", str(Path(data_root) / member.name),
        "--listen-client-urls", member.client_url, "--advertise-client-urls", member.client_url,
        "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", initial_cluster(cluster_members), "--initial-cluster-state", "new",
        "--initial-cluster-token", CLUSTER_TOKEN, "--enable-v2", "--log-level", "warn",
    )
    return ServerSpec(label=f"etcd-{member.name}", argv=argv, port=member.client_port, health_path="/health")


def cluster_specs(binary, ports, data_root):
    """The three members' ServerSpecs (started together: each waits for the others to form a quorum)."""
    cluster_members = members(ports)
    return [member_spec(binary, member, cluster_members, data_root) for member in cluster_members]


def is_leader(stats):
    """True if a /v2/stats/self document says its member leads."""
    return stats.get("state") == LEADER_STATE


def leader_first(specs, timeout_s=10.0):
    """The members' specs with the leader first, read from /v2/stats/self; the order is kept if none says so."""
    for spec in specs:
        try:
            stats = requests.get(spec.base_url + "/v2/stats/self", timeout=timeout_s).json()
        except (requests.RequestException, ValueError):
            continue
        if is_leader(stats):
            return [spec] + [other for other in specs if other is not spec]
    return list(specs)
