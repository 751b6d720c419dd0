"""The real server processes: the ``badkv`` command and ``gunicorn -c gunicorn.conf.py``, started and stopped."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from badkv.testing.processes import NodeProcess, free_port

pytestmark = pytest.mark.process

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_BUDGET_S = 3.0
START_TIMEOUT_S = 15.0


def clean_environment(**badkv):
    """The test's environment without stray BADKV_* settings, plus ``badkv``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BADKV_")}
    return {**environ, **badkv}


def port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_serving(url: str, process: subprocess.Popen, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    with requests.Session() as probe:
        probe.trust_env = False
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the server exited with {process.returncode}"
            try:
                if probe.get(url + "/admin/health", timeout=0.5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
    pytest.fail(f"{url} did not become healthy in {timeout}s")


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def write_read_and_count(http: requests.Session, url: str, node_name: str) -> None:
    """One write, read back, and the stats that show it: the node really serves."""
    written = http.post(f"{url}/api/v1/keys/acme/greeting", data=b"hello", timeout=5)
    assert written.status_code == 202
    revision = written.json()["revision"]
    read = http.get(f"{url}/api/v1/keys/acme/greeting", timeout=5)
    assert (read.status_code, read.content) == (200, b"hello")
    assert read.headers["X-Badkv-Revision"] == str(revision)
    stats = http.get(f"{url}/admin/stats", timeout=5).json()
    assert (stats["node"], stats["keys"]) == (node_name, 1)
    assert stats["applied_revision"] >= revision


def test_the_badkv_command_serves_and_stops_on_sigterm(tmp_path, http):
    node = NodeProcess("proc1", free_port(), log_dir=tmp_path, env=clean_environment(),
                       extra_args=["-in-memory", "-data-dir", str(tmp_path / "data")])
    try:
        node.start(timeout=START_TIMEOUT_S)
        write_read_and_count(http, node.url, "proc1")
        http.close()
        started = time.monotonic()
        status = node.stop(timeout=STOP_BUDGET_S)
        elapsed = time.monotonic() - started
    finally:
        node.stop()
    assert status == 0, node.log_path.read_text()
    assert elapsed < STOP_BUDGET_S
    assert port_is_closed(node.port)


def test_gunicorn_with_the_repository_config_serves_and_stops_on_sigterm(tmp_path, http):
    port = free_port()
    environ = clean_environment(BADKV_NAME="guni1", BADKV_LISTEN=f"127.0.0.1:{port}", BADKV_IN_MEMORY="true",
                                BADKV_DATA_DIR=str(tmp_path / "data"))
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                    "badkv.app:create_app()"], cwd=REPO_ROOT, env=environ, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_serving(f"http://127.0.0.1:{port}", process)
        write_read_and_count(http, f"http://127.0.0.1:{port}", "guni1")
        http.close()
        os.killpg(process.pid, signal.SIGTERM)
        status = process.wait(timeout=STOP_BUDGET_S + 2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        try:
            os.killpg(process.pid, signal.SIGKILL)   # a worker that outlived its master
        except ProcessLookupError:
            pass
    assert status == 0, (tmp_path / "gunicorn.log").read_text()
    assert port_is_closed(port)


@pytest.mark.parametrize("args", [["-bogus"], ["-threads", "-1"], ["-cluster", "other=127.0.0.1:1"]])
def test_bad_flags_exit_2_quickly(tmp_path, args):
    node = NodeProcess("proc9", free_port(), log_dir=tmp_path, env=clean_environment(),
                       extra_args=["-in-memory", *args])
    try:
        node.start(wait=False)
        status = node.process.wait(timeout=10)
    finally:
        node.stop()
    assert status == 2
    assert len(node.log_path.read_text().splitlines()) == 1


def test_wait_healthy_reports_a_node_that_exited(tmp_path):
    node = NodeProcess("proc8", free_port(), log_dir=tmp_path, env=clean_environment(), extra_args=["-bogus"])
    try:
        with pytest.raises(RuntimeError, match="exited with 2"):
            node.start(timeout=10)
    finally:
        node.stop()
    assert not node.running
