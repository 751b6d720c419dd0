"""Real badkv processes on loopback ports, for tests and soak runs.

Each node runs in its own process group (``start_new_session``) so a signal
reaches gunicorn's master and its worker together, and cleanup never needs to
find processes by name. With a certificate directory (``certs``: ``ca.crt`` and
``NAME.crt``/``NAME.key`` per node, as ``badkvctl certs`` writes them) the nodes
serve HTTPS and the helpers verify them against that CA.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from badkv.testing.proxy import free_port

__all__ = ["LocalCluster", "NodeProcess", "free_port", "wait_until"]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Ask ``predicate`` every ``interval`` seconds until it holds, for at most ``timeout`` seconds; whether it
    held (asked once more at the deadline). For what a process shows only from outside: its log, its stats."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class NodeProcess:
    """One ``badkv`` node started as a subprocess."""

    def __init__(self, name: str, port: int, *, cluster: str | None = None, log_dir: Path,
                 extra_args: list[str] | None = None, env: dict | None = None, certs: Path | None = None):
        self.name = name
        self.port = port
        self.cluster = cluster
        self.log_path = Path(log_dir) / f"{name}.log"
        self.extra_args = list(extra_args or [])
        self.env = env
        self.certs = Path(certs) if certs else None
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.certs else 'http'}://{self.address}"

    @property
    def ca_file(self) -> str | None:
        """The CA to verify this node against (None: it serves plain HTTP)."""
        return str(self.certs / "ca.crt") if self.certs else None

    def get(self, path: str, timeout: float = 0.5) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout, verify=self.ca_file or True)

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "badkv", "-name", self.name, "-listen", self.address]
        if self.cluster:
            args += ["-cluster", self.cluster]
        if self.certs:
            args += ["-cert-file", str(self.certs / f"{self.name}.crt"),
                     "-key-file", str(self.certs / f"{self.name}.key"), "-ca-file", self.ca_file]
        return args + self.extra_args

    def start(self, wait: bool = True, timeout: float = 15.0) -> "NodeProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        log.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if self.get("/admin/health").status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s; see {self.log_path}")

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """kill -9 the whole process group; return once no process of it is left running."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)
            self._wait_group_gone(self.process.pid, timeout=10)

    @staticmethod
    def _wait_group_gone(group: int, timeout: float) -> None:
        """The master is reaped first; its worker may live a moment longer (then as a zombie)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = False
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == group and fields[0] != "Z":
                    alive = True
                    break
            if not alive:
                return
            time.sleep(0.01)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still there after ``timeout``; returns the exit status."""
        if self.process is None:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode
        finally:
            self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        """A worker can outlive its master for a moment; end the rest of the group."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalCluster:
    """A 1-, 3- or 5-node cluster on free loopback ports, started the way the Procfile does."""

    def __init__(self, size: int, log_dir: Path, *, extra_args: list[str] | None = None,
                 peer_addresses: dict[tuple[str, str], str] | None = None, prefix: str = "n",
                 ports: dict[str, int] | None = None, certs: Path | None = None):
        self.names = [f"{prefix}{i + 1}" for i in range(size)]
        self.ports = ports or {name: free_port() for name in self.names}
        self.log_dir = Path(log_dir)
        self.nodes = {}
        for name in self.names:
            members = []
            for other in self.names:
                address = f"127.0.0.1:{self.ports[other]}"
                if peer_addresses and other != name and (name, other) in peer_addresses:
                    address = peer_addresses[(name, other)]
                members.append(f"{other}={address}")
            cluster = ",".join(members) if size > 1 else None
            self.nodes[name] = NodeProcess(name, self.ports[name], cluster=cluster, log_dir=self.log_dir,
                                           extra_args=extra_args, certs=certs)

    @property
    def leader(self) -> NodeProcess:
        """The running node that leads the highest term, waiting (up to 10 s) for the cluster to have one."""
        return self.wait_for_leader()

    @property
    def followers(self) -> list[NodeProcess]:
        """The running nodes other than the leader, in cluster order."""
        leader = self.leader
        return [node for node in self.nodes.values() if node is not leader and node.running]

    def wait_for_leader(self, timeout: float = 10.0, *, other_than: tuple[str, ...] = ()) -> NodeProcess:
        deadline = time.monotonic() + timeout
        while True:
            found = self._leaders()
            found = [(term, name) for term, name in found if name not in other_than]
            if found:
                return self.nodes[max(found)[1]]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no leader among {self.names} after {timeout}s")
            time.sleep(0.05)

    def _leaders(self) -> list[tuple[int, str]]:
        leaders = []
        for name, node in self.nodes.items():
            if not node.running:
                continue
            try:
                stats = node.get("/admin/stats").json()
            except (requests.RequestException, ValueError):
                continue
            if stats.get("role") == "leader":
                leaders.append((stats["term"], name))
        return leaders

    def start(self, timeout: float = 20.0) -> "LocalCluster":
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_healthy(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                try:
                    if self.nodes[name].get("/admin/ready").status_code == 200:
                        pending.discard(name)
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        if pending:
            raise RuntimeError(f"nodes not ready after {timeout}s: {sorted(pending)}")

    def stop(self) -> None:
        """Stop every node, each even if stopping one before it failed (then raise the first failure)."""
        failures = []
        for node in self.nodes.values():
            try:
                node.stop()
            except Exception as error:  # (a node left running outlives the test and keeps its ports)
                failures.append(error)
        if failures:
            raise failures[0]

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
