"""Tests for ``badkvctl tenant ...`` and ``--token`` (badkv.ctl, badkv.client) against one real node with
``-auth on``. (Apart from tests/test_ctl.py, whose node runs with auth off.)"""

import gc
import json

import pytest

from badkv.ctl import build_parser, main
from badkv.testing.processes import NodeProcess, free_port

pytestmark = pytest.mark.process

ADMIN = "ctl-admin-token"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ctl-tenants")
    (directory / "admin-token").write_text(ADMIN + "\n")
    process = NodeProcess("ctlt1", free_port(), log_dir=directory,
                          extra_args=["-in-memory", "-auth", "on", "-admin-token-file", str(directory / "admin-token")])
    try:
        process.start()
        yield process
    finally:
        gc.collect()
        process.stop()


@pytest.fixture
def ctl(node, capsys):
    def run_ctl(*args, token=ADMIN):
        with pytest.raises(SystemExit) as raised:
            main(["--endpoint", node.url] + (["--token", token] if token else []) + list(args))
        out, err = capsys.readouterr()
        return raised.value.code, out, err

    return run_ctl


def test_the_token_option_defaults_to_badkv_token(monkeypatch):
    monkeypatch.setenv("BADKV_TOKEN", "from-env")
    assert build_parser().parse_args(["stats"]).token == "from-env"
    assert build_parser().parse_args(["--token", "flag", "stats"]).token == "flag"


def test_create_prints_a_token_that_opens_the_tenant(ctl):
    code, out, _ = ctl("tenant", "create", "alpha")
    assert code == 0
    token = json.loads(out)["token"]
    assert ctl("put", "alpha", "k", "v", token=token)[0] == 0
    assert ctl("get", "alpha", "k", token=token)[:2] == (0, "v")
    code, _, err = ctl("get", "other", "k", token=token)
    assert code == 3 and "forbidden" in err
    code, _, err = ctl("get", "alpha", "k", token=None)
    assert code == 3 and "unauthenticated" in err


def test_rotate_and_revoke(ctl):
    old = json.loads(ctl("tenant", "create", "beta")[1])["token"]
    new = json.loads(ctl("tenant", "rotate", "beta")[1])["token"]
    assert ctl("get", "beta", "k", token=old)[0] == 3
    assert ctl("get", "beta", "k", token=new)[0] == 1  # opens the tenant: the key is just not there
    assert ctl("tenant", "revoke", "beta")[0] == 0
    assert ctl("get", "beta", "k", token=new)[0] == 3


def test_set_quota_list_and_drop(ctl):
    token = json.loads(ctl("tenant", "create", "gamma")[1])["token"]
    code, out, _ = ctl("tenant", "set-quota", "gamma", "--keys", "1", "--writes-per-second", "100")
    assert code == 0 and json.loads(out)["quota"] == {"keys": 1, "bytes": 0, "writes_per_second": 100}
    assert ctl("put", "gamma", "a", "v", token=token)[0] == 0
    code, _, err = ctl("put", "gamma", "b", "v", token=token)
    assert code == 3 and "quota_exceeded" in err
    code, out, _ = ctl("tenant", "list")
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["TENANT", "KEYS", "BYTES"]
    gamma = next(row.split() for row in rows if row.startswith("gamma "))
    assert gamma[1:4] == ["1", "2", "True"] and "keys=1" in gamma  # 2 bytes: the value and the name
    assert ctl("tenant", "drop", "gamma")[0] == 0
    assert ctl("get", "gamma", "a", token=token)[0] == 1


def test_tenant_commands_need_the_admin_token(ctl):
    token = json.loads(ctl("tenant", "create", "delta")[1])["token"]
    code, _, err = ctl("tenant", "list", token=token)
    assert code == 3 and "forbidden" in err
