"""The benchmark's settings: command-line flags turned into one validated `BenchConfig`."""

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.disk import default_data_parent
from bench.scenarios import SCENARIOS

REPO_ROOT = Path(__file__).resolve().parent.parent
KNOWN_SCENARIOS = tuple(SCENARIOS)
DEFAULT_SCENARIOS = ("single", "cluster")
BADKV_ARGS = "-name {name} -listen {listen} -in-memory -threads {threads}"
ON_DISK_SCENARIOS = {"durable", "perf"}  # their data dirs go under --durable-dir


class ConfigError(Exception):
    """A flag value the benchmark cannot run with; the message says which and why."""


@dataclass(frozen=True)
class BenchConfig:
    """Everything one benchmark run needs to know, fixed before any process starts."""

    rounds: int = 3
    duration_s: int = 10
    warmup_s: int = 3
    connections: int = 32
    wrk_threads: int = 2
    server_threads: int = 8
    cluster_threads: int = 32
    scenarios: tuple = DEFAULT_SCENARIOS
    badkv_cmd: str = ""
    ready_timeout_s: float = 30.0
    repo_root: Path = REPO_ROOT
    venv_bin: Path = REPO_ROOT / ".venv" / "bin"
    results_dir: Path = REPO_ROOT / "bench" / "results"
    durable_dir: Path = default_data_parent(REPO_ROOT / "bench" / "results")
    latency_requests: int = 2000

    def validate(self):
        """Raise ConfigError naming the first setting that cannot work."""
        if self.rounds < 1:
            raise ConfigError("--rounds must be at least 1")
        if self.duration_s < 1:
            raise ConfigError("--duration must be at least 1 second")
        if self.warmup_s < 0:
            raise ConfigError("--warmup must be 0 (no warm-up) or more seconds")
        if self.wrk_threads < 1 or self.connections < self.wrk_threads:
            raise ConfigError("--connections must be at least --wrk-threads, and both at least 1")
        if self.server_threads < 1:
            raise ConfigError("--server-threads must be at least 1")
        unknown = [name for name in self.scenarios if name not in KNOWN_SCENARIOS]
        if unknown or not self.scenarios:
            raise ConfigError(f"--scenarios takes a comma list of {', '.join(KNOWN_SCENARIOS)}; got {unknown or 'none'}")
        if "{listen}" not in self.badkv_cmd and "{port}" not in self.badkv_cmd:
            raise ConfigError("--badkv-cmd must contain {listen} or {port} so each server gets its own port")
        if self.latency_requests < 100:
            raise ConfigError("--latency-requests must be at least 100 so that a p99 means something")
        if set(self.scenarios) & ON_DISK_SCENARIOS and not Path(self.durable_dir).is_dir():
            raise ConfigError(f"--durable-dir {self.durable_dir} is not an existing directory")
        if not (self.venv_bin / "gunicorn").exists():
            raise ConfigError(f"{self.venv_bin / 'gunicorn'} not found; create the virtualenv first")
        return self


def default_venv_bin():
    """The repo's .venv/bin, or the directory of the running interpreter if there is none."""
    repo_venv = REPO_ROOT / ".venv" / "bin"
    return repo_venv if repo_venv.is_dir() else Path(sys.executable).parent


def default_badkv_cmd(venv_bin):
    """badkv's console script when installed, else `python -m badkv`, with the single-node flags."""
    script = venv_bin / "badkv"
    program = shlex.quote(str(script)) if script.exists() else f"{shlex.quote(str(venv_bin / 'python'))} -m badkv"
    return f"{program} {BADKV_ARGS}"


def build_parser():
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Compare badkv's throughput with a bare Flask app under wrk load (loopback only).",
    )
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="measured runs per server (default %(default)s)")
    parser.add_argument("--duration", type=int, default=defaults.duration_s, help="seconds per measured run (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup_s, help="seconds of warm-up per server and workload (default %(default)s)")
    parser.add_argument("--connections", type=int, default=defaults.connections, help="wrk connections (default %(default)s)")
    parser.add_argument("--wrk-threads", type=int, default=defaults.wrk_threads, help="wrk threads (default %(default)s)")
    parser.add_argument("--cluster-threads", type=int, default=defaults.cluster_threads, help="-threads for each badkv cluster node: badkv's own default in a cluster (default %(default)s)")
    parser.add_argument("--server-threads", type=int, default=defaults.server_threads, help="gunicorn gthread threads for both servers (default %(default)s)")
    parser.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma list of {', '.join(KNOWN_SCENARIOS)} (default %(default)s)")
    parser.add_argument(
        "--badkv-cmd",
        default=None,
        help="command template for a badkv node; placeholders {name} {listen} {port} {threads} "
        f"(default: .venv/bin/badkv {BADKV_ARGS}); the cluster scenario appends -cluster ...",
    )
    parser.add_argument("--ready-timeout", type=float, default=defaults.ready_timeout_s, help="seconds to wait for a server to serve (default %(default)s)")
    parser.add_argument("--results-dir", type=Path, default=defaults.results_dir, help="where the JSON results go (default bench/results)")
    parser.add_argument(
        "--durable-dir", type=Path, default=defaults.durable_dir,
        help="durable and perf scenarios: folder for the data dirs' temp folder, on a real disk, not tmpfs (default %(default)s)",
    )
    parser.add_argument("--latency-requests", type=int, default=defaults.latency_requests, help="perf: sequential requests per 1-client latency run (default %(default)s)")
    return parser


def config_from_args(argv=None):
    """Parse flags into a validated BenchConfig; raise ConfigError if a value cannot work."""
    args = build_parser().parse_args(argv)
    venv_bin = default_venv_bin()
    return BenchConfig(
        rounds=args.rounds,
        duration_s=args.duration,
        warmup_s=args.warmup,
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        server_threads=args.server_threads,
        cluster_threads=args.cluster_threads,
        scenarios=tuple(name.strip() for name in args.scenarios.split(",") if name.strip()),
        badkv_cmd=args.badkv_cmd or default_badkv_cmd(venv_bin),
        ready_timeout_s=args.ready_timeout,
        venv_bin=venv_bin,
        results_dir=args.results_dir,
        durable_dir=args.durable_dir,
        latency_requests=args.latency_requests,
    ).validate()
