"""The `perf` scenario: issue 12's whole comparison in one run, with the targets judged.

One run starts, side by side: the bare Flask app; a 3-node durable badkv
cluster (data on disk, fsync on); a 3-node etcd 3.4 (v2 API, data on disk);
a 3-node PySyncObj replicated dict (journal file, no fsync). Then, in
alternating rounds (every server once per round):

- POST (etcd: PUT) with wrk: bare; badkv via the leader and via a follower;
  PySyncObj via its leader; etcd on the leader and on a follower;
- GET with wrk: bare; badkv local on a follower, linearizable on the leader and
  via a follower; etcd on a follower;
- one client, one keep-alive connection, --latency-requests sequential requests:
  bare POST and GET (the client's floor), badkv POST and linearizable GET on
  the leader, etcd PUT on the leader.

The figures are judged against issue 12's targets (bench/targets.py); the
JSON summary holds them, the verdicts and the chart's data (bench/chart.py).
"""

import dataclasses
import logging
import statistics
import tempfile

from bench import targets as goals
from bench.disk import filesystem_of
from bench.latency import LatencySpec, run_latency, summarize_rounds
from bench.measure import Comparison, Target, measure, preload
from bench.perf_servers import SetupProblem, start_badkv, start_etcd, start_syncobj
from bench.scenarios import ScenarioResult, bare_spec, fsync_note, storage_stats
from bench.servers import free_ports

logger = logging.getLogger(__name__)

LATENCY_WARMUP_REQUESTS = 200


def perf(context):
    """Start every server (data under one temp folder on --durable-dir), measure, judge the targets.

    Only a badkv cluster that cannot start skips the scenario; without etcd or PySyncObj the
    rows and targets that need them are left out (n/a), and the notes say why.
    """
    config = context.config
    result = ScenarioResult(name="perf")
    with tempfile.TemporaryDirectory(prefix="badkv-bench-perf-", dir=config.durable_dir) as data_root:
        filesystem = filesystem_of(data_root)
        result.notes.append(f"data dirs (badkv, etcd, PySyncObj journals) under {data_root}, on "
                            f"{filesystem.describe() if filesystem else 'an unknown filesystem'}")
        with context.pool(result.name) as pool:
            bare = Target("bare", pool.start([bare_spec(config, free_ports(1)[0])])[0].spec.base_url)
            try:
                badkv = start_badkv(pool, config, f"{data_root}/badkv")
            except SetupProblem as error:
                result.skipped = str(error)
                return result
            result.notes.append(f"badkv durable cluster: {badkv.members}")
            etcd = _optional(result, "etcd", lambda: start_etcd(pool, f"{data_root}/etcd"))
            syncobj = _optional(result, "PySyncObj", lambda: start_syncobj(pool, config, f"{data_root}/syncobj"))[0]
            preload([bare])
            _measure_rows(context, result, bare, badkv, etcd, syncobj)
    _judge(result, badkv, syncobj)
    return result


def _measure_rows(context, result, bare, badkv, etcd, syncobj):
    """The wrk comparisons (POST, then GET) and the 1-client rounds, into `result`."""
    config = context.config
    etcd_leader, etcd_follower = etcd
    before = storage_stats(badkv.leader)
    writes = (bare, badkv.leader, badkv.follower, syncobj, etcd_leader, etcd_follower)
    reads = (bare, badkv.follower, badkv.leader_linearizable, badkv.follower_linearizable, etcd_follower)
    result.comparisons.append(measure(Comparison("write", _present(writes)), config, context.load))
    result.comparisons.append(measure(Comparison("read", _present(reads)), config, context.load))
    specs = _latency_specs(bare, badkv, etcd_leader, config.latency_requests)
    result.summary["latency"] = measure_latency(specs, config)
    result.notes.append(fsync_note(before, storage_stats(badkv.leader)))


def _judge(result, badkv, syncobj):
    """The figures, the targets' verdicts and the chart's data, into the notes and the summary."""
    write, read = result.comparisons
    latency = result.summary["latency"]
    figures, flagged = perf_figures(write, read, latency, badkv, syncobj)
    verdicts = goals.judge_all(figures, flagged)
    result.notes += latency_notes(latency) + ["targets (issue 12):"] + [f"  {goals.verdict_line(v)}" for v in verdicts]
    result.summary.update(figures=figures, targets=verdicts, chart=chart_data(write, read, latency))


def _optional(result, what, start):
    """Start an optional cluster: its result, or (None, None) and a note saying why it is left out."""
    try:
        return start()
    except SetupProblem as error:
        logger.warning("perf: %s left out: %s", what, error)
        result.notes.append(f"{what} left out: {error}")
        return None, None


def _present(targets):
    return tuple(target for target in targets if target is not None)


def _latency_specs(bare, badkv, etcd_leader, count):
    specs = [
        LatencySpec("bare POST", bare.base_url, "POST", bare.api.key_prefix, count),
        LatencySpec("bare GET", bare.base_url, "GET", bare.api.key_prefix, count),
        LatencySpec(goals.ONE_CLIENT_POST.removesuffix(" p50"), badkv.leader.base_url, "POST",
                    badkv.leader.api.key_prefix, count),
        LatencySpec(goals.ONE_CLIENT_LINEARIZABLE_GET.removesuffix(" p50"), badkv.leader.base_url, "GET",
                    badkv.leader.api.key_prefix, count, query=badkv.leader_linearizable.api.read_query),
    ]
    if etcd_leader:
        specs.append(LatencySpec(goals.ETCD_ONE_CLIENT_PUT.removesuffix(" p50"), etcd_leader.base_url, "PUT",
                                 etcd_leader.api.key_prefix, count, form=True))
    return specs


def measure_latency(specs, config):
    """Each spec once per round, in turn, after a short uncounted warm-up; the rounds' medians per spec."""
    if config.warmup_s:
        for spec in specs:
            run_latency(dataclasses.replace(spec, count=LATENCY_WARMUP_REQUESTS))
    rounds = {spec.label: [] for spec in specs}
    for round_number in range(1, config.rounds + 1):
        for spec in specs:
            measured = run_latency(spec)
            rounds[spec.label].append(measured)
            logger.info("round %d 1-client %-36s p50 %7.3f ms  p99 %7.3f ms  errors %d", round_number, spec.label,
                        measured.p50_ms or 0, measured.p99_ms or 0, measured.errors)
    return [summarize_rounds(results) for results in rounds.values()]


def _median_rps(comparison, label):
    runs = comparison.runs.get(label)
    return round(statistics.median(run.requests_per_second for run in runs), 1) if runs else None


def _is_flagged(comparison, label):
    return bool(comparison.preflight.get(label)) or any(run.problems for run in comparison.runs.get(label, ()))


def perf_figures(write, read, latency, badkv, syncobj):
    """({figure name: value}, flagged figure names) for bench/targets.py."""
    rows = {
        goals.BARE_POST: (write, write.baseline), goals.BARE_GET: (read, read.baseline),
        goals.LEADER_POST: (write, badkv.leader.label), goals.FOLLOWER_POST: (write, badkv.follower.label),
        goals.FOLLOWER_LOCAL_GET: (read, badkv.follower.label),
        goals.LEADER_LINEARIZABLE_GET: (read, badkv.leader_linearizable.label),
        goals.FOLLOWER_LINEARIZABLE_GET: (read, badkv.follower_linearizable.label),
        goals.SYNCOBJ_POST: (write, syncobj.label if syncobj else None),
    }
    figures, flagged = {}, set()
    for name, (comparison, label) in rows.items():
        figures[name] = _median_rps(comparison, label)
        if figures[name] is not None and _is_flagged(comparison, label):
            flagged.add(name)
    by_label = {entry["label"]: entry for entry in latency}
    for name in (goals.ONE_CLIENT_POST, goals.ONE_CLIENT_LINEARIZABLE_GET, goals.ETCD_ONE_CLIENT_PUT):
        entry = by_label.get(name.removesuffix(" p50"))
        figures[name] = entry["p50_ms"] if entry else None
        if entry and entry["errors"]:
            flagged.add(name)
    return figures, sorted(flagged)


def latency_notes(latency):
    lines = ["1 client, one keep-alive connection (http.client), sequential; median of the rounds:"]
    for entry in latency:
        errors = f", {entry['errors']} errors: FLAGGED" if entry["errors"] else ""
        lines.append(f"  {entry['label']}: p50 {entry['p50_ms']:.3f} ms, p99 {entry['p99_ms']:.3f} ms "
                     f"({entry['requests_per_round']} requests x {entry['rounds']} rounds; client CPU "
                     f"{entry['client_cpu_us_per_request']:.0f} us per request{errors})")
    return lines


def chart_data(write, read, latency):
    """What bench/chart.py draws: each wrk row's median and ratio to bare, and the latency percentiles."""
    throughput = []
    for group, comparison in (("POST", write), ("GET", read)):
        baseline = _median_rps(comparison, comparison.baseline)
        for label in comparison.runs:
            median = _median_rps(comparison, label)
            throughput.append({"group": group, "label": label, "median_rps": median,
                               "ratio": round(median / baseline, 3) if baseline and median is not None else None})
    return {"throughput": throughput,
            "latency": [{key: entry[key] for key in ("label", "p50_ms", "p99_ms")} for entry in latency]}
