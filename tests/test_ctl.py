"""Tests for badkvctl (badkv.ctl) against one real in-memory node: exit statuses and output."""

import base64
import gc
import io
import itertools
import json
import os
import select
import signal
import subprocess
import sys

import pytest

from badkv.client import Client
from badkv.ctl import build_parser, main, run
from badkv.testing.processes import NodeProcess, free_port

pytestmark = pytest.mark.process

_tenants = itertools.count(1)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ctl")
    process = NodeProcess("ctl1", free_port(), log_dir=directory,
                          extra_args=["-in-memory", "-data-dir", str(directory / "data")])
    try:
        process.start()
        yield process
    finally:
        gc.collect()  # close the keep-alive connections of badkvctl's clients, so the node stops at once
        process.stop()


@pytest.fixture
def tenant():
    """A tenant of its own for each test, so tests do not see each other's keys."""
    return f"ctl-{next(_tenants)}"


@pytest.fixture
def ctl(node, capsys):
    """Run badkvctl against ``node``; return (exit status, stdout, stderr)."""

    def run_ctl(*args, endpoint=None):
        with pytest.raises(SystemExit) as raised:
            main(["--endpoint", endpoint or node.url, *args])
        out, err = capsys.readouterr()
        return raised.value.code, out, err

    return run_ctl


def test_put_prints_json_with_the_revision_and_get_prints_the_value(ctl, tenant):
    code, out, _ = ctl("put", tenant, "greeting", "hello world")
    assert code == 0
    written = json.loads(out)
    assert (written["tenant"], written["name"]) == (tenant, "greeting")
    assert isinstance(written["revision"], int) and written["revision"] > 0
    assert written["timestamp"] == written["revision"]
    assert ctl("get", tenant, "greeting")[:2] == (0, "hello world")


def test_put_reads_the_value_from_stdin(ctl, tenant, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"line one\nline two\n")))
    assert ctl("put", tenant, "k", "-")[0] == 0
    assert ctl("get", tenant, "k")[:2] == (0, "line one\nline two\n")


def test_put_with_a_timestamp(ctl, tenant):
    code, out, _ = ctl("put", tenant, "k", "v", "--timestamp", "1234")
    assert code == 0
    assert json.loads(out)["timestamp"] == 1234


def test_get_verbose_prints_timestamp_and_revision_to_stderr(ctl, tenant):
    revision = json.loads(ctl("put", tenant, "k", "v", "--timestamp", "77")[1])["revision"]
    code, out, err = ctl("get", tenant, "k", "--verbose", "--consistency", "leader", "--min-revision", str(revision))
    assert (code, out) == (0, "v")
    assert err.strip() == f"timestamp=77 revision={revision}"


def test_get_of_a_missing_key_exits_1(ctl, tenant):
    code, out, err = ctl("get", tenant, "missing")
    assert (code, out) == (1, "")
    assert err.startswith("badkvctl: not_found:")


def test_delete_then_get_exits_1(ctl, tenant):
    ctl("put", tenant, "k", "v")
    code, out, _ = ctl("delete", tenant, "k")
    assert code == 0
    assert json.loads(out)["name"] == "k"
    assert ctl("get", tenant, "k")[0] == 1
    assert ctl("delete", tenant, "k")[0] == 1


@pytest.mark.parametrize("args, error", [
    pytest.param(["put", "{tenant}", "k", "new", "--if-none-match"], "precondition_failed", id="if-none-match"),
    pytest.param(["put", "{tenant}", "k", "new", "--if-match", "1"], "precondition_failed", id="wrong-if-match"),
    pytest.param(["put", "{tenant}", "k", "new", "--timestamp", "99"], "stale", id="older-timestamp"),
    pytest.param(["delete", "{tenant}", "k", "--timestamp", "99"], "stale", id="older-delete"),
])
def test_refused_writes_exit_3_and_change_nothing(ctl, tenant, args, error):
    assert ctl("put", tenant, "k", "old", "--timestamp", "100")[0] == 0
    code, out, err = ctl(*(arg.format(tenant=tenant) for arg in args))
    assert (code, out) == (3, "")
    assert err.startswith(f"badkvctl: {error}:")
    assert ctl("get", tenant, "k")[:2] == (0, "old")


def test_a_bad_tenant_is_refused_with_3(ctl):
    code, _, err = ctl("get", "bad tenant!", "k")
    assert code == 3
    assert "invalid_tenant" in err


def test_if_match_with_the_current_revision_succeeds(ctl, tenant):
    revision = json.loads(ctl("put", tenant, "k", "old")[1])["revision"]
    assert ctl("put", tenant, "k", "new", "--if-match", str(revision))[0] == 0
    assert ctl("get", tenant, "k")[1] == "new"


def test_take_prints_json_lines_in_revision_order(ctl, tenant):
    first = json.loads(ctl("put", tenant, "a", "1")[1])["revision"]
    second = json.loads(ctl("put", tenant, "b", "2")[1])["revision"]
    ctl("delete", tenant, "a")
    code, out, _ = ctl("take", "--tenant", tenant)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["deleted"]) for r in lines] == [("b", False), ("a", True)]
    assert lines[0]["revision"] == second and lines[1]["revision"] > second > first
    assert base64.b64decode(lines[0]["value"]) == b"2"
    since = [json.loads(line) for line in ctl("take", str(lines[1]["revision"]), "--tenant", tenant)[1].splitlines()]
    assert [r["name"] for r in since] == ["a"]


def test_take_without_a_tenant_includes_every_tenant(ctl, tenant):
    ctl("put", tenant, "x", "1")
    ctl("put", tenant + "-other", "y", "2")
    code, out, _ = ctl("take")
    keys = {(r["tenant"], r["name"]) for r in map(json.loads, out.splitlines())}
    assert code == 0
    assert {(tenant, "x"), (tenant + "-other", "y")} <= keys


def test_watch_prints_each_change_as_a_json_line_until_interrupted(node, tenant):
    """badkvctl watch in its own process: a line per change as it is applied, exit 0 on Ctrl-C (SIGINT)."""
    client = Client(node.url)
    before = client.put(tenant, "app.a", b"old")["revision"]
    command = [sys.executable, "-c", "from badkv.ctl import main; main()", "--endpoint", node.url, "watch", tenant,
               "--prefix", "app.", "--cursor", str(before), "--wait", "5"]
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        assert json.loads(_line_within(watcher, 10))["revision"] == before, "from --cursor on, inclusive"
        client.put(tenant, "db.x", b"not watched")
        later = client.put(tenant, "app.b", b"new")["revision"]
        shown = json.loads(_line_within(watcher, 10))
        assert (shown["name"], base64.b64decode(shown["value"]), shown["revision"]) == ("app.b", b"new", later)
        os.killpg(watcher.pid, signal.SIGINT)
        assert watcher.wait(10) == 0
    finally:
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait(10)


def test_watch_resumes_from_its_cursor_after_the_node_restarts(tmp_path):
    """The node goes down under a running badkvctl watch and comes back with its data: the watch retries
    with backoff and prints the next change, and nothing it printed before again."""
    node = NodeProcess("ctl-restart", free_port(), log_dir=tmp_path, extra_args=["-data-dir", str(tmp_path / "data")])
    node.start()
    client = Client(node.url)
    command = [sys.executable, "-c", "from badkv.ctl import main; main()", "--endpoint", node.url, "watch", "t",
               "--cursor", "0", "--wait", "2"]
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        first = client.put("t", "before", b"1")["revision"]
        assert json.loads(_line_within(watcher, 10))["revision"] == first
        node.stop()
        node.start()
        later = client.put("t", "after", b"2")["revision"]
        shown = json.loads(_line_within(watcher, 20))
        assert (shown["name"], shown["revision"]) == ("after", later), "resumed from its cursor, not from 0"
    finally:
        os.killpg(watcher.pid, signal.SIGKILL)
        watcher.wait(10)
        node.stop()


def _line_within(process, seconds: float) -> str:
    """The process's next stdout line, or a failure after ``seconds`` (select on its pipe: no sleeping)."""
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, f"no line within {seconds}s"
    line = process.stdout.readline()
    assert line, f"the watch ended: {process.stderr.read()}"
    return line


def test_members_prints_a_table(ctl, node):
    code, out, _ = ctl("members")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["NAME", "ADDRESS", "ROLE"]
    assert len(rows) == 1
    assert rows[0].split()[:3] == [f"{node.name}*", node.address, "leader"]


def test_stats_prints_json(ctl, node, tenant):
    revision = json.loads(ctl("put", tenant, "k", "v")[1])["revision"]
    code, out, _ = ctl("stats")
    assert code == 0
    stats = json.loads(out)
    assert (stats["node"], stats["role"]) == (node.name, "leader")
    assert stats["keys"] >= 1
    assert stats["applied_revision"] >= revision


def test_the_endpoint_may_come_from_the_environment_or_lack_a_scheme(node, capsys, monkeypatch):
    monkeypatch.setenv("BADKV_ENDPOINT", node.address)
    with pytest.raises(SystemExit) as raised:
        main(["stats"])
    assert raised.value.code == 0
    assert json.loads(capsys.readouterr().out)["node"] == node.name


@pytest.mark.parametrize("args", [["get", "t", "k"], ["put", "t", "k", "v"], ["stats"], ["members"], ["take"]])
def test_an_unreachable_node_exits_4(ctl, args):
    code, out, err = ctl(*args, endpoint=f"http://127.0.0.1:{free_port()}")
    assert (code, out) == (4, "")
    assert err.startswith("badkvctl: unreachable:")


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["get", "t"], ["put", "t", "k", "v", "--if-match", "abc"], ["take", "soon"],
    ["get", "t", "k", "--consistency", "eventual"],
])
def test_usage_errors_exit_2(ctl, args):
    code, out, err = ctl(*args)
    assert (code, out) == (2, "")
    assert "usage: badkvctl" in err


class _PagedClient(Client):
    """Serves ``count`` records with revisions 1..count in pages, as a node's take does;
    paging through them is left to the real Client.take_all."""

    def __init__(self, count):
        self.records = [{"tenant": "t", "name": f"k{r}", "value": "", "timestamp": r, "revision": r,
                         "deleted": False} for r in range(1, count + 1)]

    def take(self, since=0, *, limit=None, tenant=None):
        page = [r for r in self.records if r["revision"] >= since][:limit or 1000]
        return {"records": page, "next": page[-1]["revision"] + 1 if page else since}


def test_take_since_a_revision_prints_every_page(capsys):
    status = run(build_parser().parse_args(["take", "5"]), _PagedClient(2500))
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [json.loads(line)["revision"] for line in lines] == list(range(5, 2501))


def test_ls_lists_every_page_in_order_and_counts(ctl, tenant, monkeypatch):
    for name in ("b", "a", "c"):
        assert ctl("put", tenant, name, name.upper())[0] == 0
    monkeypatch.setattr("badkv.client.Client.range", _small_pages(Client.range))
    code, out, _ = ctl("ls", tenant)
    assert code == 0 and [json.loads(line)["name"] for line in out.splitlines()] == ["a", "b", "c"]
    code, out, _ = ctl("ls", tenant, "--reverse", "--keys-only")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["c", "b", "a"]
    assert "value" not in json.loads(out.splitlines()[0])
    assert ctl("ls", tenant, "--count")[1].strip() == "3"


def _small_pages(real):
    """Client.range with pages of one record, so ls must follow ``next``."""
    def range_in_pages_of_one(self, tenant, **options):
        if not options.get("count_only"):
            options["limit"] = 1
        return real(self, tenant, **options)
    return range_in_pages_of_one


def test_txn_reads_its_body_from_a_file_or_stdin_and_prints_the_answer(ctl, tenant, tmp_path, monkeypatch):
    body = {"compare": [{"name": "lock", "target": "exists", "exists": False}],
            "success": [{"op": "put", "name": "lock", "value": "me"}, {"op": "put", "name": "owner", "value": "me"}],
            "failure": [{"op": "get", "name": "lock"}]}
    (tmp_path / "txn.json").write_text(json.dumps(body))
    code, out, _ = ctl("txn", tenant, str(tmp_path / "txn.json"))
    first = json.loads(out)
    assert code == 0 and first["succeeded"] is True and isinstance(first["revision"], int)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    second = json.loads(ctl("txn", tenant)[1])  # the lock is taken now: the failure branch ran
    assert second["succeeded"] is False and second["results"][0]["revision"] == first["revision"]
    assert ctl("get", tenant, "owner")[:2] == (0, "me")


def test_txn_with_a_body_that_is_not_json_exits_3_and_one_the_node_refuses_too(ctl, tenant, tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    code, _, err = ctl("txn", tenant, str(tmp_path / "bad.json"))
    assert code == 3 and "not a JSON document" in err
    (tmp_path / "shape.json").write_text('{"success": [{"op": "rename", "name": "a"}]}')
    code, _, err = ctl("txn", tenant, str(tmp_path / "shape.json"))
    assert code == 3 and err.startswith("badkvctl: invalid_txn:")


def test_member_add_list_and_remove(ctl, node):
    code, out, _ = ctl("member", "add", "ctl9", f"127.0.0.1:{free_port()}")
    assert code == 0 and "-join-token " in out and f"-join {node.url}" in out
    token = out.rsplit("-join-token ", 1)[1].strip()
    assert len(token) == 64
    code, out, _ = ctl("member", "list")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert code == 0 and rows["ctl9"][2:4] == ["learner", "False"]
    code, out, _ = ctl("member", "remove", "ctl9")
    assert code == 0 and out.strip() == "ctl9 removed"
    code, _, err = ctl("member", "remove", "nobody")
    assert code != 0 and "not a member" in err
