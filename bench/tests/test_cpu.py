import os
from types import SimpleNamespace

from bench import cpu
from bench.cpu import CpuMeter, group_cpu_seconds, stat_fields
from bench.loadgen import LoadSpec

# A /proc/<pid>/stat line of a process named "gunicorn: a (b)": pgrp 4242, utime 150, stime 50.
STAT = "77 (gunicorn: a (b)) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 9 0 100 0 0"


def test_stat_fields_reads_the_group_and_ticks_after_a_name_with_parentheses():
    assert stat_fields(STAT) == (4242, 200)


def test_group_cpu_sums_only_the_group_members(tmp_path):
    for pid, line in (("77", STAT), ("78", STAT.replace("77 (", "78 (").replace(" 150 50 ", " 10 5 ")),
                      ("79", STAT.replace(" 4242 4242 ", " 9 9 "))):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(line)
    (tmp_path / "self").mkdir()  # not a pid: skipped
    assert group_cpu_seconds(4242, proc=tmp_path) == (200 + 15) / os.sysconf("SC_CLK_TCK")


def test_meter_divides_the_servers_cpu_by_the_requests_and_skips_the_warmup(monkeypatch):
    readings = iter([1.0, 1.5, 2.0, 3.0, 3.0, 3.2])  # before/after: warm-up 0.5 s, rounds 1.0 s and 0.2 s
    monkeypatch.setattr(cpu, "group_cpu_seconds", lambda pgid: next(readings))
    meter = CpuMeter(lambda spec: SimpleNamespace(requests=1000), {"http://127.0.0.1:1": ("auth on", 42)})
    for _ in range(3):
        meter(LoadSpec("http://127.0.0.1:1/api/v1/keys/bench/hot", "read.lua"))
    assert [round(us, 6) for us in meter.runs[("read.lua", "auth on")]] == [500.0, 1000.0, 200.0]
    assert meter.median_us("read.lua", "auth on", rounds=2) == 600.0
    assert meter.median_us("write.lua", "auth on", rounds=2) is None
    passed = meter(LoadSpec("http://127.0.0.1:2/", "read.lua"))  # not a metered server: no reading
    assert passed.requests == 1000 and len(meter.runs) == 1
