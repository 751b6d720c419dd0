"""Tests for badkv.cli: Go-style and GNU-style flags, BADKV_* environment, one-line usage errors."""

import argparse
import dataclasses
import os
import subprocess
import sys

import pytest

from badkv import __version__
from badkv.cli import parse_config
from badkv.config import OPTIONS, Config
from badkv.testing.dns_server import DnsServer

THREE = "n1=127.0.0.1:10001,n2=127.0.0.1:10002,n3=127.0.0.1:10003"

# A valid value for every option and the Config value it becomes; booleans take no value on the command line.
SAMPLES = {
    "name": ("n1", "n1"),
    "listen": ("127.0.0.1:2000", "127.0.0.1:2000"),
    "cluster": (THREE, (("n1", "127.0.0.1:10001"), ("n2", "127.0.0.1:10002"), ("n3", "127.0.0.1:10003"))),
    "cluster_id": ("prod-eu", "prod-eu"),
    "discovery_srv": ("example.test", "example.test"),
    "discovery_dns_server": (None, None),  # the address of the test's DNS server: see the samples fixture
    "join": ("http://127.0.0.1:10001", "http://127.0.0.1:10001"),
    "join_token": ("ab" * 32, "ab" * 32),
    "acks": ("majority", "majority"),
    "threads": ("3", 3),
    "max_value_size": ("2k", 2048),
    "data_dir": ("/srv/badkv", "/srv/badkv"),
    "in_memory": (None, True),
    "write_timeout": ("1.5", 1.5),
    "read_timeout": ("2.5", 2.5),
    "max_read_timeout": ("30", 30.0),
    "isr_timeout": ("4", 4.0),
    "heartbeat_interval": ("0.1", 0.1),
    "election_timeout": ("1.5", 1.5),
    "leader_wait": ("3", 3.0),
    "peer_timeout": ("0.75", 0.75),
    "sync_interval": ("7", 7.0),
    "max_batch_entries": ("10", 10),
    "snapshot_entries": ("20", 20),
    "tombstone_retention": ("1h30m", 5400.0),
    "repair": (None, True),
    "log_level": ("DEBUG", "debug"),
    "log_format": ("json", "json"),
    "cert_file": ("/etc/badkv/n1.crt", "/etc/badkv/n1.crt"),
    "key_file": ("/etc/badkv/n1.key", "/etc/badkv/n1.key"),
    "ca_file": ("/etc/badkv/ca.crt", "/etc/badkv/ca.crt"),
    "cluster_secret_file": ("/etc/badkv/secret", "/etc/badkv/secret"),
    "cluster_secret": ("s3cret", "s3cret"),
    "auth": ("on", True),
    "admin_token_file": ("/etc/badkv/admin-token", "/etc/badkv/admin-token"),
    "tenant_max_keys": ("1000", 1000),
    "tenant_max_bytes": ("1m", 1 << 20),
    "tenant_writes_per_second": ("50", 50.0),
    "tenant_metrics_top": ("5", 5),
}

# Options that are only valid together with another one.
COMPANIONS = {
    "cert_file": ["-key-file", "k", "-ca-file", "c"],
    "key_file": ["-cert-file", "c", "-ca-file", "c"],
    "ca_file": ["-cert-file", "c", "-key-file", "k"],
    "auth": ["-admin-token-file", "t"],
}


@pytest.fixture(scope="module")
def dns_server():
    """The DNS server -discovery-srv example.test asks in these tests: it lists n1 alone."""
    with DnsServer() as server:
        server.srv["_badkv._tcp.example.test"] = [(0, 0, 10001, "n1.example.test")]
        server.a["n1.example.test"] = "127.0.0.1"
        yield server


@pytest.fixture
def samples(dns_server):
    return {**SAMPLES, "discovery_dns_server": (dns_server.address, dns_server.address)}


@pytest.fixture
def companions(dns_server):
    return {**COMPANIONS, "discovery_srv": ["-discovery-dns-server", dns_server.address],
            "discovery_dns_server": ["-discovery-srv", "example.test"]}


def flag_args(option, dashes, samples=SAMPLES):
    text, _ = samples[option.field]
    flag = dashes + option.flag
    return [flag] if text is None else [flag, text]


@pytest.fixture(params=OPTIONS, ids=lambda option: option.field)
def option(request):
    return request.param


def test_every_option_has_a_sample():
    assert set(SAMPLES) == {option.field for option in OPTIONS}


@pytest.mark.parametrize("dashes", ["-", "--"])
def test_every_flag_takes_one_or_two_dashes(option, dashes, samples, companions):
    base = [] if option.field == "name" else ["-name", "n1"]
    config = parse_config(base + companions.get(option.field, []) + flag_args(option, dashes, samples), {})
    assert getattr(config, option.field) == samples[option.field][1]


@pytest.mark.parametrize("dashes", ["-", "--"])
def test_flags_with_equals(dashes):
    config = parse_config([f"{dashes}name=n2", f"{dashes}listen=127.0.0.1:2002", f"{dashes}cluster={THREE}"], {})
    assert (config.name, config.listen, len(config.cluster)) == ("n2", "127.0.0.1:2002", 3)


def test_every_option_has_an_environment_variable(option, samples, companions):
    text, value = samples[option.field]
    environ = {"BADKV_NAME": "n1", option.env: "true" if text is None else text}
    assert getattr(parse_config(companions.get(option.field, []), environ), option.field) == value


def test_flags_override_the_environment():
    config = parse_config(["-listen", "127.0.0.1:2000"],
                          {"BADKV_NAME": "n1", "BADKV_LISTEN": "127.0.0.1:3000", "BADKV_THREADS": "2"})
    assert (config.name, config.listen, config.threads) == ("n1", "127.0.0.1:2000", 2)


def test_a_boolean_flag_left_out_keeps_the_environment_value():
    assert parse_config(["-name", "n1"], {"BADKV_IN_MEMORY": "yes"}).in_memory is True
    assert parse_config(["-name", "n1"], {}).in_memory is False


def _usage_error(capsys, argv, environ=None):
    with pytest.raises(SystemExit) as raised:
        parse_config(argv, environ or {})
    out, err = capsys.readouterr()
    return raised.value.code, out, err


@pytest.mark.parametrize("argv, environ, fragment", [
    pytest.param(["-name", "n1", "-bogus"], None, "unrecognized arguments: -bogus", id="unknown-flag"),
    pytest.param(["-name", "n1", "-listen", "nonsense"], None, "listen address 'nonsense'", id="bad-address"),
    pytest.param([], None, "a node name is required", id="missing-name"),
    pytest.param(["-name"], None, "expected one argument", id="flag-without-value"),
    pytest.param(["-name", "n1", "-cluster", "n1=127.0.0.1:1,n2"], None, "is not of the form name=host:port",
                 id="bad-cluster"),
    pytest.param(["-name", "n9", "-cluster", THREE], None, "not in the cluster list", id="cluster-without-node"),
    pytest.param(["-name", "n1", "-cluster", "n1=127.0.0.1:1,n2=127.0.0.1:2"], None, "1, 3 or 5 members",
                 id="cluster-of-two"),
    pytest.param(["-name", "n1", "-threads", "many"], None, "-threads: 'many' is not a valid N", id="bad-number"),
    pytest.param([], {"BADKV_NAME": "n1", "BADKV_LISTEN": "nowhere"}, "listen address 'nowhere'", id="bad-env"),
    pytest.param(["-name", "n1", "stray"], None, "unrecognized arguments: stray", id="positional"),
    pytest.param(["-name", "n1", "-cluster", THREE, "-discovery-srv", "example.test"], None,
                 "-cluster or -discovery-srv, not both", id="cluster-and-discovery"),
    pytest.param(["-name", "n1", "-discovery-dns-server", "127.0.0.1:53"], None,
                 "only used with -discovery-srv", id="dns-server-without-discovery"),
    pytest.param(["-name", "n1", "-discovery-srv", "example.test", "-discovery-dns-server", "nowhere"], None,
                 "-discovery-dns-server 'nowhere' is not of the form host:port", id="bad-dns-server"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, environ, fragment):
    code, out, err = _usage_error(capsys, argv, environ)
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1
    assert err.startswith("badkv: ")
    assert fragment in err


def test_an_infinite_size_is_a_usage_error(capsys):
    code, _, err = _usage_error(capsys, ["-name", "n1", "-max-value-size", "infk"])
    assert code == 2
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["-nam", "n1"], ["-name", "n1", "-in"], ["-name", "n1", "-lis", "127.0.0.1:2"]])
def test_abbreviated_flags_are_refused(capsys, argv):
    code, _, err = _usage_error(capsys, argv)
    assert code == 2
    assert "unrecognized arguments" in err


@pytest.mark.parametrize("argv", [["--nam", "n1"], ["-name", "n1", "--in"]])
def test_abbreviated_double_dash_flags_are_refused(capsys, argv):
    code, _, err = _usage_error(capsys, argv)
    assert code == 2
    assert "unrecognized arguments" in err


def test_help_mentions_every_flag_and_its_environment_variable(capsys):
    code, out, _ = _usage_error(capsys, ["-h"])
    assert code == 0
    flat = " ".join(out.split())
    for option in OPTIONS:
        assert f"-{option.flag} " in flat
        assert f"--{option.flag}" in flat
        assert f"[env {option.env}]" in flat
    assert "-version" in flat


@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version(capsys, flag):
    code, out, _ = _usage_error(capsys, [flag])
    assert code == 0
    assert out == f"badkv {__version__}\n"


def test_the_real_command_reports_a_bad_flag_in_one_line():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BADKV_")}
    result = subprocess.run([sys.executable, "-m", "badkv", "-listen", "nonsense"], env=environ,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("badkv: ")


def test_tls_files_that_cannot_be_used_stop_the_node_with_one_line(tmp_path, capsys):
    from badkv.cli import check_tls_files
    from badkv.security import pki

    pki.create_ca(tmp_path)
    n1, n2 = pki.issue(tmp_path, "n1", ["127.0.0.1"]), pki.issue(tmp_path, "n2", ["127.0.0.1"])
    good = Config.from_sources({"name": "n1", "cert_file": str(n1.certificate), "key_file": str(n1.key),
                                "ca_file": str(tmp_path / "ca.crt")})
    check_tls_files(good)  # loads, says nothing
    for bad in ({"key_file": str(n2.key)}, {"ca_file": str(tmp_path / "missing.crt")}):
        with pytest.raises(SystemExit) as stopped:
            check_tls_files(dataclasses.replace(good, **bad))
        assert stopped.value.code == 1
        assert "badkv: cannot use -cert-file" in capsys.readouterr().err


@pytest.mark.parametrize("content, said", [("short\n", "holds 5 bytes"), ("", "is empty")])
def test_a_short_or_empty_cluster_secret_stops_the_command_with_one_line(tmp_path, capsys, content, said):
    from badkv.cli import check_cluster_secret

    secret = tmp_path / "secret"
    secret.write_text(content)
    config = parse_config(["-name", "n1", "-in-memory", "-cluster-secret-file", str(secret)], {})
    with pytest.raises(SystemExit) as stopped:
        check_cluster_secret(config)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and said in lines[0] and lines[0].startswith("badkv: the cluster secret file")
