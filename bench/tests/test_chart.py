import json

from bench.chart import draw, is_smoke, title_lines, write_charts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SETTINGS = {"rounds": 3, "duration_s": 10, "connections": 32}
INFO = {"git_revision": "abc1234", "started_at": "2026-12-02T00:00:00+00:00",
        "machine": {"cpus": 2, "load_average_1min_before": 0.4}}
CHART = {
    "throughput": [
        {"group": "POST", "label": "bare", "median_rps": 1200.0, "ratio": 1.0},
        {"group": "POST", "label": "badkv leader d1", "median_rps": 600.0, "ratio": 0.5},
        {"group": "POST", "label": "etcd leader e1", "median_rps": None, "ratio": None},
        {"group": "GET", "label": "etcd follower e2", "median_rps": 50000.0, "ratio": 40.0},
    ],
    "latency": [{"label": "bare POST", "p50_ms": 0.5, "p99_ms": 1.2},
                {"label": "badkv 1-client POST", "p50_ms": 5.4, "p99_ms": 9.0}],
}


def test_a_run_shorter_than_the_defaults_is_titled_smoke_run():
    assert not is_smoke(SETTINGS)
    assert title_lines(INFO, SETTINGS)[0].startswith("badkv perf, revision abc1234")
    short = {**SETTINGS, "rounds": 1, "duration_s": 2}
    assert is_smoke(short) and title_lines(INFO, short)[0].startswith("SMOKE RUN")
    assert is_smoke({**SETTINGS, "duration_s": 5})


def test_draw_writes_a_png(tmp_path):
    path = draw(CHART, INFO, SETTINGS, tmp_path / "run-perf.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def test_write_charts_draws_only_scenarios_with_chart_data_next_to_the_json(tmp_path):
    results = tmp_path / "20261202T000000Z.json"
    document = {**INFO, "settings": SETTINGS, "scenarios": [
        {"name": "durable", "summary": {"durable_over_in_memory": {}}},
        {"name": "perf", "summary": {"chart": CHART}},
    ]}
    results.write_text(json.dumps(document))
    written = write_charts(document, results)
    assert written == [tmp_path / "20261202T000000Z-perf.png"]
    assert written[0].read_bytes().startswith(PNG_SIGNATURE)
