"""The benchmark scenarios: which servers to start and which comparisons to run on them.

Each scenario is a function `scenario(context) -> ScenarioResult` that starts
its own servers in a `ServerPool` (stopped when it returns or raises), always
including a fresh bare app as the baseline measured in the same run. A
scenario whose server cannot start is reported as skipped with the reason.
Adding a scenario is one function plus an entry in SCENARIOS.
"""

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.measure import ETCD_V2_API, READ_KEY, Comparison, Target, measure, preload
from bench.servers import LOOPBACK, ServerPool, ServerSpec, ServerStartError, expand_template, free_ports, one_line

ETCD_BINARY = Path("/usr/bin/etcd")
CLUSTER_NAMES = ("n1", "n2", "n3")
CLUSTER_SETTLE_SECONDS = 30.0


@dataclass(frozen=True)
class Context:
    """What a scenario gets: the config, where server logs go, and the load function."""

    config: object
    log_dir: Path
    load: object  # LoadSpec -> LoadResult

    def pool(self, scenario_name):
        """A ServerPool whose servers log to <log_dir>/<scenario_name>/."""
        log_dir = self.log_dir / scenario_name
        log_dir.mkdir(parents=True, exist_ok=True)
        return ServerPool(log_dir, self.config.repo_root, self.config.ready_timeout_s)


@dataclass
class ScenarioResult:
    """A scenario's outcome: its comparisons, or the reason it was skipped."""

    name: str
    skipped: str = ""
    notes: list = field(default_factory=list)
    comparisons: list = field(default_factory=list)


def bare_spec(config, port):
    """The baseline: bench/bare_app.py under gunicorn with badkv's worker settings (bare_gunicorn.conf.py)."""
    argv = (
        str(config.venv_bin / "gunicorn"),
        "--config", str(config.repo_root / "bench" / "bare_gunicorn.conf.py"),
        "--threads", str(config.server_threads),
        "--chdir", str(config.repo_root),
        "--bind", f"{LOOPBACK}:{port}",
        "bench.bare_app:app",
    )
    return ServerSpec(label="bare", argv=argv, port=port)


def badkv_spec(config, name, port, cluster_members=""):
    """A badkv node from the --badkv-cmd template; with `cluster_members`, `-cluster` is appended."""
    argv = expand_template(
        config.badkv_cmd, name=name, port=port, listen=f"{LOOPBACK}:{port}", threads=config.server_threads
    )
    if cluster_members:
        argv += ("-cluster", cluster_members)
    return ServerSpec(label=f"badkv-{name}", argv=argv, port=port)


def single(context):
    """One badkv node (in memory) against the bare app: GET of one key, POST over 10,000 keys."""
    config = context.config
    result = ScenarioResult(name="single")
    bare_port, badkv_port = free_ports(2)
    with context.pool(result.name) as pool:
        pool.start([bare_spec(config, bare_port)])
        try:
            badkv = pool.start([badkv_spec(config, "bench1", badkv_port)])[0]
        except ServerStartError as error:
            result.skipped = f"badkv did not start: {one_line(error)}"
            return result
        bare = Target("bare", f"http://{LOOPBACK}:{bare_port}")
        node = Target("badkv", badkv.spec.base_url)
        preload([bare, node])
        for workload in ("read", "write"):
            result.comparisons.append(measure(Comparison(workload, (bare, node)), config, context.load))
    return result


def cluster(context):
    """Three in-memory badkv nodes (n1 leads): POST to leader, POST to a follower, GET on a follower."""
    config = context.config
    result = ScenarioResult(name="cluster")
    bare_port, *node_ports = free_ports(1 + len(CLUSTER_NAMES))
    members = ",".join(f"{name}={LOOPBACK}:{port}" for name, port in zip(CLUSTER_NAMES, node_ports))
    specs = [badkv_spec(config, name, port, members) for name, port in zip(CLUSTER_NAMES, node_ports)]
    with context.pool(result.name) as pool:
        pool.start([bare_spec(config, bare_port)])
        try:
            pool.start(specs)
        except ServerStartError as error:
            result.skipped = f"badkv cluster did not start: {one_line(error)}"
            return result
        bare = Target("bare", f"http://{LOOPBACK}:{bare_port}")
        leader = Target("leader n1", specs[0].base_url)
        follower = Target("follower n2", specs[1].base_url)
        problem = _wait_for_replication(leader, follower)
        if problem:
            result.skipped = problem
            return result
        preload([bare])
        result.notes.append(f"nodes: {members}")
        result.comparisons.append(measure(Comparison("write", (bare, leader, follower)), config, context.load))
        result.comparisons.append(measure(Comparison("read", (bare, follower)), config, context.load))
    return result


def _wait_for_replication(leader, follower):
    """Write the read key through the leader until it is accepted and readable on the follower.

    Returns "" when both happened within CLUSTER_SETTLE_SECONDS, else the reason to skip.
    """
    deadline = time.monotonic() + CLUSTER_SETTLE_SECONDS
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            write_status = leader.api.write(leader.base_url, READ_KEY)
            read_status = follower.api.read(follower.base_url, READ_KEY) if write_status < 300 else None
            last = f"leader write HTTP {write_status}, follower read HTTP {read_status}"
            if write_status < 300 and read_status == 200:
                return ""
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.5)
    return f"cluster not serving within {CLUSTER_SETTLE_SECONDS:.0f} s (last: {last})"


def etcd_spec(data_dir, client_port, peer_port):
    """A single-member etcd 3.4 with the v2 API enabled, data on `data_dir`."""
    client_url = f"http://{LOOPBACK}:{client_port}"
    peer_url = f"http://{LOOPBACK}:{peer_port}"
    argv = (
        str(ETCD_BINARY), "--name", "bench-etcd", "--data-dir", str(data_dir),
        "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"bench-etcd={peer_url}", "--enable-v2", "--log-level", "warn",
    )
    return ServerSpec(label="etcd", argv=argv, port=client_port, health_path="/health")


def etcd(context):
    """etcd's v2 API (PUT form-encoded values, GET as JSON) as a reference next to the bare app."""
    config = context.config
    result = ScenarioResult(name="etcd")
    if not ETCD_BINARY.exists():
        result.skipped = f"{ETCD_BINARY} not found (apt-get install -y etcd-server)"
        return result
    bare_port, client_port, peer_port = free_ports(3)
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="badkv-bench-etcd-", dir=shm if shm.is_dir() else None) as data_dir:
        with context.pool(result.name) as pool:
            pool.start([bare_spec(config, bare_port)])
            try:
                server = pool.start([etcd_spec(data_dir, client_port, peer_port)])[0]
            except ServerStartError as error:
                result.skipped = f"etcd did not start: {one_line(error)}"
                return result
            bare = Target("bare", f"http://{LOOPBACK}:{bare_port}")
            reference = Target("etcd", server.spec.base_url, ETCD_V2_API)
            preload([bare, reference])
            result.notes.append(f"etcd data dir on {shm if shm.is_dir() else 'the default temp dir'}; "
                                "etcd is multi-threaded Go and competes with wrk for both cores")
            for workload in ("read", "write"):
                result.comparisons.append(measure(Comparison(workload, (bare, reference)), config, context.load))
    return result


SCENARIOS = {"single": single, "cluster": cluster, "etcd": etcd}

