"""Issue 12's performance targets, and the judgement of a run's figures against them.

A run of the `perf` scenario reduces to named figures (median requests/s of a
wrk row, p50 of a single-client latency); each `Goal` is a ratio of two
figures (or one figure) with a bound it must reach (`at_least`) or stay under.
`judge` returns met / NOT met, or n/a when a figure is missing (e.g. etcd was
not installed); a goal resting on a flagged row (errors in some run) says so.
"""

from dataclasses import dataclass

# Figure names: the perf scenario fills these in (bench/perf.py).
BARE_POST, BARE_GET = "bare POST", "bare GET"
LEADER_POST, FOLLOWER_POST = "badkv POST via the leader", "badkv POST via a follower"
FOLLOWER_LOCAL_GET = "badkv local GET on a follower"
LEADER_LINEARIZABLE_GET = "badkv linearizable GET on the leader"
FOLLOWER_LINEARIZABLE_GET = "badkv linearizable GET via a follower"
SYNCOBJ_POST = "PySyncObj POST via the leader"
ONE_CLIENT_POST = "badkv 1-client POST p50"
ONE_CLIENT_LINEARIZABLE_GET = "badkv 1-client linearizable GET p50"
ETCD_ONE_CLIENT_PUT = "etcd 1-client PUT p50"


@dataclass(frozen=True)
class Goal:
    """numerator / denominator (or numerator alone) must be >= bound (at_least) or <= bound."""

    key: str
    numerator: str
    denominator: str
    bound: float
    at_least: bool
    unit: str = "x"  # "x": a ratio; "ms": a latency

    def describe(self):
        what = self.numerator if not self.denominator else f"{self.numerator} / {self.denominator}"
        sign = ">=" if self.at_least else "<="
        bound = f"{self.bound:g} ms" if self.unit == "ms" else f"{self.bound:g}x"
        return f"{what} {sign} {bound}"


GOALS = (
    Goal("leader_post_over_bare", LEADER_POST, BARE_POST, 0.7, at_least=True),
    Goal("follower_post_over_bare", FOLLOWER_POST, BARE_POST, 0.5, at_least=True),
    Goal("follower_local_get_over_bare", FOLLOWER_LOCAL_GET, BARE_GET, 0.95, at_least=True),
    Goal("leader_linearizable_get_over_bare", LEADER_LINEARIZABLE_GET, BARE_GET, 0.6, at_least=True),
    Goal("follower_linearizable_get_over_bare", FOLLOWER_LINEARIZABLE_GET, BARE_GET, 0.5, at_least=True),
    Goal("one_client_post_p50", ONE_CLIENT_POST, "", 1.5, at_least=False, unit="ms"),
    Goal("one_client_post_over_etcd", ONE_CLIENT_POST, ETCD_ONE_CLIENT_PUT, 4.0, at_least=False),
    Goal("one_client_linearizable_get_p50", ONE_CLIENT_LINEARIZABLE_GET, "", 1.2, at_least=False, unit="ms"),
    Goal("leader_post_over_pysyncobj", LEADER_POST, SYNCOBJ_POST, 5.0, at_least=True),
)


def judge(goal, figures, flagged=()):
    """A JSON-ready verdict of `goal` on `figures` ({name: value}); `flagged`: figure names with errors."""
    names = [name for name in (goal.numerator, goal.denominator) if name]
    missing = [name for name in names if figures.get(name) is None]
    verdict = {"key": goal.key, "goal": goal.describe(), "bound": goal.bound, "value": None, "met": None,
               "flagged": [name for name in names if name in flagged]}
    if missing:
        verdict["verdict"] = f"n/a ({', '.join(missing)} not measured)"
        return verdict
    value = figures[goal.numerator]
    if goal.denominator:
        if not figures[goal.denominator]:
            verdict["verdict"] = f"n/a ({goal.denominator} is 0)"
            return verdict
        value = value / figures[goal.denominator]
    met = value >= goal.bound if goal.at_least else value <= goal.bound
    verdict.update(value=round(value, 3), met=met, verdict="met" if met else "NOT met")
    if verdict["flagged"]:
        verdict["verdict"] += f" (FLAGGED: errors on {', '.join(verdict['flagged'])})"
    return verdict


def verdict_line(verdict):
    """One line of the report, e.g. "badkv POST via the leader / bare POST >= 0.7x: 0.52x NOT met"."""
    if verdict["value"] is None:
        return f"{verdict['goal']}: {verdict['verdict']}"
    unit = " ms" if verdict["goal"].endswith(" ms") else "x"
    return f"{verdict['goal']}: {verdict['value']:.2f}{unit} {verdict['verdict']}"


def judge_all(figures, flagged=(), goals=GOALS):
    return [judge(goal, figures, flagged) for goal in goals]
