"""Run wrk against one URL for a bounded time and turn its output into a `LoadResult`.

The wrk scripts in bench/wrk/ end every run by printing one line,
"BENCH_RESULT {json}", with wrk's own totals: request count, run time,
latency mean and percentiles (microseconds), socket errors, and the count
of HTTP responses with status >= 400 (wrk's "Non-2xx or 3xx responses").
Reading that line avoids parsing wrk's unit-suffixed text ("1.23k", "4.5ms").
"""

import json
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "wrk"
RESULT_MARKER = "BENCH_RESULT "
AUTHORIZATION_VARIABLE = "BENCH_AUTHORIZATION"  # read by wrk/headers.lua
INSTALL_COMMAND = ("apt-get", "install", "-y", "wrk")
INSTALL_TIMEOUT_SECONDS = 600
EXIT_MARGIN_SECONDS = 30


class LoadgenError(Exception):
    """wrk is missing, failed, overran its time bound, or printed no result line."""


@dataclass(frozen=True)
class LoadSpec:
    """One wrk run: where, which script with which arguments, how long, how many connections.

    `authorization`, when set, is the Authorization header every request carries; it reaches the
    scripts through the environment (BENCH_AUTHORIZATION), so a token never shows in wrk's argv.
    """

    url: str
    script: str
    script_args: tuple = ()
    duration_s: int = 10
    connections: int = 32
    threads: int = 2
    authorization: str = field(default="", repr=False)


@dataclass(frozen=True)
class LoadResult:
    """wrk's totals for one run; latencies in milliseconds."""

    requests: int
    duration_s: float
    requests_per_second: float
    latency_ms: dict
    non_2xx: int
    socket_errors: dict
    raw_output: str = field(default="", repr=False)

    @property
    def problems(self):
        """Sentences naming what went wrong in this run, empty when it was clean."""
        found = []
        if self.non_2xx:
            found.append(f"{self.non_2xx} non-2xx responses")
        socket_total = sum(self.socket_errors.values())
        if socket_total:
            detail = ", ".join(f"{kind} {count}" for kind, count in self.socket_errors.items() if count)
            found.append(f"{socket_total} socket errors ({detail})")
        if self.requests == 0:
            found.append("no requests completed")
        return found

    def to_json(self):
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "requests_per_second": self.requests_per_second,
            "latency_ms": self.latency_ms,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "problems": self.problems,
        }


def ensure_wrk():
    """Return the path of wrk, installing it with apt-get when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    command = " ".join(INSTALL_COMMAND)
    if os.geteuid() != 0:
        raise LoadgenError(f"wrk is not installed; install it with: sudo {command}")
    logger.warning("wrk is not installed; running: %s", command)
    try:
        subprocess.run(INSTALL_COMMAND, check=True, timeout=INSTALL_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError) as error:
        raise LoadgenError(f"could not install wrk ({error}); install it with: {command}") from error
    path = shutil.which("wrk")
    if not path:
        raise LoadgenError(f"wrk still missing after '{command}'")
    return path


def wrk_version(wrk_path):
    """Return wrk's version line, e.g. "wrk debian/4.1.0-3+b2 [epoll] ...", or "" if unknown."""
    try:
        completed = subprocess.run([wrk_path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (completed.stdout + completed.stderr).strip()
    return text.splitlines()[0] if text else ""


def run_wrk(wrk_path, spec):
    """Run wrk for `spec.duration_s` seconds (killed if it overruns) and return its `LoadResult`."""
    argv = [
        wrk_path,
        f"--threads={spec.threads}",
        f"--connections={spec.connections}",
        f"--duration={spec.duration_s}s",
        "--latency",
        f"--script={LUA_DIR / spec.script}",
        spec.url,
    ]
    if spec.script_args:
        argv += ["--", *spec.script_args]
    env = wrk_environment(spec)
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=spec.duration_s + EXIT_MARGIN_SECONDS)
    except subprocess.TimeoutExpired as error:
        _kill(process)
        raise LoadgenError(f"wrk overran {spec.duration_s} s by {EXIT_MARGIN_SECONDS} s and was killed") from error
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        raise LoadgenError(f"wrk exited with code {process.returncode}:\n{output.strip()}")
    return parse_wrk_output(output)


def wrk_environment(spec):
    """wrk's whole environment: where the scripts' modules are, and the Authorization header if any."""
    env = {"LUA_PATH": f"{LUA_DIR}/?.lua;;"}
    if spec.authorization:
        env[AUTHORIZATION_VARIABLE] = spec.authorization
    return env


def _kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def parse_wrk_output(output):
    """Build a `LoadResult` from wrk's output; raise LoadgenError if the result line is missing."""
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        raise LoadgenError(f"wrk printed no {RESULT_MARKER.strip()} line:\n{output.strip()}")
    try:
        totals = json.loads(lines[-1][len(RESULT_MARKER):])
    except json.JSONDecodeError as error:
        raise LoadgenError(f"unreadable {RESULT_MARKER.strip()} line: {lines[-1]}") from error
    duration_s = totals["duration_us"] / 1e6
    errors = totals["errors"]
    return LoadResult(
        requests=int(totals["requests"]),
        duration_s=round(duration_s, 3),
        requests_per_second=round(totals["requests"] / duration_s, 1) if duration_s else 0.0,
        latency_ms={name: round(value / 1000, 3) for name, value in totals["latency_us"].items()},
        non_2xx=int(errors["status"]),
        socket_errors={kind: int(errors[kind]) for kind in ("connect", "read", "write", "timeout")},
        raw_output=output,
    )
