"""The dashboard in Debian's headless Chromium against a real 3-node cluster: the member table renders
every member with one leader, and shows the new leader after the old one is killed with SIGKILL.

Chromium is installed with apt when missing (root); the test skips, saying why, only if that fails.
"""

from __future__ import annotations

import json

import pytest

from badkv.testing.chromium import Browser, ensure_chromium
from badkv.testing.processes import LocalCluster

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]

ADMIN = "admin-token-of-the-dashboard-test"
FAST = ["-in-memory"]  # (nothing here is about the disk)
# The member rows as the page rendered them: [name, role] per row.
MEMBER_ROWS = ("Array.from(document.querySelectorAll('#members tbody tr'))"
               ".map(row => [row.dataset.name, row.dataset.role])")


@pytest.fixture(scope="module")
def chromium():
    reason = ensure_chromium()
    if reason is not None:
        print(f"skipping the dashboard tests: {reason}")
        pytest.skip(reason)


@pytest.fixture
def cluster(tmp_path):
    running = LocalCluster(3, tmp_path, extra_args=FAST).start()
    yield running
    running.stop()


@pytest.fixture
def browser(chromium, tmp_path):
    with Browser(tmp_path / "chromium.log") as running:
        yield running


def leaders_in(rows) -> list[str]:
    return [name for name, role in rows if role == "leader"]


def test_the_page_shows_every_member_and_the_new_leader_after_a_kill(cluster, browser):
    cluster.wait_ready()
    old = cluster.leader
    watched = cluster.followers[0]  # the page stays open on a node that survives
    browser.open(watched.url + "/admin/dashboard")
    rows = browser.wait_for(f"(rows => rows.length === 3 && rows)({MEMBER_ROWS})", 20, "three member rows")
    assert sorted(name for name, _ in rows) == sorted(cluster.names)
    browser.wait_for(f"{MEMBER_ROWS}.filter(r => r[1] === 'leader').map(r => r[0]).join() === {old.name!r}",
                     10, f"the page shows {old.name} as the one leader")
    relayed = browser.evaluate("document.getElementById('source').textContent")
    assert f"view of {old.name} (leader), relayed by {watched.name}" in relayed

    old.kill()
    new_leader = ("(rows => { const leaders = rows.filter(r => r[1] === 'leader').map(r => r[0]);"
                  f" return leaders.length === 1 && leaders[0] !== {old.name!r} && leaders[0]; }})({MEMBER_ROWS})")
    shown = browser.wait_for(new_leader, 15, "the page shows a new leader")
    assert shown == cluster.wait_for_leader(other_than=(old.name,)).name
    rows = browser.evaluate(MEMBER_ROWS)
    assert len(rows) == 3 and leaders_in(rows) == [shown]
    browser.wait_for(f"document.querySelector('#members tr[data-name={old.name}]').classList.contains('down')",
                     10, f"the page shows {old.name} unreachable")


def test_with_auth_on_the_page_asks_for_the_admin_token_and_sends_it(tmp_path, browser):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    auth_on = [*FAST, "-auth", "on", "-admin-token-file", str(token_file)]
    alone = LocalCluster(1, tmp_path, extra_args=auth_on).start()
    try:
        alone.wait_ready()
        browser.open(alone.nodes["n1"].url + "/admin/dashboard")
        browser.wait_for("document.getElementById('status').textContent.includes('admin token is needed')",
                         10, "the page asks for the admin token")
        assert browser.evaluate(MEMBER_ROWS) == []
        browser.evaluate(f"document.getElementById('token').value = {json.dumps(ADMIN)};"
                         " document.getElementById('token-form').requestSubmit()")
        rows = browser.wait_for(f"(rows => rows.length === 1 && rows)({MEMBER_ROWS})", 10, "the member row")
        assert rows == [["n1", "leader"]]
        assert browser.evaluate("sessionStorage.getItem('badkv.admin-token')") == ADMIN
        assert browser.evaluate("document.getElementById('token').value") == "", "the field does not keep it"
    finally:
        alone.stop()
