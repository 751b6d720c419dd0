"""Recovery benchmark: how fast a badkv node restarts from a big data dir, and how much memory it takes.

    .venv/bin/python bench/recovery.py [--keys 1000000] [--log-entries 100000] [--keep]

1. Builds a data dir for a single node `rec1` in a temp folder on the real disk
   (default under /var/tmp), directly through badkv's write-ahead log, not over
   HTTP: a snapshot of `--keys` records (100-byte values) and `--log-entries`
   put entries after it, each on a new key.
2. Starts `.venv/bin/badkv -name rec1 -listen 127.0.0.1:<free port> -data-dir <dir>`
   in its own process group and measures:
   - the wall time from spawn to the first 200 on /admin/health. The `badkv`
     command first checks the data dir in a child process (it reads and checks
     every frame and record but builds no store), then gunicorn's worker
     recovers it, so this time holds the check, the recovery, and interpreter
     and gunicorn start-up;
   - the worker's own recovery time, `storage.recovery_seconds` of /admin/stats
     (the check's time is read from its log line);
   - the worker's peak and current RSS (VmHWM, VmRSS of /proc/<pid>/status), at
     readiness and again after the node settled (when the log after the snapshot
     reaches -snapshot-entries, the node writes a new snapshot right after
     starting; the script waits for it);
   - that /admin/stats counts keys == keys + log entries.
3. Stops the server with SIGTERM to its process group, prints a report, writes
   bench/results/recovery-<stamp>.json (the server's output goes to
   bench/results/recovery-<stamp>-logs/), and removes the data dir unless --keep.
"""

import argparse
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # so "bench" imports when run as a script

import requests  # noqa: E402

from badkv.config import Config  # noqa: E402
from badkv.records import Record  # noqa: E402
from badkv.storage.wal import WriteAheadLog  # noqa: E402
from bench.disk import default_data_parent, filesystem_of  # noqa: E402
from bench.servers import LOOPBACK, ServerPool, ServerSpec, free_ports  # noqa: E402

logger = logging.getLogger("bench.recovery")

NODE = "rec1"
TENANT = "bench"
VALUE_BYTES = 100
VALUE = b"v" * VALUE_BYTES
TERM = 1
APPEND_BATCH = 10_000
POLL_SECONDS = 0.05
RECOVERY_TARGET_SECONDS = 10.0
RSS_TARGET_MB = 500.0
TARGET_KEYS = 1_000_000
RECOVERED_LINE = re.compile(r"recovered (\d+) records from a snapshot and (\d+) log entries in ([0-9.]+)s")
CHECKED_LINE = re.compile(r"checked (\d+) snapshot records and (\d+) log entries in ([0-9.]+)s")


class RecoveryBenchError(Exception):
    """The node did not start, or did not report what the benchmark needs."""


# ---- building the data dir ------------------------------------------------------------------


class SnapshotRecords:
    """The snapshot's records as Record.to_dict() dicts, made one at a time.

    Sized (write_snapshot needs the count up front) but lazy, so a million records
    never sit in this process's memory at once. Record i is key f"k{i}" with
    timestamp = revision = i + 1.
    """

    def __init__(self, count, value=VALUE):
        self.count = count
        self.value = value

    def __len__(self):
        return self.count

    def __iter__(self):
        value = self.value
        for i in range(self.count):
            yield Record(TENANT, f"k{i}", value, i + 1, i + 1).to_dict()


def log_entries(first_index, count, first_revision, first_key, term=TERM, value=VALUE):
    """`count` put entries shaped like the ones badkv/node.py proposes, each on a new key.

    Entry j has index first_index + j, key f"k{first_key + j}" and
    timestamp = revision = first_revision + j.
    """
    for j in range(count):
        revision = first_revision + j
        yield {"op": "put", "tenant": TENANT, "name": f"k{first_key + j}", "value": value,
               "timestamp": revision, "revision": revision, "index": first_index + j, "term": term}


def _batches(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def folder_bytes(path):
    path = Path(path)
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file()) if path.is_dir() else 0


def node_config():
    """The Config the node will run with: its name over the BADKV_* environment it inherits."""
    return Config.from_sources({"name": NODE}, environ=os.environ)


def build_data_dir(directory, keys, entries):
    """Write a snapshot of `keys` records and `entries` log entries after it; return timings and sizes."""
    cluster_id = node_config().cluster_id
    wal = WriteAheadLog(directory)
    wal.open(node=NODE, cluster_id=cluster_id)
    try:
        wal.save_state(TERM, None)
        started = time.monotonic()
        wal.write_snapshot(index=keys, term=TERM, revision=keys, records=SnapshotRecords(keys))
        snapshot_seconds = time.monotonic() - started
        started = time.monotonic()
        for batch in _batches(log_entries(keys + 1, entries, keys + 1, keys), APPEND_BATCH):
            wal.append(batch)
            wal.flush_through(batch[-1]["index"])
        log_seconds = time.monotonic() - started
    finally:
        wal.close()
    return {
        "cluster_id": cluster_id,
        "snapshot_seconds": round(snapshot_seconds, 3),
        "log_seconds": round(log_seconds, 3),
        "snapshot_bytes": folder_bytes(Path(directory) / "snap"),
        "wal_bytes": folder_bytes(Path(directory) / "wal"),
    }


# ---- reading /proc and the server's log -----------------------------------------------------


def parse_proc_status(text):
    """/proc/<pid>/status (or smaps_rollup) as a dict: "123 kB" -> 123 (kB), plain integers -> int."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        value = value.strip()
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[key] = int(parts[0])
        elif value.isdigit():
            fields[key] = int(value)
        else:
            fields[key] = value
    return fields


def ppid_from_stat(text):
    """The parent pid from /proc/<pid>/stat (the command name in parentheses may hold spaces)."""
    return int(text[text.rindex(")") + 2:].split()[1])


def children_of(pid, proc_root=Path("/proc")):
    """Pids whose parent is `pid`, found by scanning <proc_root>/*/stat."""
    children = []
    for entry in Path(proc_root).iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if ppid_from_stat((entry / "stat").read_text()) == pid:
                children.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(children)


def memory_of(pid, proc_root=Path("/proc")):
    """VmHWM, VmRSS, RssAnon, RssFile of a process (and Pss when smaps_rollup is readable), in kB; {} if gone."""
    try:
        status = parse_proc_status((Path(proc_root) / str(pid) / "status").read_text())
    except OSError:
        return {}
    memory = {key: status[key] for key in ("VmHWM", "VmRSS", "RssAnon", "RssFile") if isinstance(status.get(key), int)}
    try:
        rollup = parse_proc_status((Path(proc_root) / str(pid) / "smaps_rollup").read_text())
        if isinstance(rollup.get("Pss"), int):
            memory["Pss"] = rollup["Pss"]
    except OSError:
        pass
    return memory


def kb_to_mb(kilobytes):
    """/proc's kB (KiB) in MB (10^6 bytes), the unit of the target."""
    return None if kilobytes is None else round(kilobytes * 1024 / 1e6, 1)


def parse_recovery_lines(text, pattern=RECOVERED_LINE):
    """The "recovered N records ... in Xs" log lines of badkv/storage/recovery.py, in order (or, with
    ``pattern=CHECKED_LINE``, the "checked N snapshot records ..." lines of the data dir check)."""
    return [{"records": int(records), "log_entries": int(entries), "seconds": float(seconds)}
            for records, entries, seconds in pattern.findall(text)]


# ---- running the node -----------------------------------------------------------------------


def wait_for_health(server, started, timeout):
    """Poll /admin/health every POLL_SECONDS; return the seconds from `started` to the first 200."""
    url = server.spec.base_url + server.spec.health_path
    deadline = started + timeout
    while True:
        code = server.popen.poll()
        if code is not None:
            raise RecoveryBenchError(f"badkv exited with code {code} before serving:\n{server.log_tail()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RecoveryBenchError(f"badkv did not answer 200 on {url} within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(POLL_SECONDS)


def get_stats(base_url):
    response = requests.get(base_url + "/admin/stats", timeout=10)
    response.raise_for_status()
    return response.json()


def wait_for_snapshot(base_url, after_index, timeout):
    """Poll /admin/stats until the node wrote a snapshot past `after_index`; return (seconds, stats) or (None, stats)."""
    started = time.monotonic()
    stats = get_stats(base_url)
    while time.monotonic() - started < timeout:
        if (stats.get("storage", {}).get("last_snapshot_index") or 0) > after_index:
            return time.monotonic() - started, stats
        time.sleep(0.2)
        stats = get_stats(base_url)
    return None, stats


def run_node(args, data_dir, log_dir, keys, entries):
    """Start the node on `data_dir`, measure it, stop it; return the measurements."""
    port = free_ports(1)[0]
    argv = (str(args.venv_bin / "badkv"), "-name", NODE, "-listen", f"{LOOPBACK}:{port}", "-data-dir", str(data_dir))
    spec = ServerSpec(label=f"badkv-{NODE}", argv=argv, port=port)
    settings = node_config()
    expect_snapshot = entries + 1 >= settings.snapshot_entries  # + 1: the leader's no-op at start
    with ServerPool(log_dir, REPO_ROOT, args.ready_timeout) as pool:
        started = time.monotonic()
        server = pool.launch(spec)
        ready_seconds = wait_for_health(server, started, args.ready_timeout)
        master_pid = server.pid
        workers = children_of(master_pid)
        if not workers:
            raise RecoveryBenchError(f"no worker process found under the gunicorn master {master_pid}")
        worker_pid = workers[0]
        at_ready = memory_of(worker_pid)
        stats = get_stats(spec.base_url)
        snapshot_seconds = None
        if expect_snapshot:
            snapshot_seconds, final_stats = wait_for_snapshot(spec.base_url, keys, args.settle_timeout)
        else:
            time.sleep(args.settle)
            final_stats = get_stats(spec.base_url)
        settled = memory_of(worker_pid)
        master = memory_of(master_pid)
        log_path = server.log_path
    log_text = Path(log_path).read_text(errors="replace")
    storage = stats.get("storage", {})
    return {
        "command": list(argv),
        "log": str(log_path),
        "master_pid": master_pid,
        "worker_pid": worker_pid,
        "worker_processes": len(workers),
        "seconds_to_health": round(ready_seconds, 3),
        "worker_recovery_seconds": storage.get("recovery_seconds"),
        "recovery_log_lines": parse_recovery_lines(log_text),
        "check_log_lines": parse_recovery_lines(log_text, CHECKED_LINE),
        "worker_timeout_in_log": "WORKER TIMEOUT" in log_text,
        "stats_at_ready": {key: stats.get(key) for key in ("keys", "bytes", "last_index", "applied_index", "term")}
        | {"storage": storage},
        "keys_expected": keys + entries,
        "keys_reported": stats.get("keys"),
        "post_start_snapshot": {
            "expected": expect_snapshot,
            "snapshot_entries": settings.snapshot_entries,
            "seen_after_seconds": None if snapshot_seconds is None else round(snapshot_seconds, 3),
            "last_snapshot_index": final_stats.get("storage", {}).get("last_snapshot_index"),
        },
        "worker_memory_kb": {"at_ready": at_ready, "settled": settled},
        "master_memory_kb": master,
    }


# ---- report ---------------------------------------------------------------------------------


def _mark(value, limit, below=True):
    if value is None:
        return "n/a"
    return "ok" if (value < limit if below else value <= limit) else "MISSED"


def render_report(document):
    settings, build, result = document["settings"], document["build"], document["result"]
    keys, entries = settings["keys"], settings["log_entries"]
    lines = [
        f"recovery of node {NODE}: {keys:,} keys in a snapshot + {entries:,} log entries on new keys, "
        f"{VALUE_BYTES}-byte values",
        f"data dir {settings['data_dir']} on {settings['filesystem']}",
        f"built in {build['snapshot_seconds']:.2f} s (snapshot, {build['snapshot_bytes'] / 1e6:.1f} MB) + "
        f"{build['log_seconds']:.2f} s (log, {build['wal_bytes'] / 1e6:.1f} MB)",
        "",
    ]
    rows = []
    to_health = result["seconds_to_health"]
    worker_recovery = result["worker_recovery_seconds"]
    rows.append(("spawn -> /admin/health 200 (data dir check, then the worker's recovery)", f"{to_health:.2f} s",
                 f"<= {RECOVERY_TARGET_SECONDS:.0f} s", _mark(to_health, RECOVERY_TARGET_SECONDS, below=False)))
    rows.append(("worker recovery (storage.recovery_seconds)",
                 "n/a" if worker_recovery is None else f"{worker_recovery:.2f} s",
                 f"<= {RECOVERY_TARGET_SECONDS:.0f} s", _mark(worker_recovery, RECOVERY_TARGET_SECONDS, below=False)))
    check_lines = result.get("check_log_lines") or []
    if check_lines:
        rows.append(("data dir check before gunicorn starts (its log line)", f"{check_lines[0]['seconds']:.2f} s",
                     "", ""))
    memory = result["worker_memory_kb"]
    for moment in ("at_ready", "settled"):
        hwm = kb_to_mb(memory[moment].get("VmHWM"))
        rss = kb_to_mb(memory[moment].get("VmRSS"))
        pss = kb_to_mb(memory[moment].get("Pss"))
        label = "at ready" if moment == "at_ready" else "settled"
        rows.append((f"worker peak RSS (VmHWM), {label}", "n/a" if hwm is None else f"{hwm:.1f} MB",
                     f"< {RSS_TARGET_MB:.0f} MB", _mark(hwm, RSS_TARGET_MB)))
        rows.append((f"worker RSS now (VmRSS / Pss), {label}",
                     f"{rss} / {pss} MB", "", ""))
    master = result["master_memory_kb"]
    rows.append(("master peak RSS (VmHWM; shares pages with the worker)", f"{kb_to_mb(master.get('VmHWM'))} MB", "", ""))
    keys_ok = result["keys_reported"] == result["keys_expected"]
    rows.append(("keys in /admin/stats", f"{result['keys_reported']:,}" if result["keys_reported"] is not None else "n/a",
                 f"== {result['keys_expected']:,}", "ok" if keys_ok else "WRONG"))
    width = max(len(row[0]) for row in rows)
    lines += [f"  {name.ljust(width)}  {value:>12}  {target:<10} {mark}".rstrip() for name, value, target, mark in rows]
    snapshot = result["post_start_snapshot"]
    if snapshot["expected"]:
        seen = snapshot["seen_after_seconds"]
        lines.append(f"  the log reached -snapshot-entries ({snapshot['snapshot_entries']:,}), so the node wrote a "
                     + (f"snapshot {seen:.2f} s after ready; 'settled' includes it" if seen is not None
                        else "snapshot, which did not finish within --settle-timeout"))
    if result["worker_timeout_in_log"]:
        lines.append("  WARNING: gunicorn logged WORKER TIMEOUT: a worker took over 30 s to boot and was killed")
    if keys + entries != TARGET_KEYS:
        lines.append(f"  note: the targets are for {TARGET_KEYS:,} keys; this run has {keys + entries:,}")
    return "\n".join(lines)


# ---- entry point ----------------------------------------------------------------------------


def _git_revision():
    try:
        completed = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                                   capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def _interrupt(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"received signal {signum}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bench/recovery.py",
        description="Time a badkv node's restart from a big data dir and read its memory use (loopback only).",
    )
    parser.add_argument("--keys", type=int, default=TARGET_KEYS, help="records in the snapshot (default %(default)s)")
    parser.add_argument("--log-entries", type=int, default=100_000,
                        help="log entries after the snapshot, each on a new key (default %(default)s)")
    parser.add_argument("--data-parent", type=Path, default=default_data_parent(REPO_ROOT / "bench" / "results"),
                        help="folder for the temp data dir; a real disk, not tmpfs (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (its path is printed)")
    parser.add_argument("--ready-timeout", type=float, default=300.0,
                        help="seconds the node may take to answer /admin/health (default %(default)s)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after ready before reading memory again (default %(default)s)")
    parser.add_argument("--settle-timeout", type=float, default=120.0,
                        help="seconds to wait for the snapshot a node writes after starting (default %(default)s)")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "bench" / "results",
                        help="where the JSON and the server log go (default bench/results)")
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.keys < 1 or args.log_entries < 0:
        logger.error("--keys must be at least 1 and --log-entries at least 0")
        return 2
    args.venv_bin = REPO_ROOT / ".venv" / "bin"
    if not (args.venv_bin / "badkv").exists():
        logger.error("%s not found; create the virtualenv and install badkv first", args.venv_bin / "badkv")
        return 2
    if not args.data_parent.is_dir():
        logger.error("--data-parent %s is not an existing directory", args.data_parent)
        return 2
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.results_dir / f"recovery-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    data_dir = Path(tempfile.mkdtemp(prefix="badkv-recovery-", dir=args.data_parent))
    filesystem = filesystem_of(data_dir)
    try:
        if filesystem and filesystem.in_memory:
            logger.warning("the data dir %s is on %s; recovery from memory flatters the numbers",
                           data_dir, filesystem.fstype)
        logger.info("building %s: %d snapshot records, %d log entries", data_dir, args.keys, args.log_entries)
        build = build_data_dir(data_dir, args.keys, args.log_entries)
        logger.info("built in %.2f s + %.2f s; starting the node", build["snapshot_seconds"], build["log_seconds"])
        result = run_node(args, data_dir, log_dir, args.keys, args.log_entries)
    except KeyboardInterrupt:
        logger.warning("interrupted: the node was stopped; no results file was written")
        return 130
    except (RecoveryBenchError, requests.RequestException) as error:
        logger.error("%s", error)
        return 1
    finally:
        if args.keep:
            logger.info("kept the data dir %s", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    document = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_revision": _git_revision(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min_before": round(load_before, 2),
                    "load_average_1min_after": round(os.getloadavg()[0], 2)},
        "settings": {"keys": args.keys, "log_entries": args.log_entries, "value_bytes": VALUE_BYTES,
                     "data_dir": str(data_dir), "data_dir_kept": args.keep,
                     "filesystem": filesystem.describe() if filesystem else "unknown"},
        "targets": {"recovery_seconds_max": RECOVERY_TARGET_SECONDS, "worker_peak_rss_mb_below": RSS_TARGET_MB,
                    "for_keys": TARGET_KEYS},
        "notes": ["seconds_to_health includes the data dir check (a child of the badkv command reads and checks "
                  "every frame and record before gunicorn starts, building no store) and the worker's recovery",
                  "memory in kB as /proc reports it (KiB); the report prints MB = 10^6 bytes"],
        "build": build,
        "result": result,
    }
    path = args.results_dir / f"recovery-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(render_report(document))
    if (os.cpu_count() or 1) / 2 <= load_before:
        print(f"WARNING: load average was {load_before:.2f} on {os.cpu_count()} CPUs before the run; numbers are noisy")
    print(f"\nresults: {path}\nserver log: {result['log']}")
    return 0 if result["keys_reported"] == result["keys_expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
