"""Start servers under test as process groups, wait until they serve, and stop them.

Every server runs in its own session (so its process group holds gunicorn's
master and workers) and is stopped by signalling that group: SIGTERM, then
SIGKILL if the group is still alive after a grace period. `ServerPool` is a
context manager that stops everything it started, also when the body raises
or the user presses Ctrl-C.
"""

import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_CHARS = 600


class ServerStartError(Exception):
    """A server exited or never answered its health check; the message quotes its log."""


def one_line(error):
    """An error's first line plus its last (for a start error: the server's last log line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) < 2:
        return lines[0] if lines else type(error).__name__
    return f"{lines[0]} ... {lines[-1]}"


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: a label, its argv, and the URL path that answers 200 when ready.

    A server on HTTPS names its scheme and the CA file its certificate is checked against.
    """

    label: str
    argv: tuple
    port: int
    health_path: str = "/admin/health"
    scheme: str = "http"
    ca_file: str = ""

    @property
    def base_url(self):
        return f"{self.scheme}://{LOOPBACK}:{self.port}"


def free_ports(count):
    """Return `count` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def expand_template(template, **fields):
    """Split a command template like "badkv -listen {listen}" and fill its placeholders."""
    return tuple(part.format(**fields) for part in shlex.split(template))


class ServerProcess:
    """One running server, owned by a `ServerPool`."""

    def __init__(self, spec, log_path, cwd):
        self.spec = spec
        self.log_path = log_path
        self._log_file = open(log_path, "wb")
        logger.info("starting %s: %s", spec.label, shlex.join(spec.argv))
        try:
            self.popen = subprocess.Popen(
                spec.argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_unblock_signals,  # the pool holds SIGINT/SIGTERM while starting; the child must not
            )
        except OSError as error:
            self._log_file.close()
            raise ServerStartError(f"{spec.label} could not be started: {error}") from error

    @property
    def pid(self):
        return self.popen.pid

    def log_tail(self):
        self._log_file.flush()
        text = Path(self.log_path).read_text(errors="replace").strip()
        return text[-LOG_TAIL_CHARS:] or "(no output)"

    def wait_ready(self, timeout):
        """Poll the health URL until it answers 200; raise ServerStartError on exit or timeout."""
        url = self.spec.base_url + self.spec.health_path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.popen.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.spec.label} exited with code {code} before serving:\n{self.log_tail()}"
                )
            try:
                if requests.get(url, timeout=1, verify=self.spec.ca_file or True).status_code == 200:
                    logger.info("%s ready at %s (pid %d)", self.spec.label, self.spec.base_url, self.pid)
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise ServerStartError(
            f"{self.spec.label} did not answer 200 on {url} within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self):
        """Stop the whole process group: SIGTERM, wait, then SIGKILL whatever is left."""
        pgid = self.popen.pid  # the leader of a new session; its pid is the group id
        if group_running(pgid):
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while group_running(pgid) and time.monotonic() < deadline:
                self.popen.poll()  # reap the leader so it stops counting as alive
                time.sleep(0.1)
            if group_running(pgid):
                logger.warning("%s ignored SIGTERM for %.0f s; sending SIGKILL", self.spec.label, STOP_GRACE_SECONDS)
                _signal_group(pgid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            logger.error("%s (pid %d) did not exit after SIGKILL", self.spec.label, pgid)
        self._log_file.close()
        logger.info("stopped %s (pid %d)", self.spec.label, pgid)


def group_running(pgid):
    """True while a process of the group runs; zombies (dead, awaiting their reaper) do not count."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    states = _group_states(pgid)
    return states is None or any(state != "Z" for state in states)


def _group_states(pgid):
    """The process states ("R", "S", "Z", ...) of the group's members from /proc, or None without /proc."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    states = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _parent, group = stat[stat.rindex(")") + 2:].split()[:3]
        if int(group) == pgid:
            states.append(state)
    return states


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _unblock_signals():
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


@contextlib.contextmanager
def _signals_held():
    """Delay SIGINT and SIGTERM until the block ends (they are delivered then, not lost)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class ServerPool:
    """Starts servers and guarantees they are all stopped when the `with` block ends."""

    def __init__(self, log_dir, cwd, ready_timeout):
        self.log_dir = Path(log_dir)
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self._running = []
        self._started_count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop_all()
        return False

    def start(self, specs):
        """Start all `specs` together, then wait for each; on failure stop them and re-raise."""
        started = [self._start_one(spec) for spec in specs]
        try:
            for server in started:
                server.wait_ready(self.ready_timeout)
        except BaseException:
            self.stop(started)
            raise
        return started

    def launch(self, spec):
        """Start one server without waiting for it (the caller polls); it is stopped with the pool."""
        return self._start_one(spec)

    def _start_one(self, spec):
        self._started_count += 1
        log_path = self.log_dir / f"{self._started_count:02d}-{spec.label}.log"
        with _signals_held():  # a Ctrl-C here would orphan a process not yet on the list
            server = ServerProcess(spec, log_path, self.cwd)
            self._running.append(server)
        return server

    def stop(self, servers):
        with _signals_held():  # stopping is bounded; let it finish, then deliver Ctrl-C
            for server in servers:
                if server in self._running:
                    self._running.remove(server)
                    server.stop()

    def stop_all(self):
        self.stop(list(reversed(self._running)))
