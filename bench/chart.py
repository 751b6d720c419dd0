"""One PNG per run of the `perf` scenario: wrk throughput per row and single-client latency.

Drawn with matplotlib's Agg backend (no display needed) from the data the
scenario leaves in `summary["chart"]`, and written next to the run's JSON as
<stamp>-<scenario>.png. A run shorter than the defaults (fewer than 3 rounds
or under 10 s a run) is titled SMOKE RUN, so its image is never taken for a
measurement.
"""

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

SMOKE_ROUNDS, SMOKE_DURATION_S = 3, 10
COLOURS = {"bare": "#9e9e9e", "badkv": "#1f77b4", "etcd": "#2ca02c", "PySyncObj": "#ff7f0e"}


def is_smoke(settings):
    return settings["rounds"] < SMOKE_ROUNDS or settings["duration_s"] < SMOKE_DURATION_S


def title_lines(run_info, settings):
    """The chart's title: what, which revision, how measured; SMOKE RUN first for a short run."""
    machine = run_info.get("machine", {})
    lines = [f"badkv perf, revision {run_info.get('git_revision') or '?'}, {run_info.get('started_at', '')}",
             f"{settings['rounds']} rounds x {settings['duration_s']} s, {settings['connections']} connections, "
             f"{machine.get('cpus', '?')} CPUs shared by wrk and every server, load before "
             f"{machine.get('load_average_1min_before', '?')}"]
    if is_smoke(settings):
        lines.insert(0, "SMOKE RUN: too short to mean anything, not a measurement")
    return lines


def _colour(label):
    for prefix, colour in COLOURS.items():
        if label.startswith(prefix):
            return colour
    return "#7f7f7f"


def draw(chart, run_info, settings, path):
    """Write the PNG for one scenario's chart data to `path`; returns the path."""
    import matplotlib
    matplotlib.use("Agg")  # before pyplot: no display on a server
    from matplotlib import pyplot, ticker

    throughput = [row for row in chart["throughput"] if row["median_rps"] is not None]
    latency = [row for row in chart["latency"] if row["p50_ms"] is not None]
    figure, (rates, waits) = pyplot.subplots(1, 2, figsize=(14, 0.45 * max(len(throughput), 2 * len(latency)) + 2.5),
                                             gridspec_kw={"width_ratios": (3, 2)})
    labels = [f"{row['group']}  {row['label']}" for row in throughput]
    positions = range(len(throughput))
    rates.barh(positions, [row["median_rps"] for row in throughput], color=[_colour(r["label"]) for r in throughput])
    rates.set_yticks(list(positions), labels, fontsize=8)
    rates.invert_yaxis()
    rates.set_xscale("log")
    rates.xaxis.set_minor_formatter(ticker.NullFormatter())  # the minor labels of a log axis overlap
    rates.set_xlim(right=max((row["median_rps"] for row in throughput), default=1) * 4)  # room for the labels
    rates.set_xlabel("requests/s, median of the rounds (log scale)")
    for position, row in zip(positions, throughput):
        ratio = "" if row["ratio"] is None else f"  {row['ratio']:.2f}x bare"
        rates.annotate(f"{row['median_rps']:,.0f}/s{ratio}", (row["median_rps"], position),
                       xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    _draw_latency(waits, latency)
    figure.suptitle("\n".join(title_lines(run_info, settings)), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)


def _draw_latency(axes, latency):
    height = 0.4
    positions = range(len(latency))
    axes.barh([p - height / 2 for p in positions], [row["p50_ms"] for row in latency], height, label="p50",
              color=[_colour(row["label"]) for row in latency])
    axes.barh([p + height / 2 for p in positions], [row["p99_ms"] for row in latency], height, label="p99",
              color=[_colour(row["label"]) for row in latency], alpha=0.45)
    axes.set_yticks(list(positions), [row["label"] for row in latency], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("1 client, ms per request (solid: p50, light: p99)")
    axes.set_xlim(right=max((row["p99_ms"] for row in latency), default=1) * 1.4)  # room for the labels
    for position, row in zip(positions, latency):
        axes.annotate(f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} ms", (row["p99_ms"], position),
                      xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)


def write_charts(document, results_path):
    """A PNG next to `results_path` for every scenario of the results document with chart data."""
    written = []
    for scenario in document["scenarios"]:
        chart = scenario.get("summary", {}).get("chart")
        if not chart:
            continue
        path = Path(results_path).with_name(f"{Path(results_path).stem}-{scenario['name']}.png")
        try:
            written.append(draw(chart, document, document["settings"], path))
        except ImportError as error:
            logger.warning("no chart for %s: %s (install the bench extra: pip install -e '.[bench]')",
                           scenario["name"], error)
    return written
