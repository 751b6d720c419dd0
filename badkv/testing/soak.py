"""``make soak``: fault scenarios with random faults and seeds, for as long as asked.

    python -m badkv.testing.soak --minutes 30

Prints one line per run and a summary (runs, operations checked, failures,
recovery times per fault); exits 1 if any run failed. Failing runs keep their
artifacts under test-artifacts/soak/.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from badkv.testing.faults import FAULTS, run_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to keep starting runs (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="seed for choosing faults and workload seeds")
    parser.add_argument("--artifacts", default="test-artifacts/soak")
    parser.add_argument("--report", default=None, help="write the summary as JSON to this file")
    args = parser.parse_args(argv)
    master_seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(master_seed)
    print(f"soak: master seed {master_seed}, {args.minutes:g} minutes", flush=True)
    deadline = time.monotonic() + args.minutes * 60
    results = []
    while time.monotonic() < deadline:
        scenario, seed = rng.choice(sorted(FAULTS)), rng.randrange(2 ** 31)
        with tempfile.TemporaryDirectory(prefix="badkv-soak-") as workdir:
            result = run_scenario(scenario, seed, Path(workdir), duration=rng.uniform(6, 12),
                                  fault_at=rng.uniform(1, 3), fault_for=rng.uniform(1, 4),
                                  artifacts_root=Path(args.artifacts))
        results.append(result)
        print(result.summary(), flush=True)
    summary = summarise(results, master_seed)
    print(json.dumps(summary, indent=2))
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=2))
    return 0 if summary["failed"] == 0 and results else 1


def summarise(results, master_seed: int) -> dict:
    by_fault = defaultdict(list)
    for result in results:
        by_fault[result.scenario].append(result)

    def median(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "master_seed": master_seed, "runs": len(results), "failed": sum(not r.ok for r in results),
        "operations_checked": sum(r.operations for r in results),
        "failures": [r.summary() for r in results if not r.ok],
        "per_fault": {name: {"runs": len(runs), "failed": sum(not r.ok for r in runs),
                             "median_first_ack_after_fault_s": median(r.first_ack_after_fault_s for r in runs),
                             "median_first_ack_after_heal_s": median(r.first_ack_after_heal_s for r in runs),
                             "median_converged_after_s": median(r.converged_after_s for r in runs)}
                      for name, runs in sorted(by_fault.items())},
    }


if __name__ == "__main__":
    sys.exit(main())
