"""``badkvctl check``: a short linearizability self-check a user runs against their own cluster.

It runs the fault suite's recorded workload (``badkv.testing.workload``: writes,
deletes, compare-and-set and reads from several clients, each request to a random
endpoint) with no faults, in a fresh tenant of its own, judges the history with the
fault suite's checker, and removes what it wrote: with a token (a cluster with
``-auth on``) it drops the tenant through the admin API, otherwise it deletes its keys.
Exit status: 0 linearizable, 1 not linearizable, 2 the check could not run.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass
from typing import Callable

from badkv.client import Client, ClientError
from badkv.testing.checker import check_linearizable, check_local_reads
from badkv.testing.history import Operation, save_history
from badkv.testing.pairs import pair_keys
from badkv.testing.workload import Workload

EXIT_LINEARIZABLE, EXIT_NOT_LINEARIZABLE, EXIT_COULD_NOT_RUN = 0, 1, 2
KEYS = 5
CHECK_SECONDS = 120.0  # the checker's own deadline; past it there is no verdict (exit 2)
PREFLIGHT_KEY = "preflight"


@dataclass
class Verdict:
    """What the checker concluded: ok is None when it reached no verdict in time."""

    ok: bool | None
    operations: int  # operations the linearizability search judged
    sent: int
    answered: int
    unknown: int
    reason: str


def check_tenant() -> str:
    """A fresh tenant name: tenants starting with ``_`` are the system's and refuse client writes."""
    return f"check-{secrets.token_hex(6)}"


def judge(history: list[Operation], deadline_s: float = CHECK_SECONDS) -> Verdict:
    """The verdict on a history: every key linearizable, and local reads within their promise."""
    result = check_linearizable(history, deadline_s)
    answered = sum(1 for op in history if op.status == "ok")
    unknown = sum(1 for op in history if op.is_open)
    reason = result.reason
    ok = result.ok
    if ok:
        problems = check_local_reads(history)
        if problems:
            ok, reason = False, f"{len(problems)} local reads broke their promise; the first: {problems[0]}"
    return Verdict(ok, result.ops_checked, len(history), answered, unknown, reason)


def add_check_command(commands) -> None:
    """Add ``check`` to badkvctl's subparsers."""
    check = commands.add_parser("check", help="run a short linearizability self-check against the cluster "
                                "(a tenant of its own, removed at the end); exit 0 linearizable, 1 not, 2 could not run")
    check.add_argument("--endpoints", required=True, metavar="URL,...", help="every node to send requests to")
    check.add_argument("--seconds", type=float, default=10.0, help="how long the workload runs (default 10)")
    check.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    check.add_argument("--admin-token", help="the admin token, for a cluster with -auth on (default: --token); "
                       "the check then drops its tenant at the end")
    check.add_argument("--history", metavar="FILE", help="also save the recorded history here (JSON lines)")


class SelfCheck:
    """One run: preflight, workload, verdict, cleanup; ``report`` prints a line at each step."""

    def __init__(self, args: argparse.Namespace, report: Callable[[str], None] = print,
                 workload: type = Workload):
        self.endpoints = [url.strip().rstrip("/") for url in args.endpoints.split(",") if url.strip()]
        self.seconds, self.clients = args.seconds, args.clients
        self.token = args.admin_token or args.token
        self.history_file = args.history
        self.report = report
        self.workload = workload
        self.tenant = check_tenant()
        self.names = [PREFLIGHT_KEY]  # the keys it may have written, to delete at the end
        cert = ((args.cert_file, args.key_file) if args.key_file else args.cert_file) if args.cert_file else None
        self.session_options = {"verify": args.ca_file or True, "cert": cert}
        if self.token:
            self.session_options["headers"] = {"Authorization": f"Bearer {self.token}"}
        self.client = Client(self.endpoints[0] if self.endpoints else "", timeout=args.timeout,
                             ca_file=args.ca_file, cert=cert, token=self.token)

    def run(self) -> int:
        if not self.endpoints or self.seconds <= 0 or self.clients < 1:
            self.report("check: could not run: give --endpoints, --seconds > 0 and --clients >= 1")
            return EXIT_COULD_NOT_RUN
        self.report(f"check: tenant {self.tenant}, {len(self.endpoints)} endpoints, {self.clients} clients, "
                    f"{self.seconds:g} s")
        try:
            self.client.put(self.tenant, PREFLIGHT_KEY, b"")  # a refusal (401, 403, 503) stops it here
        except ClientError as error:
            self.report(f"check: could not run: a first write to {self.endpoints[0]} failed: {error.code}: "
                        f"{error.message}")
            return EXIT_COULD_NOT_RUN
        try:
            verdict = self._run_workload()
        finally:
            self._clean_up()
        return self._conclude(verdict)

    def _run_workload(self) -> Verdict:
        workload = self.workload({url: url for url in self.endpoints}, keys=KEYS, processes=self.clients,
                                 seed=secrets.randbits(32), client_timeout=2.0, tenant=self.tenant,
                                 session_options=self.session_options)
        # (Single keys, and the pairs of keys that transactions write together.)
        self.names = [PREFLIGHT_KEY, *workload.keys, *(name for pair in workload.pairs for name in pair_keys(pair))]
        history = workload.run(self.seconds)
        if self.history_file:
            save_history(self.history_file, history)
        return judge(history)

    def _conclude(self, verdict: Verdict) -> int:
        counts = (f"{verdict.operations} operations checked ({verdict.sent} sent: {verdict.answered} answered, "
                  f"{verdict.unknown} without a sure answer)")
        if verdict.ok is None:
            self.report(f"check: could not run: no verdict: {verdict.reason}")
            return EXIT_COULD_NOT_RUN
        if verdict.answered == 0:
            self.report(f"check: could not run: no request was answered; {counts}")
            return EXIT_COULD_NOT_RUN
        if not verdict.ok:
            self.report(f"NOT linearizable: {counts}; {verdict.reason}")
            return EXIT_NOT_LINEARIZABLE
        self.report(f"linearizable: {counts}")
        return EXIT_LINEARIZABLE

    def _clean_up(self) -> None:
        """Drop the tenant with a token (auth on), else delete each key the workload may have written."""
        if self.token:
            try:
                self.client.tenant_drop(self.tenant)
                self.report(f"check: tenant {self.tenant} dropped")
                return
            except ClientError as error:
                self.report(f"check: dropping tenant {self.tenant} failed ({error.code}); deleting its keys")
        left = []
        for name in self.names:
            try:
                self.client.delete(self.tenant, name)
            except ClientError as error:
                if error.status != 404:
                    left.append(f"{name} ({error.code})")
        self.report(f"check: deleted the keys of tenant {self.tenant}" if not left else
                    f"check: could not delete {', '.join(left)} of tenant {self.tenant}")


def run_check(args: argparse.Namespace) -> int:
    return SelfCheck(args).run()
