"""Server CPU time per request: a figure that the other work on a shared machine moves far less than
requests per second.

A server's CPU time is the user + system time of every process in its process
group (gunicorn's master and worker), read from /proc before and after a wrk
run; divided by the requests wrk completed, it is what one request cost the
server, whatever else competed for the cores meanwhile.
"""

import os
import statistics
from pathlib import Path


def stat_fields(stat_line):
    """(process group, user + system clock ticks) from one /proc/<pid>/stat line."""
    fields = stat_line[stat_line.rindex(")") + 2:].split()  # the name in () may hold spaces
    # after the name: state, ppid, pgrp, ..., utime and stime are fields 14 and 15 of the line
    return int(fields[2]), int(fields[11]) + int(fields[12])


def group_cpu_seconds(pgid, proc=Path("/proc")):
    """User + system CPU seconds of the live processes in process group `pgid`."""
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            group, used = stat_fields((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # it ended while we looked
        if group == pgid:
            ticks += used
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Wraps a load function: for every run on a known server, notes its CPU microseconds per request.

    `servers` maps a base URL to (label, process group id); runs on other URLs pass through.
    """

    def __init__(self, load, servers):
        self.load, self.servers = load, servers
        self.runs = {}  # (workload script, label) -> [us per request, or None without requests]

    def __call__(self, spec):
        server = next(((label, pgid) for url, (label, pgid) in self.servers.items() if spec.url.startswith(url)), None)
        if server is None:
            return self.load(spec)
        before = group_cpu_seconds(server[1])
        result = self.load(spec)
        used = group_cpu_seconds(server[1]) - before
        per_request = used / result.requests * 1e6 if result.requests else None
        self.runs.setdefault((spec.script, server[0]), []).append(per_request)
        return result

    def median_us(self, script, label, rounds):
        """The median CPU us per request of the last `rounds` runs (the rounds, after any warm-up)."""
        values = [us for us in self.runs.get((script, label), [])[-rounds:] if us]
        return round(statistics.median(values), 1) if values else None
