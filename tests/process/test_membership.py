"""Membership changes on real processes under a steady write load: grow, replace, shrink, hand over to a
new node, a learner that does not count, and one-time join tokens (badkv/cluster/members.py, joining.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from badkv.client import Client, ClientError
from badkv.config import Config
from badkv.testing.processes import LocalCluster, NodeProcess, free_port, wait_until

pytestmark = pytest.mark.process

FAST = ["-in-memory", "-isr-timeout", "1", "-heartbeat-interval", "0.1", "-write-timeout", "3",
        "-sync-interval", "1", "-peer-timeout", "0.5"]
ON_DISK = [arg for arg in FAST if arg != "-in-memory"]


class WriteLoad:
    """Writes one key after another through ``node`` from a thread; every failure is kept."""

    def __init__(self, node: NodeProcess):
        self.client = Client(node.url, timeout=10)
        self.failures: list[str] = []
        self.written = 0
        self.last_revision = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.is_set() and self.written < 20_000:
            try:
                answer = self.client.put("load", f"k{self.written % 100}", f"v{self.written}".encode())
                self.last_revision = answer["revision"]
            except ClientError as error:
                self.failures.append(f"{error.code}: {error.message}")
            self.written += 1
            time.sleep(0.005)

    def __enter__(self) -> "WriteLoad":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)


def members(node: NodeProcess) -> dict[str, dict]:
    return {member["name"]: member for member in Client(node.url, timeout=5).members()}


def voters(node: NodeProcess) -> set[str]:
    return {name for name, member in members(node).items() if member["voter"]}


def join(cluster: LocalCluster, name: str, tmp_path, *, through: NodeProcess | None = None) -> NodeProcess:
    """Add ``name`` through any member, start it with ``-join`` on an empty data dir; it is in the cluster."""
    port = free_port()
    through = through or next(node for node in cluster.nodes.values() if node.running)
    token = Client(through.url, timeout=10).member_add(name, f"127.0.0.1:{port}")["join_token"]
    node = NodeProcess(name, port, log_dir=cluster.log_dir,
                       extra_args=ON_DISK + ["-data-dir", str(tmp_path / name), "-join", through.url,
                                             "-join-token", token])
    cluster.nodes[name] = node
    cluster.names.append(name)
    node.start(timeout=20)
    return node


def wait_promoted(cluster: LocalCluster, name: str, timeout: float = 20.0) -> None:
    assert wait_until(lambda: name in voters(cluster.leader), timeout), f"{name} was not promoted to voter"


def holds(node: NodeProcess, revision: int) -> bool:
    return wait_until(lambda: Client(node.url, timeout=5).stats()["applied_revision"] >= revision, 10)


def test_grow_from_three_to_five_under_load(tmp_path):
    with LocalCluster(3, tmp_path, extra_args=FAST) as cluster:
        cluster.wait_ready()
        with WriteLoad(cluster.leader) as load:
            for name in ("n4", "n5"):
                join(cluster, name, tmp_path)
                wait_promoted(cluster, name)
            time.sleep(0.5)
        assert load.failures == [] and load.written > 50
        assert voters(cluster.leader) == {"n1", "n2", "n3", "n4", "n5"}
        for name in ("n4", "n5"):
            assert holds(cluster.nodes[name], load.last_revision)
            assert members(cluster.nodes[name])[name]["role"] == "follower"


def test_replace_a_dead_node_with_a_new_one_on_an_empty_data_dir(tmp_path):
    """The leader has compacted its log by then: the new node catches up from a copy of its state."""
    with LocalCluster(3, tmp_path, extra_args=FAST + ["-snapshot-entries", "100"]) as cluster:
        cluster.wait_ready()
        dead = cluster.followers[-1]
        with WriteLoad(cluster.leader) as load:
            assert wait_until(lambda: load.written > 300, 20)
            dead.kill()
            Client(cluster.leader.url, timeout=10).member_remove(dead.name)
            assert dead.name not in voters(cluster.leader)
            join(cluster, "n9", tmp_path)
            wait_promoted(cluster, "n9")
            time.sleep(0.5)
        assert load.failures == [] and load.written > 50
        assert voters(cluster.leader) == {name for name in ("n1", "n2", "n3") if name != dead.name} | {"n9"}
        assert holds(cluster.nodes["n9"], load.last_revision)
        assert "installed the leader's state" in cluster.nodes["n9"].log_path.read_text()


def test_shrink_from_five_to_three_under_load(tmp_path):
    with LocalCluster(5, tmp_path, extra_args=FAST) as cluster:
        cluster.wait_ready()
        leader = cluster.leader
        leaving = cluster.followers[-2:]
        with WriteLoad(leader) as load:
            for node in leaving:
                Client(cluster.nodes["n1" if leader.name != "n1" else "n2"].url, timeout=10).member_remove(node.name)
            time.sleep(0.5)
        assert load.failures == [] and load.written > 20
        assert voters(leader) == set(cluster.names) - {node.name for node in leaving}
        for node in leaving:
            assert wait_until(lambda: node.get("/admin/ready").status_code == 503, 5)
            ready = node.get("/admin/ready").json()
            assert "removed from cluster" in ready["reason"], ready
            with pytest.raises(ClientError) as refused:
                Client(node.url, timeout=5).put("load", "after", b"x")
            assert refused.value.status == 503 and refused.value.code == "removed"
            assert "removed from the cluster" in node.log_path.read_text()


def test_leadership_moves_to_a_node_just_added(tmp_path):
    with LocalCluster(3, tmp_path, extra_args=FAST) as cluster:
        cluster.wait_ready()
        with WriteLoad(cluster.nodes["n1"]) as load:
            join(cluster, "n4", tmp_path)
            wait_promoted(cluster, "n4")
            moved = Client(cluster.nodes["n2"].url, timeout=10).transfer_leader("n4")
            assert moved["leader"] == "n4"
            time.sleep(0.5)
        assert load.failures == [] and load.written > 50
        assert cluster.leader.name == "n4"


def test_a_paused_learner_never_holds_back_a_commit(tmp_path):
    """One voter and one learner: were the learner counted (as a voter or in the in-sync set), writes would
    stall while it is stopped. The learner's join answer is written by hand and its token never used, so
    the leader never promotes it."""
    with LocalCluster(1, tmp_path, extra_args=FAST) as cluster:
        cluster.wait_ready()
        leader = cluster.nodes["n1"]
        port = free_port()
        Client(leader.url).member_add("n2", f"127.0.0.1:{port}")
        data_dir = tmp_path / "n2"
        data_dir.mkdir()
        config = Client(leader.url).stats()
        (data_dir / "join.json").write_text(json.dumps({
            "name": "n2", "cluster_id": _cluster_id(leader), "leader": "n1",
            "voters": {"n1": leader.address}, "learners": {"n2": f"127.0.0.1:{port}"}, "has_secret": False}))
        learner = NodeProcess("n2", port, log_dir=tmp_path, extra_args=ON_DISK + [
            "-data-dir", str(data_dir), "-join", leader.url])
        cluster.nodes["n2"] = learner
        learner.start()
        Client(leader.url).put("load", "before", b"x")
        assert holds(learner, Client(leader.url).stats()["applied_revision"])
        learner.pause()
        started = time.monotonic()
        with WriteLoad(leader) as load:
            assert wait_until(lambda: load.written >= 100, 15)
        per_write = (time.monotonic() - started) / max(load.written, 1)
        assert load.failures == [] and per_write < 0.1, per_write
        assert members(leader)["n2"]["role"] == "learner" and config["cluster_size"] == 1
        learner.resume()


def test_a_join_token_works_once(tmp_path):
    with LocalCluster(3, tmp_path, extra_args=FAST) as cluster:
        cluster.wait_ready()
        port = free_port()
        follower = cluster.followers[0]
        token = Client(follower.url).member_add("n4", f"127.0.0.1:{port}")["join_token"]
        before = Client(cluster.leader.url).stats()["last_index"]
        wrong = NodeProcess("n4", port, log_dir=tmp_path / "wrong", extra_args=ON_DISK + [
            "-data-dir", str(tmp_path / "wrong"), "-join", follower.url, "-join-token", "0" * 64])
        wrong.start(wait=False)
        assert wrong.process.wait(timeout=20) == 1
        assert "join_token_invalid" in wrong.log_path.read_text()
        assert Client(cluster.leader.url).stats()["last_index"] == before  # nothing changed
        assert members(cluster.leader)["n4"]["role"] == "learner"
        first = NodeProcess("n4", port, log_dir=tmp_path, extra_args=ON_DISK + [
            "-data-dir", str(tmp_path / "n4"), "-join", follower.url, "-join-token", token])
        cluster.nodes["n4"] = first
        first.start(timeout=20)
        wait_promoted(cluster, "n4")
        again = NodeProcess("n4", free_port(), log_dir=tmp_path / "again", extra_args=ON_DISK + [
            "-data-dir", str(tmp_path / "again"), "-join", follower.url, "-join-token", token])
        again.start(wait=False)
        assert again.process.wait(timeout=20) == 1
        text = again.log_path.read_text()
        assert "join_refused" in text and "joined already" in text
        assert "refused the join of n4" in cluster.leader.log_path.read_text()


def test_a_node_of_another_cluster_cannot_join(tmp_path):
    with LocalCluster(1, tmp_path / "other", extra_args=ON_DISK + ["-data-dir", str(tmp_path / "x1")],
                      prefix="x") as other:
        other.wait_ready()
    with LocalCluster(1, tmp_path, extra_args=FAST) as cluster:
        cluster.wait_ready()
        port = free_port()
        token = Client(cluster.nodes["n1"].url).member_add("x1", f"127.0.0.1:{port}")["join_token"]
        stranger = NodeProcess("x1", port, log_dir=tmp_path / "stranger", extra_args=ON_DISK + [
            "-data-dir", str(tmp_path / "x1"), "-join", cluster.nodes["n1"].url, "-join-token", token])
        stranger.start(wait=False)
        assert stranger.process.wait(timeout=20) == 1
        assert "wrong_cluster" in stranger.log_path.read_text()
        assert "refused the join of x1" in cluster.nodes["n1"].log_path.read_text()


def _cluster_id(node: NodeProcess) -> str:
    """The cluster id a single node started without -cluster has."""
    return Config.from_sources({"name": node.name, "listen": node.address, "in_memory": True}).cluster_id


def test_a_joined_node_is_given_the_cluster_secret(tmp_path):
    """The members sign every peer call; the new node can only take part with the secret the join gave it."""
    secret = tmp_path / "secret"
    secret.write_text("a cluster secret of forty bytes, or more\n")
    with LocalCluster(1, tmp_path, extra_args=FAST + ["-cluster-secret-file", str(secret)]) as cluster:
        cluster.wait_ready()
        node = join(cluster, "n2", tmp_path)
        wait_promoted(cluster, "n2")
        revision = Client(cluster.nodes["n1"].url).put("signed", "k", b"v")["revision"]
        assert holds(node, revision)
        kept = tmp_path / "n2" / "cluster.secret"
        assert kept.read_bytes() == b"a cluster secret of forty bytes, or more"
        assert "refused" not in node.log_path.read_text()
