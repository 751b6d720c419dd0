"""Durability with real processes and real files: kill -9 while writing, restart, nothing acknowledged lost.

Every write goes to a key of its own, so each write's fate can be judged on
its own: a 202 must survive, a definite error (4xx, 503) must leave nothing,
and a write whose answer never came may go either way.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from badkv.client import Client
from badkv.storage.backup import restore_backup
from badkv.testing.processes import LocalCluster, NodeProcess, free_port

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]

FAST = ["-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "2", "-peer-timeout", "0.5",
        "-sync-interval", "1"]


class Writer:
    """Writes unique keys through ``urls`` in a thread until stopped, remembering every outcome."""

    def __init__(self, urls: list[str], prefix: str):
        self.urls = urls
        self.prefix = prefix
        self.acked: dict[str, bytes] = {}
        self.refused: set[str] = set()
        self.unknown: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._counter = itertools.count()

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        while not self._stop.is_set():
            number = next(self._counter)
            key, value = f"{self.prefix}-{number}", f"value-{self.prefix}-{number}".encode()
            url = self.urls[number % len(self.urls)]
            try:
                response = session.post(f"{url}/api/v1/keys/durable/{key}", data=value, timeout=3)
            except requests.ConnectionError as error:
                (self.refused if "refused" in str(error).lower() else self.unknown).add(key)
                time.sleep(0.01)
                continue
            except requests.RequestException:
                self.unknown.add(key)
                continue
            if response.status_code == 202:
                self.acked[key] = value
            elif 400 <= response.status_code < 500 or response.status_code == 503:
                self.refused.add(key)
            else:
                self.unknown.add(key)

    def __enter__(self) -> "Writer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def assert_nothing_lost(url: str, writer: Writer) -> None:
    client = Client(url, timeout=5)
    stored = {record["name"]: record for record in client.take_all(tenant="durable")}
    missing = [key for key in writer.acked if key not in stored]
    assert not missing, f"{url} lost {len(missing)} acknowledged writes, e.g. {missing[:3]}"
    present_refused = [key for key in writer.refused if key in stored]
    assert not present_refused, f"{url} holds writes that were refused: {present_refused[:3]}"


def test_a_single_node_keeps_every_acknowledged_write_across_kill_9(tmp_path):
    node = NodeProcess("solo", free_port(), log_dir=tmp_path, extra_args=["-data-dir", str(tmp_path / "data")])
    writers = []
    try:
        node.start()
        for cycle in range(10):
            with Writer([node.url], f"c{cycle}") as writer:
                time.sleep(0.3)
                node.kill()
            writers.append(writer)
            node.start()
            for earlier in writers:
                assert_nothing_lost(node.url, earlier)
        assert sum(len(w.acked) for w in writers) > 50, "the writers must have got real work done"
    finally:
        node.stop()


@pytest.mark.parametrize("victim", ["leader", "follower"])
def test_a_cluster_keeps_every_acknowledged_write_when_a_node_is_killed(tmp_path, victim):
    cluster = LocalCluster(3, tmp_path, extra_args=FAST)
    for node in cluster.nodes.values():
        node.extra_args.extend(["-data-dir", str(tmp_path / "data" / node.name)])
    writers = []
    try:
        cluster.start()
        cluster.wait_ready()
        urls = [node.url for node in cluster.nodes.values()]
        for cycle in range(5):
            target = cluster.leader if victim == "leader" else cluster.followers[cycle % 2]
            with Writer(urls, f"{victim}{cycle}") as writer:
                time.sleep(0.4)
                target.kill()
                time.sleep(0.3)
            writers.append(writer)
            target.start()
            cluster.wait_ready()
        assert sum(len(w.acked) for w in writers) > 30
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            takes = [Client(url).take_all(tenant="durable") for url in urls]
            if takes[0] == takes[1] == takes[2]:
                break
            time.sleep(0.2)
        for url in urls:
            for writer in writers:
                assert_nothing_lost(url, writer)
    finally:
        cluster.stop()


def run_badkv(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "badkv", *args], capture_output=True, text=True, timeout=timeout)


def fill_and_stop(tmp_path: Path, writes: int, extra: list[str] | None = None) -> tuple[NodeProcess, Path]:
    data = tmp_path / "data"
    node = NodeProcess("disk", free_port(), log_dir=tmp_path, extra_args=["-data-dir", str(data), *(extra or [])])
    node.start()
    client = Client(node.url)
    for i in range(writes):
        client.put("disk", f"k{i}", f"v{i}".encode())
    node.stop()
    return node, data


def test_a_bit_flip_before_the_tail_stops_the_node_with_one_line_and_repair_cuts_there(tmp_path):
    node, data = fill_and_stop(tmp_path, 40)
    segment = sorted((data / "wal").glob("*.wal"))[0]
    raw = bytearray(segment.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    segment.write_bytes(bytes(raw))
    args = ["-name", "disk", "-listen", node.address, "-data-dir", str(data)]
    result = run_badkv(args)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("badkv:")]
    assert len(lines) == 1 and segment.name in lines[0] and "offset" in lines[0], result.stderr
    node.extra_args.append("-repair")
    node.start()
    kept = Client(node.url).take_all(tenant="disk")
    node.stop()
    assert 0 < len(kept) < 40, "repair keeps the records before the damage and drops the rest"


def test_a_torn_tail_is_truncated_with_a_warning_and_the_node_starts(tmp_path):
    node, data = fill_and_stop(tmp_path, 20)
    segment = sorted((data / "wal").glob("*.wal"))[-1]
    segment.write_bytes(segment.read_bytes()[:-7])
    node.start()
    records = Client(node.url).take_all(tenant="disk")
    node.stop()
    assert len(records) == 19
    assert "torn" in node.log_path.read_text().lower() or "truncat" in node.log_path.read_text().lower()


def test_snapshots_compact_the_log_and_recovery_uses_them(tmp_path):
    node, data = fill_and_stop(tmp_path, 300, ["-snapshot-entries", "50"])
    assert list((data / "snap").glob("*.snap")), "a snapshot was written"
    node.start()
    client = Client(node.url)
    assert len(client.take_all(tenant="disk")) == 300
    assert client.get("disk", "k299").value == b"v299"
    stats = client.stats()
    node.stop()
    assert stats["last_index"] - stats["commit_index"] == 0


def test_a_data_dir_of_another_node_is_refused(tmp_path):
    node, data = fill_and_stop(tmp_path, 1)
    result = run_badkv(["-name", "intruder", "-listen", node.address, "-data-dir", str(data)])
    assert result.returncode == 1
    assert "disk" in result.stderr and result.stderr.count("badkv:") == 1


def test_a_follower_behind_the_compacted_log_is_caught_up_from_the_leaders_state(tmp_path):
    cluster = LocalCluster(3, tmp_path, extra_args=FAST + ["-snapshot-entries", "20"])
    for node in cluster.nodes.values():
        node.extra_args.extend(["-data-dir", str(tmp_path / "data" / node.name)])
    try:
        cluster.start()
        cluster.wait_ready()
        leader = Client(cluster.leader.url)
        straggler = cluster.followers[1]
        straggler.kill()
        for i in range(400):
            leader.put("behind", f"k{i}", f"v{i}".encode())
        straggler.start()
        client = Client(straggler.url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(client.take_all(tenant="behind")) < 400:
            time.sleep(0.2)
        assert client.take_all(tenant="behind") == leader.take_all(tenant="behind")
        assert client.get("behind", "k399").value == b"v399"
    finally:
        cluster.stop()


def test_backup_and_restore_round_trip(tmp_path):
    source = NodeProcess("origin", free_port(), log_dir=tmp_path, extra_args=["-in-memory"])
    source.start()
    try:
        client = Client(source.url)
        for i in range(30):
            client.put("backup", f"k{i}", f"v{i}".encode())
        client.delete("backup", "k7")
        expected = client.take_all()
        result = subprocess.run([sys.executable, "-c", "from badkv.ctl import main; main()", "--endpoint", source.url,
                                 "backup", str(tmp_path / "b.snap")], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    finally:
        source.stop()
    restored_dir = tmp_path / "restored"
    assert restore_backup(str(tmp_path / "b.snap"), str(restored_dir), node="copy",
                          cluster_id=_cluster_id("copy")) == 30
    copy = NodeProcess("copy", free_port(), log_dir=tmp_path, extra_args=["-data-dir", str(restored_dir)])
    copy.start()
    try:
        copy_client = Client(copy.url)
        assert copy_client.take_all() == expected
        assert copy_client.put("backup", "after", b"x")["revision"] > max(r["revision"] for r in expected)
    finally:
        copy.stop()


def _cluster_id(name: str) -> str:
    from badkv.config import Config

    return Config.from_sources({"name": name}).cluster_id
