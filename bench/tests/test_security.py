from types import SimpleNamespace

from bench.config import config_from_args
from bench.loadgen import AUTHORIZATION_VARIABLE, LoadResult, LoadSpec, wrk_environment
from bench.measure import ComparisonResult, Target, load_spec
from bench.scenarios import SCENARIOS
from bench.security import AUTH_OFF, AUTH_ON, HTTPS, auth_argv, goal_summary, round_ratios, tls_argv
from bench.servers import ServerSpec


def run(rate, non_2xx=0):
    return LoadResult(requests=int(rate), duration_s=1.0, requests_per_second=rate,
                      latency_ms={"mean": 1.0, "p99": 2.0}, non_2xx=non_2xx,
                      socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0})


def comparison(workload="read", off=(1000.0, 1200.0, 1100.0), on=(950.0, 1000.0, 1050.0), https=None):
    runs = {AUTH_OFF: [run(rate) for rate in off], AUTH_ON: [run(rate) for rate in on]}
    if https:
        runs[HTTPS] = [run(rate) for rate in https]
    return ComparisonResult(workload, AUTH_OFF, runs=runs)


def test_security_is_selectable_but_not_default():
    assert "security" in SCENARIOS
    assert config_from_args(["--scenarios", "security"]).scenarios == ("security",)
    assert "security" not in config_from_args([]).scenarios


def test_node_flags_for_auth_and_tls_are_appended():
    base = ("badkv", "-name", "n", "-in-memory")
    assert auth_argv(base, "/t/admin.token") == base + ("-auth", "on", "-admin-token-file", "/t/admin.token")
    assert tls_argv(base, "/t/n.crt", "/t/n.key", "/t/ca.crt")[len(base):] == (
        "-cert-file", "/t/n.crt", "-key-file", "/t/n.key", "-ca-file", "/t/ca.crt")


def test_round_ratios_pair_the_runs_of_each_round():
    assert round_ratios(comparison(), AUTH_ON, AUTH_OFF) == [0.95, 0.833, 0.955]
    zero = comparison(off=(0.0, 100.0), on=(50.0, 50.0))
    assert round_ratios(zero, AUTH_ON, AUTH_OFF) == [None, 0.5]


def test_goal_summary_takes_the_ratio_of_medians_and_the_per_round_spread():
    summary, note = goal_summary(comparison(), AUTH_ON, AUTH_OFF, 0.90)
    assert summary["ratio"] == round(1000.0 / 1100.0, 3)  # medians 1000 / 1100, not a mean of ratios
    assert summary["target_met"] is True
    assert (summary["round_ratio_min"], summary["round_ratio_max"]) == (0.833, 0.955)
    assert summary["round_ratio_median"] == 0.95
    assert note.startswith("GET: auth on / auth off") and "target >= 0.90: met" in note
    assert "range 0.83-0.95" in note


def test_goal_summary_says_not_met_below_the_goal():
    summary, note = goal_summary(comparison("write", on=(800.0, 850.0, 900.0)), AUTH_ON, AUTH_OFF, 0.90)
    assert summary["target_met"] is False
    assert note.startswith("POST:") and "NOT met" in note


def test_https_over_http_uses_the_https_runs():
    summary, _ = goal_summary(comparison(https=(700.0, 800.0, 900.0)), HTTPS, AUTH_OFF, 0.70)
    assert summary["ratio"] == round(800.0 / 1100.0, 3)
    assert summary["target_met"] is True


def test_the_token_reaches_wrk_through_its_environment_not_its_argv():
    config = SimpleNamespace(connections=32, wrk_threads=2)
    target = Target(AUTH_ON, "http://127.0.0.1:1", authorization="Bearer secret-token")
    for workload in ("read", "write"):
        spec = load_spec(workload, target, config, 10)
        assert wrk_environment(spec)[AUTHORIZATION_VARIABLE] == "Bearer secret-token"
        assert "secret-token" not in " ".join(spec.script_args) + spec.url
    plain = load_spec("read", Target(AUTH_OFF, "http://127.0.0.1:1"), config, 10)
    assert AUTHORIZATION_VARIABLE not in wrk_environment(plain)
    assert "secret-token" not in repr(LoadSpec("u", "read.lua", authorization="Bearer secret-token"))


def test_targets_and_servers_on_https_check_the_ca():
    https = Target(HTTPS, "https://127.0.0.1:1", ca_file="/t/ca.crt")
    assert https.request_options == {"verify": "/t/ca.crt"}
    auth = Target(AUTH_ON, "http://127.0.0.1:1", authorization="Bearer x")
    assert auth.request_options == {"verify": True, "headers": {"Authorization": "Bearer x"}}
    spec = ServerSpec("tls1", ("badkv",), 4443, scheme="https", ca_file="/t/ca.crt")
    assert spec.base_url == "https://127.0.0.1:4443"
    assert ServerSpec("plain1", ("badkv",), 80).base_url == "http://127.0.0.1:80"
