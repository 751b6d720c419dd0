"""What idle watchers cost one node: `.venv/bin/python bench/watchers.py [--watchers 10000]`.

Starts a 3-node in-memory cluster (real ``badkv`` processes on loopback), picks one follower, and in one run:

1. GET throughput of one key on that follower with wrk (``--connections``, ``--seconds``): the baseline;
2. opens ``--watchers`` connections from this one process (plain sockets, each sending one
   ``GET /api/v1/take/{cursor}?tenant=watched&wait=300`` and then idle; a selector reads the answers later),
   and waits until the node's ``/admin/stats`` counts them all as registered watchers;
3. the same GET throughput again while they wait, and the node's worker RSS before and after;
4. one write to the watched tenant, and the time until every watcher has its answer;
5. the GET throughput once more after the watchers are gone.

It prints the figures and the ratio of GET throughput with watchers to the mean of the two runs without
(same run, same node).
Everything stays on 127.0.0.1. The node raises its open-file soft limit to the hard limit at start; this
process does the same, and holds one descriptor per watcher.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from badkv.testing.processes import LocalCluster  # noqa: E402

TENANT = "watched"
ARGS = ["-in-memory", "-heartbeat-interval", "0.1", "-sync-interval", "10"]


def worker_rss_mb(master_pid: int) -> float:
    """The RSS of the node's gunicorn worker (the master's child that holds the data), in MiB."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    pid = int(children[0]) if children else master_pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def get_throughput(url: str, connections: int, seconds: int) -> float:
    """Requests per second of wrk's GET of one key; exits if any answer was not 2xx."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    output = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", url], capture_output=True,
                            text=True, timeout=seconds + 30).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors:\n{output}")
    return parse_requests_per_second(output)


def parse_requests_per_second(output: str) -> float:
    found = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.MULTILINE)
    if not found:
        raise ValueError(f"no Requests/sec line in wrk's output:\n{output}")
    return float(found.group(1))


def open_watchers(port: int, count: int, cursor: int) -> list[socket.socket]:
    request = (f"GET /api/v1/take/{cursor}?tenant={TENANT}&wait=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
    held = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as error:
            print(f"connection {len(held) + 1} refused: {error}", file=sys.stderr)
            break
        sock.sendall(request)
        held.append(sock)
    return held


def registered(url: str) -> int:
    return requests.get(f"{url}/admin/stats", timeout=10).json()["watchers"]


def wait_registered(url: str, count: int, timeout: float) -> int:
    """Wait until the node counts ``count`` watchers (at least ``count``, or at most 0 for none)."""
    deadline = time.monotonic() + timeout
    seen = registered(url)
    while (seen < count if count else seen > 0) and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = registered(url)
    return seen


def read_all_answers(held: list[socket.socket], timeout: float) -> int:
    """Read every watcher's answer (up to its end of headers and a record); return how many answered."""
    selector = selectors.DefaultSelector()
    for sock in held:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())
    answered, deadline = 0, time.monotonic() + timeout
    while answered < len(held) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            data = key.fileobj.recv(65536)
            key.data.extend(data)
            if not data or b'"records":[{' in key.data:
                selector.unregister(key.fileobj)
                answered += bool(data)
    selector.close()
    return answered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run (default 5)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"open-file limit of this process: soft {soft} -> {hard} (hard)")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as logs, LocalCluster(3, Path(logs), extra_args=ARGS) as cluster:
        cluster.wait_ready()
        node = cluster.followers[0]
        leader = cluster.leader.url
        requests.post(f"{leader}/api/v1/keys/bench/k", data=b"v" * 100, timeout=10).raise_for_status()
        get_url = f"{node.url}/api/v1/keys/bench/k"
        get_throughput(get_url, args.connections, 1)  # warm-up
        rss_before = worker_rss_mb(node.process.pid)
        without = get_throughput(get_url, args.connections, args.seconds)
        cursor = requests.get(f"{node.url}/api/v1/take/{2 ** 63 - 1}", timeout=10).json()["revision"] + 1
        started = time.monotonic()
        held = open_watchers(node.port, args.watchers, cursor)
        parked = wait_registered(node.url, len(held), timeout=120)
        opened_s = time.monotonic() - started
        rss_after = worker_rss_mb(node.process.pid)
        with_watchers = get_throughput(get_url, args.connections, args.seconds)
        still = registered(node.url)
        started = time.monotonic()
        requests.post(f"{leader}/api/v1/keys/{TENANT}/k", data=b"wake", timeout=10).raise_for_status()
        answered = read_all_answers(held, timeout=120)
        woken_s = time.monotonic() - started
        for sock in held:
            sock.close()
        wait_registered(node.url, 0, timeout=30)
        without_after = get_throughput(get_url, args.connections, args.seconds)
        baseline = (without + without_after) / 2
        figures = {"watchers_opened": len(held), "watchers_registered": parked, "registered_after_get_run": still,
                   "seconds_to_open_and_park": round(opened_s, 1), "rss_mb_before": round(rss_before, 1),
                   "rss_mb_with_watchers": round(rss_after, 1),
                   "kib_per_watcher": round((rss_after - rss_before) * 1024 / max(1, parked), 2),
                   "get_rps_without_before": without, "get_rps_with": with_watchers,
                   "get_rps_without_after": without_after,
                   "get_ratio_with_to_without": round(with_watchers / baseline, 3),
                   "answered_after_one_write": answered, "seconds_until_all_answered": round(woken_s, 2),
                   "load_average_before_after": [load_before, os.getloadavg()[0]]}
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
