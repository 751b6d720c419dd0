from pathlib import Path

import pytest

from bench import etcd_cluster
from bench.etcd_cluster import EtcdMissing, cluster_specs, ensure_etcd, initial_cluster, is_leader, members


def flag(argv, name):
    return argv[argv.index(name) + 1]


def test_three_members_get_their_own_ports_and_one_initial_cluster(tmp_path):
    specs = cluster_specs(Path("/usr/bin/etcd"), [2001, 2002, 2003, 2004, 2005, 2006], tmp_path)
    assert [spec.label for spec in specs] == ["etcd-e1", "etcd-e2", "etcd-e3"]
    assert [spec.port for spec in specs] == [2001, 2003, 2005]
    expected = "e1=http://127.0.0.1:2002,e2=http://127.0.0.1:2004,e3=http://127.0.0.1:2006"
    for spec in specs:
        assert flag(spec.argv, "--initial-cluster") == expected
        assert flag(spec.argv, "--initial-cluster-state") == "new"
        assert "--enable-v2" in spec.argv and spec.health_path == "/health"
    e2 = specs[1].argv
    assert flag(e2, "--data-dir") == str(tmp_path / "e2")
    assert flag(e2, "--listen-client-urls") == flag(e2, "--advertise-client-urls") == "http://127.0.0.1:2003"
    assert flag(e2, "--listen-peer-urls") == "http://127.0.0.1:2004"


def test_members_need_two_ports_each():
    with pytest.raises(ValueError, match="need 6 ports"):
        members([1, 2, 3])
    assert initial_cluster(members([1, 2], names=("a",))) == "a=http://127.0.0.1:2"


def test_the_leader_is_read_from_v2_stats():
    assert is_leader({"name": "e1", "state": "StateLeader"})
    assert not is_leader({"name": "e2", "state": "StateFollower"})
    assert not is_leader({})


def test_an_installed_etcd_is_used_as_is(tmp_path):
    binary = tmp_path / "etcd"
    binary.write_text("")
    assert ensure_etcd(binary) == binary


def test_a_missing_etcd_says_how_to_install_it_when_not_root(tmp_path, monkeypatch):
    monkeypatch.setattr(etcd_cluster.shutil, "which", lambda name: None)
    monkeypatch.setattr(etcd_cluster.os, "geteuid", lambda: 1000)
    with pytest.raises(EtcdMissing, match="sudo apt-get install -y -q etcd-server"):
        ensure_etcd(tmp_path / "missing")


def test_a_missing_etcd_is_installed_with_apt_when_root(tmp_path, monkeypatch):
    binary = tmp_path / "etcd"
    commands = []

    def fake_install(command, **kwargs):
        commands.append(command)
        binary.write_text("")

    monkeypatch.setattr(etcd_cluster.shutil, "which", lambda name: None)
    monkeypatch.setattr(etcd_cluster.os, "geteuid", lambda: 0)
    monkeypatch.setattr(etcd_cluster.subprocess, "run", fake_install)
    assert ensure_etcd(binary) == binary
    assert commands == [("apt-get", "install", "-y", "-q", "etcd-server")]
