import pytest

from bench import targets
from bench.targets import GOALS, Goal, judge, judge_all, verdict_line

AT_LEAST = Goal("post", targets.LEADER_POST, targets.BARE_POST, 0.7, at_least=True)
AT_MOST = Goal("p50", targets.ONE_CLIENT_POST, "", 1.5, at_least=False, unit="ms")


@pytest.mark.parametrize("leader, met", [(700.0, True), (699.0, False), (900.0, True)])
def test_a_ratio_goal_is_met_from_its_bound_up(leader, met):
    verdict = judge(AT_LEAST, {targets.LEADER_POST: leader, targets.BARE_POST: 1000.0})
    assert verdict["met"] is met
    assert verdict["verdict"] == ("met" if met else "NOT met")
    assert verdict["value"] == round(leader / 1000.0, 3)


@pytest.mark.parametrize("p50, met", [(1.5, True), (1.51, False), (0.4, True)])
def test_a_latency_goal_is_met_at_or_under_its_bound(p50, met):
    assert judge(AT_MOST, {targets.ONE_CLIENT_POST: p50})["met"] is met


def test_a_missing_figure_gives_no_verdict_rather_than_a_wrong_one():
    verdict = judge(AT_LEAST, {targets.LEADER_POST: 700.0, targets.BARE_POST: None})
    assert verdict["met"] is None and verdict["verdict"] == "n/a (bare POST not measured)"
    assert "n/a" in verdict_line(verdict)
    assert judge(AT_LEAST, {targets.LEADER_POST: 700.0, targets.BARE_POST: 0.0})["met"] is None


def test_a_goal_on_a_flagged_row_says_so():
    verdict = judge(AT_LEAST, {targets.LEADER_POST: 800.0, targets.BARE_POST: 1000.0}, flagged=[targets.BARE_POST])
    assert verdict["met"] is True and "FLAGGED: errors on bare POST" in verdict["verdict"]


def test_verdict_lines_name_the_goal_the_value_and_the_unit():
    assert verdict_line(judge(AT_LEAST, {targets.LEADER_POST: 520.0, targets.BARE_POST: 1000.0})) == (
        "badkv POST via the leader / bare POST >= 0.7x: 0.52x NOT met")
    assert verdict_line(judge(AT_MOST, {targets.ONE_CLIENT_POST: 5.4})) == (
        "badkv 1-client POST p50 <= 1.5 ms: 5.40 ms NOT met")


def test_the_goals_are_issue_12s():
    bounds = {goal.key: (goal.bound, goal.at_least) for goal in GOALS}
    assert bounds == {
        "leader_post_over_bare": (0.7, True), "follower_post_over_bare": (0.5, True),
        "follower_local_get_over_bare": (0.95, True), "leader_linearizable_get_over_bare": (0.6, True),
        "follower_linearizable_get_over_bare": (0.5, True), "one_client_post_p50": (1.5, False),
        "one_client_post_over_etcd": (4.0, False), "one_client_linearizable_get_p50": (1.2, False),
        "leader_post_over_pysyncobj": (5.0, True),
    }
    # The 1-client POST against etcd's: 5.4 ms against 0.41 ms (the issue's figures) is 13x, not met.
    verdicts = {v["key"]: v for v in judge_all({targets.ONE_CLIENT_POST: 5.4, targets.ETCD_ONE_CLIENT_PUT: 0.41})}
    assert verdicts["one_client_post_over_etcd"]["met"] is False
    assert verdicts["leader_post_over_bare"]["met"] is None
