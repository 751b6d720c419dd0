"""The `security` scenario: what tenant auth and TLS cost one badkv node, measured in one run.

Three single in-memory nodes from --badkv-cmd run side by side, with the same threads:

- `auth off`: plain HTTP, no tokens: the baseline;
- `auth on`: `-auth on -admin-token-file F`; the tenant `bench` is created through
  `POST /admin/tenants/bench` with the admin token, and wrk sends that tenant's bearer token;
- `https`: auth off, HTTPS with `-cert-file -key-file -ca-file` from a CA made with
  badkv.security.pki in a temp folder (wrk keeps its TLS connections alive, like its HTTP ones).

GET runs on all three, POST on the first two, alternated within each round and in reverse order
every second round (a mirrored comparison in measure.py), so drift of a shared machine hits every
side alike. The notes give auth on / auth off for GET and POST
(goal >= 0.90) and https / auth off for GET (goal >= 0.70): the ratio of the medians, and the
spread of the per-round ratios (each round's runs are neighbours in time), and each node's CPU time
per request (bench/cpu.py), which other work on the machine moves far less than requests per second.
"""

import dataclasses
import secrets
import statistics
import tempfile
from pathlib import Path

import requests

from badkv.security import pki
from bench.cpu import CpuMeter
from bench.measure import REQUEST_TIMEOUT_SECONDS, TENANT, Comparison, Target, measure, preload
from bench.scenarios import ScenarioResult, badkv_spec, ratio_summary
from bench.servers import LOOPBACK, ServerStartError, free_ports, one_line

AUTH_OFF, AUTH_ON, HTTPS = "auth off", "auth on", "https"
METHODS = {"read": "GET", "write": "POST"}
AUTH_GOAL = 0.90
TLS_GOAL = 0.70
# (summary key, workload, numerator, denominator, goal): the figures issue 11 asks for.
GOALS = (
    ("auth_over_plain_get", "read", AUTH_ON, AUTH_OFF, AUTH_GOAL),
    ("auth_over_plain_post", "write", AUTH_ON, AUTH_OFF, AUTH_GOAL),
    ("https_over_http_get", "read", HTTPS, AUTH_OFF, TLS_GOAL),
)


def bearer(token):
    return f"Bearer {token}"


def auth_argv(argv, admin_token_file):
    """A node's argv with tenant auth on."""
    return tuple(argv) + ("-auth", "on", "-admin-token-file", str(admin_token_file))


def tls_argv(argv, certificate, key, ca_file):
    """A node's argv serving HTTPS with its certificate, its key and the CA."""
    return tuple(argv) + ("-cert-file", str(certificate), "-key-file", str(key), "-ca-file", str(ca_file))


def round_ratios(comparison, numerator, denominator):
    """numerator / denominator per round, pairing the runs of the same round (None where the
    denominator made no requests)."""
    pairs = zip(comparison.runs[numerator], comparison.runs[denominator])
    return [round(top.requests_per_second / bottom.requests_per_second, 3) if bottom.requests_per_second else None
            for top, bottom in pairs]


def goal_summary(comparison, numerator, denominator, goal):
    """(summary dict, note): ratio_summary's ratio of medians and verdict, plus the per-round spread."""
    summary, note = ratio_summary(comparison, numerator, denominator, target=goal)
    per_round = round_ratios(comparison, numerator, denominator)
    known = [ratio for ratio in per_round if ratio is not None]
    summary["round_ratios"] = per_round
    if known:
        summary["round_ratio_min"], summary["round_ratio_max"] = min(known), max(known)
        summary["round_ratio_median"] = round(statistics.median(known), 3)
        note += (f"; per round {', '.join(f'{ratio:.2f}' for ratio in known)} "
                 f"(median {summary['round_ratio_median']:.2f}, range {min(known):.2f}-{max(known):.2f})")
    return summary, f"{METHODS[comparison.workload]}: {note}"


def create_tenant(base_url, admin_token, tenant=TENANT):
    """The new tenant's token from POST /admin/tenants/{tenant}; raise RuntimeError if refused."""
    response = requests.post(f"{base_url}/admin/tenants/{tenant}", headers={"Authorization": bearer(admin_token)},
                             timeout=REQUEST_TIMEOUT_SECONDS)
    if response.status_code != 201:
        raise RuntimeError(f"creating tenant {tenant} returned HTTP {response.status_code}: {response.text[:200]}")
    return response.json()["token"]


def _write_admin_token(folder):
    """A fresh admin token, in `folder`/admin.token (mode 0600); returns (path, token)."""
    path, token = Path(folder) / "admin.token", secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return path, token


def _specs(config, folder, ports):
    """The three nodes' ServerSpecs and the admin token; its file and the certificates go in `folder`."""
    token_file, admin_token = _write_admin_token(folder)
    plain = badkv_spec(config, "plain1", ports[0])
    auth = badkv_spec(config, "auth1", ports[1])
    auth = dataclasses.replace(auth, argv=auth_argv(auth.argv, token_file))
    ca = pki.create_ca(folder)
    issued = pki.issue(folder, "tls1", [LOOPBACK])
    tls = badkv_spec(config, "tls1", ports[2])
    tls = dataclasses.replace(tls, argv=tls_argv(tls.argv, issued.certificate, issued.key, ca.certificate),
                              scheme="https", ca_file=str(ca.certificate))
    return (plain, auth, tls), admin_token


def run(context):
    """Start the three nodes, create the tenant, measure GET and POST in alternation, add the ratios."""
    config = context.config
    result = ScenarioResult(name="security")
    with tempfile.TemporaryDirectory(prefix="badkv-bench-security-") as folder:
        specs, admin_token = _specs(config, folder, free_ports(3))
        with context.pool(result.name) as pool:
            try:
                servers = pool.start(list(specs))
            except ServerStartError as error:
                result.skipped = f"a node did not start: {one_line(error)}"
                return result
            try:
                tenant_token = create_tenant(specs[1].base_url, admin_token)
            except (RuntimeError, requests.RequestException, ValueError, KeyError) as error:
                result.skipped = f"auth on: {one_line(error)}"
                return result
            plain = Target(AUTH_OFF, specs[0].base_url)
            auth = Target(AUTH_ON, specs[1].base_url, authorization=bearer(tenant_token))
            https = Target(HTTPS, specs[2].base_url, ca_file=specs[2].ca_file)
            preload([plain, auth, https])
            result.notes.append(f"{AUTH_ON}: -auth on, tenant {TENANT} created through POST /admin/tenants/{TENANT}, "
                                f"wrk sends its bearer token; {HTTPS}: auth off, TLS with a P-256 certificate "
                                "from badkv.security.pki, keep-alive connections")
            comparisons, meter = _measure(context, (plain, auth, https), servers)
    result.comparisons.extend(comparisons.values())
    _add_figures(result, comparisons, meter, config.rounds)
    return result


def _measure(context, targets, servers):
    """GET on all three targets, POST on the first two, mirrored rounds, each node's CPU metered."""
    plain, auth, https = targets
    meter = CpuMeter(context.load, {target.base_url: (target.label, server.pid)
                                    for target, server in zip(targets, servers)})
    comparisons = {
        "read": measure(Comparison("read", (plain, auth, https), mirrored=True), context.config, meter),
        "write": measure(Comparison("write", (plain, auth), mirrored=True), context.config, meter),
    }
    return comparisons, meter


def _add_figures(result, comparisons, meter, rounds):
    """The goals' ratios and the CPU per request, as notes and in the summary."""
    for key, workload, numerator, denominator, goal in GOALS:
        summary, note = goal_summary(comparisons[workload], numerator, denominator, goal)
        result.summary[key] = summary
        result.notes.append(note)
    result.summary["server_cpu_us_per_request"] = cpu = cpu_figures(meter, comparisons, rounds)
    result.notes.append("server CPU per request (median of the rounds, from /proc): " + "; ".join(
        f"{METHODS[workload]} " + ", ".join(f"{label} {us} us" for label, us in figures.items())
        for workload, figures in cpu.items()))


def cpu_figures(meter, comparisons, rounds):
    """{workload: {label: median server CPU us per request}} for every target measured."""
    scripts = {"read": "read.lua", "write": "write.lua"}
    return {workload: {label: meter.median_us(scripts[workload], label, rounds) for label in comparison.runs}
            for workload, comparison in comparisons.items()}
