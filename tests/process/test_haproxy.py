"""The shipped docs/haproxy.cfg, run by Debian's haproxy in front of three real nodes, across a leader's kill -9.

The test renders the shipped file with its own ports (the bind line and the
server lines, nothing else), so what is tested is what users copy.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from badkv.testing.processes import LocalCluster
from badkv.testing.programs import find_or_install
from badkv.testing.proxy import free_port

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]

SHIPPED = Path(__file__).resolve().parents[2] / "docs" / "haproxy.cfg"
BACKENDS = ("badkv_reads", "badkv_leader")
RECOVERY_SECONDS = 5.0  # after the new leader is elected, writes through haproxy succeed within this


def render(text: str, listen: str, servers: dict[str, str]) -> str:
    """The config with ``listen`` on the bind line and ``servers`` (name -> address) in each backend."""
    bind_lines = re.findall(r"^    bind \S+$", text, flags=re.M)
    assert len(bind_lines) == 1, bind_lines
    text = text.replace(bind_lines[0], f"    bind {listen}")
    shipped = re.findall(r"^    server \S+ \S+$", text, flags=re.M)
    assert len(shipped) == len(BACKENDS) * len(servers), shipped
    lines = [f"    server {name} {address}" for name, address in servers.items()]
    for old, new in zip(shipped, lines * len(BACKENDS)):
        text = text.replace(old, new, 1)
    return text


def test_render_replaces_every_address_of_the_shipped_file():
    rendered = render(SHIPPED.read_text(), "127.0.0.1:1", {"a": "127.0.0.1:2", "b": "127.0.0.1:3",
                                                           "c": "127.0.0.1:4"})
    settings = "\n".join(line for line in rendered.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"127\.0\.0\.1:(8080|1000[1-3])\b", settings)
    assert rendered.count("server a 127.0.0.1:2") == 2 and "bind 127.0.0.1:1" in rendered


class HaproxyProcess:
    """haproxy in the foreground (-db) in its own process group, logging to a file."""

    def __init__(self, program: str, config: Path, log: Path):
        self.command = [program, "-db", "-f", str(config)]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> "HaproxyProcess":
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Traffic:
    """Writers (POST, unique keys) and readers (GET of one key) through the balancer; every answer kept."""

    def __init__(self, url: str, writers: int = 2, readers: int = 2):
        self.url = url
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.writes: list[tuple[float, int, str | None]] = []  # (sent at, status or 0, served by)
        self.reads: list[tuple[float, int, str | None]] = []
        self.threads = [threading.Thread(target=self._write, args=(w,), daemon=True) for w in range(writers)]
        self.threads += [threading.Thread(target=self._read, daemon=True) for _ in range(readers)]

    def _call(self, method: str, path: str, into: list, **kwargs) -> None:
        sent = time.monotonic()
        try:
            response = requests.request(method, self.url + path, timeout=10, **kwargs)
            answer = (sent, response.status_code, response.headers.get("X-Badkv-Served-By"))
        except requests.RequestException:
            answer = (sent, 0, None)
        with self.lock:
            into.append(answer)

    def _write(self, writer: int) -> None:
        for i in itertools.count():
            if self.stopping.wait(0.02):
                return
            self._call("POST", f"/api/v1/keys/lb/w{writer}-{i}", self.writes, data=b"v")

    def _read(self) -> None:
        while not self.stopping.wait(0.02):
            self._call("GET", "/api/v1/keys/lb/fixed", self.reads)

    def start(self) -> "Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(15)

    def first(self, kind: str, since: float, status: int) -> tuple[float, int, str | None] | None:
        with self.lock:
            return next((a for a in getattr(self, kind) if a[0] >= since and a[1] == status), None)


def post_served_by(url: str) -> str | None:
    """The node that acknowledged one write (None: not acknowledged, or haproxy not listening yet)."""
    try:
        response = requests.post(url, data=b"x", timeout=10)
    except requests.RequestException:
        return None
    return response.headers.get("X-Badkv-Served-By") if response.status_code == 202 else None


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout:g} s")


@pytest.fixture
def haproxy_program():
    program, reason = find_or_install("haproxy")
    if program is None:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    return program


@pytest.fixture
def balanced(tmp_path, haproxy_program):
    cluster = LocalCluster(3, tmp_path / "nodes", extra_args=["-in-memory"]).start()
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "haproxy.cfg"
    config.write_text(render(SHIPPED.read_text(), listen, {n.name: n.address for n in cluster.nodes.values()}))
    balancer = HaproxyProcess(haproxy_program, config, tmp_path / "haproxy.log")
    try:
        cluster.wait_ready()
        balancer.start()
        yield cluster, f"http://{listen}"
    finally:
        balancer.stop()
        cluster.stop()


def test_writes_follow_the_leader_and_reads_stay_on_live_nodes_across_a_kill(balanced):
    cluster, url = balanced
    old = cluster.leader
    # haproxy starts with every server up until its checks say otherwise (a follower relays the
    # writes it gets meanwhile): wait until four writes in a row reach the leader.
    wait_for("writes through haproxy reaching the leader only",
             lambda: all(post_served_by(url + "/api/v1/keys/lb/fixed") == old.name for _ in range(4)), 20)
    settled_at = time.monotonic()
    traffic = Traffic(url).start()
    try:
        wait_for("reads from every node", lambda: {a[2] for a in traffic.reads if a[1] == 200} >= set(cluster.names), 10)
        wait_for("writes under load", lambda: sum(a[1] == 202 for a in traffic.writes) >= 10, 10)
        killed_at = time.monotonic()  # (kill returns once the process group is gone, which takes a while)
        old.kill()
        new = cluster.wait_for_leader(timeout=15, other_than=(old.name,))
        elected_at = time.monotonic()
        sent, _, served_by = wait_for("a write through haproxy succeeded after the election",
                                      lambda: traffic.first("writes", elected_at, 202), RECOVERY_SECONDS)
        recovered_at = time.monotonic()
        print(f"leader {old.name} killed; {new.name} elected after {elected_at - killed_at:.2f} s; the first "
              f"write through haproxy that succeeded after that was sent {sent - elected_at:.2f} s later")
        wait_for("reads succeeded after the kill", lambda: traffic.first("reads", recovered_at, 200), 5)
    finally:
        traffic.stop()
    before = [a for a in traffic.writes if settled_at <= a[0] < killed_at and a[1] == 202]
    assert before and {a[2] for a in before} == {old.name}, f"writes went to the leader only: {before}"
    assert served_by == new.name
    late = [a for a in traffic.reads if a[0] >= killed_at + 0.5]
    assert late and all(a[2] != old.name for a in late), "no read went to the dead node once it was out"
    live = {a[2] for a in late if a[1] == 200}
    assert live == set(cluster.names) - {old.name}, f"reads spread over both live nodes: {live}"
    after = [a for a in traffic.reads if a[0] >= recovered_at]
    assert after and all(a[1] == 200 for a in after), f"reads failed after recovery: {after}"
    odd = [a for a in traffic.writes + traffic.reads if a[1] not in (200, 202, 502, 503, 504, 0)]
    assert not odd, f"answers that are neither success nor a retryable failure: {odd}"
