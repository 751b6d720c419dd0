"""Summarize measured runs: medians and ratios, a plain-text table, and the JSON results file."""

import json
import statistics
from pathlib import Path

from bench.measure import WORKLOADS


def summarize(comparison):
    """One row per target: rates per round, median, ratio to the baseline's median, median p99, flags."""
    medians = {label: _median_rate(runs) for label, runs in comparison.runs.items()}
    baseline_median = medians[comparison.baseline]
    rows = []
    for label, runs in comparison.runs.items():
        flags = [f"round {number}: {problem}" for number, run in enumerate(runs, 1) for problem in run.problems]
        if comparison.preflight.get(label):
            flags.insert(0, comparison.preflight[label])
        rows.append({
            "label": label,
            "rates": [run.requests_per_second for run in runs],
            "median_rps": medians[label],
            "ratio_to_baseline": round(medians[label] / baseline_median, 3) if baseline_median else None,
            "p99_ms_median": statistics.median(run.latency_ms["p99"] for run in runs) if runs else None,
            "flags": flags,
            "runs": runs,
        })
    return rows


def _median_rate(runs):
    return round(statistics.median(run.requests_per_second for run in runs), 1) if runs else 0.0


def render_table(results, config):
    """The report printed at the end of a run, one block per scenario and workload."""
    lines = [
        f"{config.rounds} round(s) x {config.duration_s} s per server, {config.warmup_s} s warm-up, "
        f"{config.connections} connections, {config.wrk_threads} wrk threads, "
        f"{config.server_threads} server threads ({config.cluster_threads} per cluster node); ratio = median / median of the first row",
    ]
    for scenario in results:
        lines.append("")
        if scenario.skipped:
            lines.append(f"== {scenario.name}: skipped: {scenario.skipped}")
            continue
        lines.append(f"== {scenario.name}")
        lines.extend(f"   {note}" for note in scenario.notes)
        for comparison in scenario.comparisons:
            lines.append(f"-- {comparison.workload}: {WORKLOADS[comparison.workload]}")
            lines.extend(_comparison_lines(summarize(comparison), config.rounds))
    return "\n".join(lines)


def _comparison_lines(rows, rounds):
    header = ["server"] + [f"round {n}" for n in range(1, rounds + 1)] + ["median", "ratio", "p99 ms", "flags"]
    table = [header]
    for row in rows:
        table.append(
            [row["label"]]
            + [f"{rate:.1f}" for rate in row["rates"]]
            + [f"{row['median_rps']:.1f}", _format_ratio(row["ratio_to_baseline"]),
               f"{row['p99_ms_median']:.2f}", "FLAGGED: " + "; ".join(row["flags"]) if row["flags"] else ""]
        )
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header) - 1)]
    lines = []
    for cells in table:
        first = cells[0].ljust(widths[0])
        numbers = [cell.rjust(width) for cell, width in zip(cells[1:-1], widths[1:])]
        lines.append("   " + "  ".join([first, *numbers, cells[-1]]).rstrip())
    return lines


def _format_ratio(ratio):
    return "n/a" if ratio is None else f"{ratio:.2f}"


def results_document(results, config, run_info):
    """Everything measured, as a JSON-ready dict (run_info: timestamps, machine, tool versions)."""
    return {
        **run_info,
        "settings": {
            "rounds": config.rounds,
            "duration_s": config.duration_s,
            "warmup_s": config.warmup_s,
            "connections": config.connections,
            "wrk_threads": config.wrk_threads,
            "server_threads": config.server_threads,
            "cluster_threads": config.cluster_threads,
            "badkv_cmd": config.badkv_cmd,
            "durable_dir": str(config.durable_dir),
            "latency_requests": config.latency_requests,
        },
        "workloads": WORKLOADS,
        "scenarios": [_scenario_json(scenario) for scenario in results],
    }


def _scenario_json(scenario):
    comparisons = []
    for comparison in scenario.comparisons:
        rows = summarize(comparison)
        targets = [{**row, "runs": [run.to_json() for run in row["runs"]]} for row in rows]
        comparisons.append({"workload": comparison.workload, "baseline": comparison.baseline, "targets": targets})
    return {"name": scenario.name, "skipped": scenario.skipped, "notes": scenario.notes,
            "summary": scenario.summary, "comparisons": comparisons}


def write_results(document, results_dir, stamp):
    """Write the document to results_dir/<stamp>.json and return its path."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
