"""One benchmark run: check wrk, run the scenarios, print the table, write the JSON results.

Server logs go to bench/results/<UTC timestamp>-logs/, results to
bench/results/<UTC timestamp>.json. Every server is stopped before `main`
returns, also on Ctrl-C or SIGTERM.
"""

import logging
import os
import platform
import signal
import subprocess
from datetime import datetime, timezone
from functools import partial

from bench.chart import write_charts
from bench.config import ConfigError, config_from_args
from bench.loadgen import LoadgenError, ensure_wrk, run_wrk, wrk_version
from bench.report import render_table, results_document, write_results
from bench.scenarios import SCENARIOS, Context, ScenarioResult
from bench.servers import one_line

logger = logging.getLogger(__name__)


def _interrupt(signum, frame):
    """Turn the first Ctrl-C or SIGTERM into KeyboardInterrupt; ignore repeats so cleanup can finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"received signal {signum}")


def _git_revision(repo_root):
    try:
        completed = subprocess.run(
            ["git", "-C", str(repo_root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def busy_warning(load_before):
    """A sentence when other work was already using the CPUs as the run began, else ""."""
    cpus = os.cpu_count() or 1
    if load_before < cpus / 2:
        return ""
    return (f"WARNING: load average was {load_before:.2f} on {cpus} CPUs before the run started; "
            "other processes competed for the CPUs, so the numbers are noisy")


def run_info(config, wrk_path, started, finished, load_before):
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "git_revision": _git_revision(config.repo_root),
        "machine": {
            "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "wrk": wrk_version(wrk_path),
            "note": "wrk and the servers run on the same machine and share its cores",
        },
    }


def run_scenarios(context, names):
    """Run each named scenario; one that raises is recorded as skipped with the error and the rest go on."""
    results = []
    for name in names:
        logger.info("scenario %s: starting", name)
        try:
            result = SCENARIOS[name](context)
        except Exception as error:  # a broken scenario must not lose the others' numbers
            logger.exception("scenario %s failed", name)
            result = ScenarioResult(name=name, skipped=f"error: {one_line(error)}")
        if result.skipped:
            logger.warning("scenario %s: skipped: %s", name, result.skipped)
        results.append(result)
    return results


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(argv)
        wrk_path = ensure_wrk()
    except (ConfigError, LoadgenError) as error:
        logger.error("%s", error)
        return 2
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    load_before = os.getloadavg()[0]
    if busy_warning(load_before):
        logger.warning("%s", busy_warning(load_before))
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    log_dir = config.results_dir / f"{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    context = Context(config=config, log_dir=log_dir, load=partial(run_wrk, wrk_path))
    try:
        results = run_scenarios(context, config.scenarios)
    except KeyboardInterrupt:
        logger.warning("interrupted: all servers were stopped; no results file was written")
        return 130
    info = run_info(config, wrk_path, started, datetime.now(timezone.utc), load_before)
    document = results_document(results, config, info)
    path = write_results(document, config.results_dir, stamp)
    charts = write_charts(document, path)
    print(render_table(results, config))
    if busy_warning(load_before):
        print(busy_warning(load_before))
    print(f"\nresults: {path}\nserver logs: {log_dir}")
    for chart in charts:
        print(f"chart: {chart}")
    return 0

