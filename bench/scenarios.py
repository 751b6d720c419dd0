"""The benchmark scenarios: which servers to start and which comparisons to run on them.

Each scenario is a function `scenario(context) -> ScenarioResult` that starts
its own servers in a `ServerPool` (stopped when it returns or raises), always
including a fresh bare app as the baseline measured in the same run. A
scenario whose server cannot start is reported as skipped with the reason.
Adding a scenario is one function plus an entry in SCENARIOS.
"""

import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.disk import filesystem_of
from bench.measure import ETCD_V2_API, READ_KEY, REQUEST_TIMEOUT_SECONDS, Comparison, Target, measure, preload
from bench.servers import LOOPBACK, ServerPool, ServerSpec, ServerStartError, expand_template, free_ports, one_line

ETCD_BINARY = Path("/usr/bin/etcd")
CLUSTER_NAMES = ("n1", "n2", "n3")
CLUSTER_SETTLE_SECONDS = 30.0
MEMORY_CLUSTER_NAMES = ("m1", "m2", "m3")
DURABLE_CLUSTER_NAMES = ("d1", "d2", "d3")
IN_MEMORY_FLAGS = ("-in-memory", "--in-memory")
DURABLE_TARGET_RATIO = 0.80


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
    summary: dict = field(default_factory=dict)  # scenario-specific figures for the JSON file


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
    threads = config.cluster_threads if cluster_members else config.server_threads
    argv = expand_template(config.badkv_cmd, name=name, port=port, listen=f"{LOOPBACK}:{port}", threads=threads)
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
    """Three in-memory badkv nodes: POST to the leader, POST to a follower, GET on a follower."""
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
        leader_spec, follower_spec = leader_first(specs)[:2]
        leader = Target(f"leader {leader_spec.label.removeprefix('badkv-')}", leader_spec.base_url)
        follower = Target(f"follower {follower_spec.label.removeprefix('badkv-')}", follower_spec.base_url)
        problem = wait_for_replication(leader, follower)
        if problem:
            result.skipped = problem
            return result
        preload([bare])
        result.notes.append(f"nodes: {members}")
        result.comparisons.append(measure(Comparison("write", (bare, leader, follower)), config, context.load))
        result.comparisons.append(measure(Comparison("read", (bare, follower)), config, context.load))
    return result


def leader_first(specs, timeout: float = CLUSTER_SETTLE_SECONDS):
    """The specs of a started cluster with the elected leader first (the first member normally wins
    the first election, but nothing promises it); the order is kept if no leader shows in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for spec in specs:
            try:
                if requests.get(spec.base_url + "/admin/stats", timeout=1).json().get("role") == "leader":
                    return [spec] + [other for other in specs if other is not spec]
            except (requests.RequestException, ValueError):
                pass
        time.sleep(0.1)
    return list(specs)


def wait_for_replication(leader, follower):
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


def without_in_memory(argv):
    """`argv` with the -in-memory flag removed (the default --badkv-cmd has it; a durable node must not)."""
    return tuple(part for part in argv if part not in IN_MEMORY_FLAGS)


def durable_spec(config, name, port, cluster_members, data_dir):
    """A badkv cluster node from --badkv-cmd, minus -in-memory, plus `-data-dir data_dir` (fsync is on by default)."""
    spec = badkv_spec(config, name, port, cluster_members)
    return dataclasses.replace(spec, argv=without_in_memory(spec.argv) + ("-data-dir", str(data_dir)))


def cluster_members(names, ports):
    return ",".join(f"{name}={LOOPBACK}:{port}" for name, port in zip(names, ports))


def storage_stats(target):
    """The `storage` block of a badkv node's /admin/stats plus its last log index ({} if unreadable)."""
    try:
        response = requests.get(target.base_url + "/admin/stats", timeout=REQUEST_TIMEOUT_SECONDS)
        stats = response.json()
    except (requests.RequestException, ValueError):
        return {}
    return {**stats.get("storage", {}), "last_index": stats.get("last_index")}


def storage_problem(label, storage, want_in_memory):
    """A reason to skip when a node's storage is not what the scenario needs, else ""."""
    if not storage:
        return f"{label}: /admin/stats unreadable"
    if storage.get("in_memory") is not want_in_memory:
        wanted = "in memory" if want_in_memory else "on disk (-data-dir)"
        return f"{label} reports in_memory={storage.get('in_memory')!r}, but it must run {wanted}"
    return ""


def fsync_note(before, after):
    """What the durable leader's fsyncs did between two storage_stats readings: count, mean time, entries per fsync."""
    fsyncs = (after.get("fsyncs") or 0) - (before.get("fsyncs") or 0)
    seconds = (after.get("fsync_seconds_total") or 0.0) - (before.get("fsync_seconds_total") or 0.0)
    entries = (after.get("last_index") or 0) - (before.get("last_index") or 0)
    if fsyncs <= 0:
        return f"durable leader: no fsync counted during the measurement ({entries} log entries); check its storage"
    return (f"durable leader during warm-up and rounds: {entries} log entries, {fsyncs} fsyncs "
            f"(mean {seconds / fsyncs * 1000:.2f} ms, {entries / fsyncs:.1f} entries per fsync by group commit)")


def ratio_summary(comparison, numerator, denominator, target=DURABLE_TARGET_RATIO):
    """(summary dict, note) for median(numerator) / median(denominator) of a ComparisonResult's runs."""
    medians = {label: statistics.median(run.requests_per_second for run in comparison.runs[label])
               for label in (numerator, denominator)}
    flagged = [label for label in (numerator, denominator)
               if comparison.preflight.get(label) or any(run.problems for run in comparison.runs[label])]
    ratio = medians[numerator] / medians[denominator] if medians[denominator] else None
    summary = {
        "numerator": numerator, "denominator": denominator,
        "numerator_median_rps": round(medians[numerator], 1), "denominator_median_rps": round(medians[denominator], 1),
        "ratio": None if ratio is None else round(ratio, 3), "target": target,
        "target_met": None if ratio is None else ratio >= target, "flagged": flagged,
    }
    if ratio is None:
        return summary, f"{numerator} / {denominator}: n/a ({denominator} median is 0)"
    verdict = "met" if ratio >= target else "NOT met"
    note = (f"{numerator} / {denominator} (median req/s {medians[numerator]:.1f} / {medians[denominator]:.1f}): "
            f"{ratio:.2f} (target >= {target:.2f}: {verdict})")
    if flagged:
        note += f"; FLAGGED runs on {', '.join(flagged)}: see the table"
    return summary, note


def durable(context):
    """POST to the leader of an in-memory cluster vs. a cluster on disk (-data-dir, fsync on), bare app first.

    Both clusters run at once and are measured in alternation (bare, in-memory
    leader, durable leader per round); the idle one only sends heartbeats.
    """
    config = context.config
    result = ScenarioResult(name="durable")
    bare_port, *node_ports = free_ports(1 + len(MEMORY_CLUSTER_NAMES) + len(DURABLE_CLUSTER_NAMES))
    memory_ports, disk_ports = node_ports[:len(MEMORY_CLUSTER_NAMES)], node_ports[len(MEMORY_CLUSTER_NAMES):]
    memory_members = cluster_members(MEMORY_CLUSTER_NAMES, memory_ports)
    disk_members = cluster_members(DURABLE_CLUSTER_NAMES, disk_ports)
    with tempfile.TemporaryDirectory(prefix="badkv-bench-durable-", dir=config.durable_dir) as data_root:
        memory_specs = [badkv_spec(config, name, port, memory_members)
                        for name, port in zip(MEMORY_CLUSTER_NAMES, memory_ports)]
        disk_specs = [durable_spec(config, name, port, disk_members, Path(data_root) / name)
                      for name, port in zip(DURABLE_CLUSTER_NAMES, disk_ports)]
        filesystem = filesystem_of(data_root)
        where = filesystem.describe() if filesystem else "an unknown filesystem"
        result.notes.append(f"durable data dirs under {data_root}, on {where}")
        if filesystem and filesystem.in_memory:
            result.notes.append("WARNING: the durable cluster's data is in memory; pick --durable-dir on a real disk")
        with context.pool(result.name) as pool:
            pool.start([bare_spec(config, bare_port)])
            for kind, specs in (("in-memory", memory_specs), ("durable", disk_specs)):
                try:
                    pool.start(specs)
                except ServerStartError as error:
                    result.skipped = f"{kind} cluster did not start: {one_line(error)}"
                    return result
            bare = Target("bare", f"http://{LOOPBACK}:{bare_port}")
            memory_specs, disk_specs = leader_first(memory_specs), leader_first(disk_specs)
            memory_leader = Target("in-memory leader", memory_specs[0].base_url)
            disk_leader = Target("durable leader", disk_specs[0].base_url)
            for leader, follower_spec in ((memory_leader, memory_specs[1]), (disk_leader, disk_specs[1])):
                problem = wait_for_replication(leader, Target("follower", follower_spec.base_url))
                if problem:
                    result.skipped = f"{leader.label}: {problem}"
                    return result
            before = storage_stats(disk_leader)
            problem = (storage_problem(memory_leader.label, storage_stats(memory_leader), True)
                       or storage_problem(disk_leader.label, before, False))
            if problem:
                result.skipped = problem
                return result
            result.notes.append(f"in-memory cluster: {memory_members}")
            result.notes.append(f"durable cluster: {disk_members}")
            comparison = measure(Comparison("write", (bare, memory_leader, disk_leader)), config, context.load)
            result.comparisons.append(comparison)
            result.notes.append(fsync_note(before, storage_stats(disk_leader)))
        summary, note = ratio_summary(comparison, disk_leader.label, memory_leader.label)
        result.summary["durable_over_in_memory"] = summary
        result.notes.append(note)
    return result


def security(context):
    """One node with auth off, one with auth on, one on HTTPS: GET and POST in alternation (bench/security.py)."""
    from bench.security import run  # imported here: bench.security builds on this module

    return run(context)


def perf(context):
    """Issue 12's comparison: bare app, durable badkv, etcd and PySyncObj clusters, 1-client latency (bench/perf.py)."""
    from bench.perf import perf as run  # imported here: bench.perf builds on this module

    return run(context)


SCENARIOS = {"single": single, "cluster": cluster, "etcd": etcd, "durable": durable, "security": security,
             "perf": perf}

