"""Measure workloads on several servers in alternation, so drift hits all of them alike.

A `Comparison` names one workload ("read" or "write") and the targets to run
it on, the first being the baseline. `measure` warms each target up once,
then runs `rounds` rounds, each visiting the targets in order
(bare, badkv, bare, badkv, ...), or in reverse every second round for a
mirrored comparison (bare, badkv, badkv, bare, ...). Loading is injected as a function, so the
round logic can be exercised without wrk or servers.
"""

import logging
from dataclasses import dataclass, field

import requests

from bench.loadgen import LoadSpec

logger = logging.getLogger(__name__)

TENANT = "bench"
READ_KEY = "hot"
KEY_COUNT = 10_000
VALUE_BYTES = 100
VALUE = b"v" * VALUE_BYTES
REQUEST_TIMEOUT_SECONDS = 5
WORKLOADS = {
    "read": f"GET of one existing key ({VALUE_BYTES}-byte value)",
    "write": f"writes of {VALUE_BYTES}-byte values cycling over {KEY_COUNT:,} keys",
}


@dataclass(frozen=True)
class KeyApi:
    """How one kind of server names keys and takes writes (badkv's API or etcd's v2 API)."""

    key_prefix: str
    write_method: str
    write_encoding: str  # "raw": the value is the body; "form": the body is value=<value>
    read_query: str = ""  # appended to a read's URL, e.g. "?consistency=linearizable"

    def read(self, base_url, key, **options):
        """Return the HTTP status of one GET of `key` (redirects are not followed); `options` go to
        requests (headers, verify)."""
        response = requests.get(base_url + self.key_prefix + key + self.read_query, timeout=REQUEST_TIMEOUT_SECONDS,
                                allow_redirects=False, **options)
        return response.status_code

    def write(self, base_url, key, value=VALUE, **options):
        """Return the HTTP status of one write of `value` to `key` (redirects are not followed)."""
        body = value if self.write_encoding == "raw" else {"value": value.decode()}
        response = requests.request(
            self.write_method,
            base_url + self.key_prefix + key,
            data=body,
            timeout=REQUEST_TIMEOUT_SECONDS,
            allow_redirects=False,
            **options,
        )
        return response.status_code


BADKV_API = KeyApi(f"/api/v1/keys/{TENANT}/", "POST", "raw")
BADKV_LINEARIZABLE_API = KeyApi(f"/api/v1/keys/{TENANT}/", "POST", "raw", read_query="?consistency=linearizable")
ETCD_V2_API = KeyApi(f"/v2/keys/{TENANT}/", "PUT", "form")


@dataclass(frozen=True)
class Target:
    """One server endpoint under load, e.g. the bare app or badkv's leader.

    `authorization` is the Authorization header every request carries ("" for none); `ca_file`
    the CA that an HTTPS target's certificate is checked against by the probe and preload.
    """

    label: str
    base_url: str
    api: KeyApi = BADKV_API
    authorization: str = field(default="", repr=False)
    ca_file: str = ""

    @property
    def request_options(self):
        """The keyword arguments for requests that reach this target as wrk does."""
        options = {"verify": self.ca_file or True}
        if self.authorization:
            options["headers"] = {"Authorization": self.authorization}
        return options


@dataclass(frozen=True)
class Comparison:
    """One workload run on several targets; the first target is the baseline.

    `mirrored`: every second round visits the targets in reverse (A B C, C B A, ...), so a drift
    that is steady over a pair of rounds costs every target the same on average.
    """

    workload: str
    targets: tuple
    mirrored: bool = False

    def round_order(self, round_number):
        """The targets in the order round `round_number` (from 1) visits them."""
        if self.mirrored and round_number % 2 == 0:
            return tuple(reversed(self.targets))
        return self.targets


@dataclass
class ComparisonResult:
    """The measured runs of one comparison, keyed by target label in target order."""

    workload: str
    baseline: str
    runs: dict = field(default_factory=dict)
    preflight: dict = field(default_factory=dict)


def load_spec(workload, target, config, duration_s):
    """The wrk run for `workload` on `target`."""
    api = target.api
    if workload == "read":
        return LoadSpec(
            url=target.base_url + api.key_prefix + READ_KEY + api.read_query,
            script="read.lua",
            duration_s=duration_s,
            connections=config.connections,
            threads=config.wrk_threads,
            authorization=target.authorization,
        )
    return LoadSpec(
        url=target.base_url + api.key_prefix,
        script="write.lua",
        script_args=(api.write_method, api.write_encoding, str(KEY_COUNT), str(VALUE_BYTES)),
        duration_s=duration_s,
        connections=config.connections,
        threads=config.wrk_threads,
        authorization=target.authorization,
    )


def probe(workload, target):
    """Send one request shaped like the workload; return a problem sentence, or "" if it got a 2xx."""
    try:
        if workload == "read":
            status = target.api.read(target.base_url, READ_KEY, **target.request_options)
        else:
            status = target.api.write(target.base_url, "k0", **target.request_options)
    except requests.RequestException as error:
        return f"probe request failed: {error}"
    if 200 <= status < 300:
        return ""
    return f"probe got HTTP {status}; wrk does not follow redirects and counts only status >= 400 as errors"


def preload(targets):
    """Store the read key on each target; raise RuntimeError if a target refuses it."""
    for target in targets:
        status = target.api.write(target.base_url, READ_KEY, **target.request_options)
        if not 200 <= status < 300:
            raise RuntimeError(f"preloading {READ_KEY!r} on {target.label} returned HTTP {status}")


def measure(comparison, config, load):
    """Warm up each target, then run the rounds in alternation; return a ComparisonResult."""
    targets = comparison.targets
    result = ComparisonResult(workload=comparison.workload, baseline=targets[0].label)
    for target in targets:
        result.runs[target.label] = []
        result.preflight[target.label] = probe(comparison.workload, target)
        if result.preflight[target.label]:
            logger.warning("%s %s: %s", comparison.workload, target.label, result.preflight[target.label])
    if config.warmup_s:
        for target in targets:
            warmup = load(load_spec(comparison.workload, target, config, config.warmup_s))
            logger.info("warm-up %-6s %-12s %9.1f req/s", comparison.workload, target.label, warmup.requests_per_second)
    for round_number in range(1, config.rounds + 1):
        for target in comparison.round_order(round_number):
            run = load(load_spec(comparison.workload, target, config, config.duration_s))
            result.runs[target.label].append(run)
            logger.info(
                "round %d %-6s %-12s %9.1f req/s  p99 %7.2f ms%s",
                round_number, comparison.workload, target.label, run.requests_per_second,
                run.latency_ms["p99"], "  FLAGGED: " + "; ".join(run.problems) if run.problems else "",
            )
    return result
