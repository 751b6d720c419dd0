"""Tests for badkv/security/data_ids.py and the data dir's id (badkv/storage/datadir.py): a member heard once
with one data dir is refused when it comes back with another, until a membership change forgets it; the id
and the members' ids outlive a restart."""

import json
import logging
import os

import pytest

from badkv.cluster.boundary import PeerBoundary
from badkv.config import Config
from badkv.errors import DataDirChanged
from badkv.security.data_ids import DATA_DIR_CHANGED, DATA_ID, DataIds
from badkv.security.peer_auth import CLUSTER, INSTANCE, SENDER
from badkv.storage.datadir import META_NAME, DataDir

THREE = "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3"


def data_dir(path) -> DataDir:
    return DataDir(path, sync_file=lambda fd: None, sync_folder=lambda folder: None)


def test_the_first_id_is_kept_and_another_is_refused():
    saved = []
    ids = DataIds({}, saved.append)
    ids.check("n2", "aaaa")
    ids.check("n2", "aaaa")
    assert saved == [{"n2": "aaaa"}]  # written once, when first heard
    with pytest.raises(DataDirChanged) as refusal:
        ids.check("n2", "bbbb")
    assert refusal.value.status == 409 and refusal.value.code == "data_dir_changed"
    assert "n2 now runs on another data dir" in refusal.value.message and "DELETE /admin/members/n2" in refusal.value.message
    assert ids.known("n2") == "aaaa"


def test_a_call_without_an_id_is_not_checked():
    ids = DataIds({"n2": "aaaa"}, lambda known: None)
    ids.check("n2", "")  # an in-memory node, or one of a release before data ids
    assert ids.known("n2") == "aaaa"


def test_a_member_removed_and_added_again_may_bring_a_new_data_dir():
    saved = []
    ids = DataIds({"n2": "aaaa", "n3": "cccc"}, saved.append)
    ids.keep_only({"n1", "n3"})
    assert saved == [{"n3": "cccc"}]
    ids.check("n2", "bbbb")
    assert ids.known("n2") == "bbbb"


def test_a_data_dir_draws_its_id_once_and_keeps_the_members_ids(tmp_path):
    first = data_dir(tmp_path / "n1")
    first.claim("n1", "c1")
    assert len(first.data_id) == 32
    first.save_peer_data_ids({"n2": "aaaa"})
    first.release()
    again = data_dir(tmp_path / "n1")
    again.claim("n1", "c1")
    assert again.data_id == first.data_id
    assert again.peer_data_ids() == {"n2": "aaaa"}
    again.release()
    wiped = data_dir(tmp_path / "wiped")
    wiped.claim("n1", "c1")
    assert wiped.data_id != first.data_id and wiped.peer_data_ids() == {}
    wiped.release()


def test_a_data_dir_made_before_data_ids_gets_one_and_keeps_it(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / META_NAME).write_text(json.dumps({"node": "n1", "cluster_id": "c1"}) + "\n")
    old = data_dir(folder)
    old.claim("n1", "c1")
    drawn = old.data_id
    old.release()
    assert json.loads((folder / META_NAME).read_text()) == {"node": "n1", "cluster_id": "c1", "data_id": drawn}
    again = data_dir(folder)
    again.claim("n1", "c1")
    assert again.data_id == drawn
    again.release()


def test_an_unreadable_peers_file_is_learnt_again(tmp_path, caplog):
    folder = data_dir(tmp_path / "n1")
    folder.claim("n1", "c1")
    with open(os.path.join(folder.directory, "peers.json"), "w") as broken:
        broken.write("{not json")
    with caplog.at_level(logging.WARNING):
        assert folder.peer_data_ids() == {}
    assert "unreadable peers.json" in caplog.text
    folder.release()


def edge(known: dict, saved: list, data_id: str = "mine0") -> PeerBoundary:
    config = Config.from_sources({"name": "n1", "cluster": THREE, "in_memory": True})
    return PeerBoundary(config, None, instance="i1", data_id=data_id, data_ids=DataIds(known, saved.append))


def test_the_boundary_refuses_a_call_from_another_data_dir_and_logs_it(caplog):
    boundary = edge({"n2": "aaaa"}, [])
    headers = {CLUSTER: boundary.cluster_id, SENDER: "n2", INSTANCE: "i2", DATA_ID: "aaaa"}
    boundary.admit("POST", "/cluster/v1/append", b"", headers, "127.0.0.1:9")
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        with pytest.raises(DataDirChanged):
            boundary.admit("POST", "/cluster/v1/append", b"", dict(headers, **{DATA_ID: "bbbb"}), "127.0.0.1:9")
    assert "n1: refused a peer call from 127.0.0.1:9 (sender 'n2'): data_dir_changed" in caplog.text


def test_the_boundary_ignores_answers_from_another_data_dir(caplog):
    boundary = edge({"n3": "cccc"}, [])
    assert boundary.answer_heard("n3", {INSTANCE: "i3", DATA_ID: "cccc"}, "127.0.0.1:3")
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        assert not boundary.answer_heard("n3", {INSTANCE: "i3b", DATA_ID: "dddd"}, "127.0.0.1:3")
    assert "n1: ignoring the answers of n3 at 127.0.0.1:3: n3 now runs on another data dir" in caplog.text
    # ... and the next call tells n3, whose new data dir knows no one yet, so that it says so too.
    assert boundary.headers_for("POST", "/cluster/v1/append", b"", "n3")[DATA_DIR_CHANGED] == "cccc"
    assert DATA_DIR_CHANGED not in boundary.headers_for("POST", "/cluster/v1/append", b"", "n2")
    told = edge({}, [], data_id="dddd")
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        told.admit("POST", "/cluster/v1/append", b"", {CLUSTER: told.cluster_id, SENDER: "n2", INSTANCE: "i2",
                                                       DATA_DIR_CHANGED: "cccc"}, "127.0.0.1:2")
    assert "n1: n2 knew this node with another data dir (data id cccc, this one is dddd)" in caplog.text


def test_every_call_and_answer_names_the_data_id_and_a_membership_change_forgets():
    saved = []
    boundary = edge({"n2": "aaaa", "n3": "cccc"}, saved)
    assert boundary.headers_for("POST", "/cluster/v1/append", b"", "n2")[DATA_ID] == "mine0"
    assert boundary.answer_headers()[DATA_ID] == "mine0"
    boundary.set_members(frozenset({"n1", "n2"}))
    assert saved[-1] == {"n2": "aaaa"}


def test_the_caller_logs_a_data_dir_refusal_with_what_to_do(caplog):
    boundary = edge({}, [])
    answer = json.dumps({"error": "data_dir_changed", "message": "n1 now runs on another data dir"}).encode()
    with caplog.at_level(logging.ERROR, logger="badkv.cluster.boundary"):
        boundary.refused_by("n2", 409, answer)
    assert "n1: n2 refused this node: it knew this node with another data dir" in caplog.text
    assert "removed and added again" in caplog.text
