import time

import pytest

from bench.servers import ServerPool, ServerSpec, ServerStartError, expand_template, group_running, one_line


def test_template_fills_placeholders_per_argument():
    argv = expand_template("badkv -name {name} -listen {listen} -threads {threads}", name="n1", listen="127.0.0.1:5", threads=8)
    assert argv == ("badkv", "-name", "n1", "-listen", "127.0.0.1:5", "-threads", "8")


def test_one_line_keeps_first_and_last_line():
    assert one_line(ServerStartError("badkv exited\nTraceback\nerror: bad flag")) == "badkv exited ... error: bad flag"


@pytest.mark.process
def test_stop_all_ends_the_whole_process_group(tmp_path):
    # The shell leaves a background child behind, as gunicorn's master leaves its worker.
    spec = ServerSpec(label="sleeper", argv=("sh", "-c", "sleep 60 & sleep 60"), port=0)
    with ServerPool(tmp_path, cwd=tmp_path, ready_timeout=1) as pool:
        server = pool._start_one(spec)
        time.sleep(0.2)
        pgid = server.pid
        assert group_running(pgid)
    assert not group_running(pgid)


@pytest.mark.process
def test_start_reports_a_server_that_exits_with_its_output(tmp_path):
    spec = ServerSpec(label="broken", argv=("sh", "-c", "echo 'unrecognized arguments: -cluster'; exit 2"), port=1)
    with ServerPool(tmp_path, cwd=tmp_path, ready_timeout=5) as pool:
        with pytest.raises(ServerStartError, match="unrecognized arguments"):
            pool.start([spec])
