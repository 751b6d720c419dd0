"""Tests for badkv.config: defaults, flag-over-environment priority, parsing and every validation error."""

import re

import pytest

from badkv.config import OPTIONS, Config
from badkv.config_values import parse_address, parse_bool, parse_cluster
from badkv.errors import ConfigError

THREE = "n1=127.0.0.1:10001,n2=127.0.0.1:10002,n3=127.0.0.1:10003"


def build(values=None, environ=None):
    return Config.from_sources({"name": "n1", **(values or {})}, environ)


def test_defaults():
    config = build()
    assert config.listen == "127.0.0.1:10001"
    assert config.cluster == (("n1", "127.0.0.1:10001"),)
    assert (config.acks, config.threads, config.max_value_size) == ("all", 8, 1 << 20)
    assert (config.in_memory, config.repair, config.log_level) == (False, False, "info")
    assert (config.write_timeout, config.isr_timeout, config.heartbeat_interval) == (5.0, 2.0, 0.1)
    assert (config.election_timeout, config.leader_wait) == (0.5, 2.0)
    assert config.data_dir == "./data/n1"


def test_every_option_is_a_config_field_with_help():
    fields = set(Config.__dataclass_fields__)
    for option in OPTIONS:
        assert option.field in fields
        assert option.env == "BADKV_" + option.field.upper()
        assert option.help


def test_flags_override_the_environment():
    config = Config.from_sources({"listen": "127.0.0.1:2000", "threads": None},
                                 {"BADKV_NAME": "fromenv", "BADKV_LISTEN": "127.0.0.1:3000", "BADKV_THREADS": "3"})
    assert config.name == "fromenv"
    assert config.listen == "127.0.0.1:2000"
    assert config.threads == 3


def test_unrelated_environment_is_ignored():
    config = Config.from_sources({"name": "n1"}, {"NAME": "x", "BADKV_ENDPOINT": "whatever", "THREADS": "1"})
    assert (config.name, config.threads) == ("n1", 8)


def test_typed_values_pass_through_unparsed():
    config = build({"threads": 4, "in_memory": True, "write_timeout": 1.5})
    assert (config.threads, config.in_memory, config.write_timeout) == (4, True, 1.5)


@pytest.mark.parametrize("values, environ, source", [
    ({"threads": "many"}, None, "-threads"),
    ({}, {"BADKV_THREADS": "many"}, "BADKV_THREADS"),
    ({"write_timeout": "soon"}, None, "-write-timeout"),
    ({"in_memory": "maybe"}, None, "-in-memory"),
    ({}, {"BADKV_REPAIR": "maybe"}, "BADKV_REPAIR"),
    ({"cluster": "n1@127.0.0.1:1"}, None, "-cluster"),
])
def test_unparsable_values_name_their_source(values, environ, source):
    with pytest.raises(ConfigError, match=re.escape(source)):
        build(values, environ)


@pytest.mark.parametrize("values, message", [
    pytest.param({"name": ""}, "a node name is required", id="missing-name"),
    pytest.param({"name": "bad name"}, "node name 'bad name' must be", id="space-in-name"),
    pytest.param({"name": "-n1"}, "node name '-n1' must be", id="leading-dash"),
    pytest.param({"name": "n" * 64}, "must be 1-63 characters", id="long-name"),
    pytest.param({"listen": "nonsense"}, "listen address 'nonsense' is not of the form host:port", id="no-port"),
    pytest.param({"listen": ":80"}, "is not of the form host:port", id="no-host"),
    pytest.param({"listen": "127.0.0.1:http"}, "is not of the form host:port", id="named-port"),
    pytest.param({"listen": "127.0.0.1:0"}, "has a port outside 1-65535", id="port-zero"),
    pytest.param({"listen": "127.0.0.1:65536"}, "has a port outside 1-65535", id="port-too-big"),
    pytest.param({"cluster": "n2=127.0.0.1:2,n3=127.0.0.1:3,n4=127.0.0.1:4"},
                 "this node's name 'n1' is not in the cluster list", id="cluster-without-this-node"),
    pytest.param({"cluster": "n1=127.0.0.1:1,n1=127.0.0.1:2,n3=127.0.0.1:3"},
                 "cluster member names must be unique", id="duplicate-names"),
    pytest.param({"cluster": "n1=127.0.0.1:1,n2=127.0.0.1:1,n3=127.0.0.1:3"},
                 "cluster member addresses must be unique", id="duplicate-addresses"),
    pytest.param({"cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2"}, "a cluster has 1, 3 or 5 members, not 2",
                 id="cluster-of-2"),
    pytest.param({"cluster": "n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3,n4=127.0.0.1:4"},
                 "a cluster has 1, 3 or 5 members, not 4", id="cluster-of-4"),
    pytest.param({"cluster": "n1=127.0.0.1:1,bad name=127.0.0.1:2,n3=127.0.0.1:3"},
                 "cluster member name 'bad name' is not a valid node name", id="bad-member-name"),
    pytest.param({"cluster": "n1=127.0.0.1:1,n2=nowhere,n3=127.0.0.1:3"},
                 "cluster member 'n2' address 'nowhere' is not of the form host:port", id="bad-member-address"),
    pytest.param({"cluster": "n1=127.0.0.1:1,n2"}, "cluster member 'n2' is not of the form name=host:port",
                 id="member-without-address"),
    pytest.param({"acks": "one"}, "acks must be 'all' or 'majority'", id="bad-acks"),
    pytest.param({"threads": "-1"}, "threads must be at least 1", id="negative-threads"),
    pytest.param({"max_value_size": "0"}, "max value size must be at least 1 byte", id="zero-value-size"),
    pytest.param({"isr_timeout": "0.5", "heartbeat_interval": "0.2"},
                 "isr timeout must be at least 3x the heartbeat interval", id="isr-below-3x-heartbeat"),
    pytest.param({"log_level": "verbose"}, "log level must be one of debug, info, warning, error", id="log-level"),
    pytest.param({"log_format": "xml"}, "log format must be text or json", id="log-format"),
] + [
    pytest.param({field: value}, f"{field.replace('_', ' ')} must be positive", id=f"{field}={value}")
    for field in ("write_timeout", "read_timeout", "max_read_timeout", "isr_timeout", "heartbeat_interval",
                  "peer_timeout", "sync_interval", "tombstone_retention")
    for value in ("-1", "0")
])
def test_validation_errors_are_one_clear_sentence(values, message):
    with pytest.raises(ConfigError) as raised:
        build(values)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text and "Traceback" not in text


def test_validate_works_on_a_plain_dataclass():
    with pytest.raises(ConfigError, match="a cluster has 1, 3 or 5 members"):
        Config(name="n1", cluster=(("n1", "127.0.0.1:1"), ("n2", "127.0.0.1:2"))).validate()


@pytest.mark.parametrize("size", [3, 5])
def test_clusters_of_three_and_five_are_accepted(size):
    cluster = ",".join(f"n{i}=127.0.0.1:{10000 + i}" for i in range(1, size + 1))
    config = build({"cluster": cluster})
    assert len(config.cluster) == size


@pytest.mark.parametrize("isr_timeout, heartbeat_interval", [("1.5", "0.5"), ("3", "1"), ("60", "0.2")])
def test_isr_timeout_of_at_least_3x_the_heartbeat_is_accepted(isr_timeout, heartbeat_interval):
    config = build({"isr_timeout": isr_timeout, "heartbeat_interval": heartbeat_interval,
                    "election_timeout": str(3 * float(heartbeat_interval))})
    assert config.isr_timeout == float(isr_timeout)


@pytest.mark.parametrize("isr_timeout, heartbeat_interval", [("0.6", "0.2"), ("0.3", "0.1")])
def test_isr_timeout_of_exactly_3x_a_decimal_heartbeat_is_accepted(isr_timeout, heartbeat_interval):
    config = build({"isr_timeout": isr_timeout, "heartbeat_interval": heartbeat_interval,
                    "election_timeout": isr_timeout})
    assert config.isr_timeout == float(isr_timeout)


@pytest.mark.parametrize("values, message", [
    ({"election_timeout": "0.2"}, "election timeout must be at least 3x the heartbeat interval"),
    ({"election_timeout": "0.3"}, None),
    ({"election_timeout": "3"}, "isr timeout must be at least the election timeout"),
    ({"election_timeout": "2", "isr_timeout": "2"}, None),
    ({"leader_wait": "0"}, "leader wait must be positive"),
])
def test_the_election_timeout_is_checked_against_the_heartbeat_and_the_isr_timeout(values, message):
    if message is None:
        assert build(values).election_timeout == float(values["election_timeout"])
    else:
        with pytest.raises(ConfigError, match=message):
            build(values)


@pytest.mark.parametrize("source", ["flag", "environment"])
def test_a_name_with_a_trailing_newline_is_refused(source):
    with pytest.raises(ConfigError, match="must be 1-63 characters"):
        build({"name": "n1\n"}) if source == "flag" else Config.from_sources(environ={"BADKV_NAME": "n1\n"})


@pytest.mark.parametrize("field", ["write_timeout", "heartbeat_interval"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_timeouts_are_refused(field, value):
    with pytest.raises(ConfigError, match=field.replace("_", " ")):
        build({field: value})


@pytest.mark.parametrize("field", ["max_batch_entries", "snapshot_entries"])
def test_entry_counts_must_be_positive(field):
    with pytest.raises(ConfigError, match=field.replace("_", " ")):
        build({field: "0"})


@pytest.mark.parametrize("text, size", [
    ("2048", 2048), ("1m", 1 << 20), ("512k", 512 << 10), ("1M", 1 << 20), ("1MiB", 1 << 20), ("64kb", 64 << 10),
    ("1g", 1 << 30), ("1.5k", 1536), (" 2k ", 2048), ("100b", 100),
])
def test_sizes(text, size):
    assert build({"max_value_size": text}).max_value_size == size


@pytest.mark.parametrize("text", ["", "k", "lots", "1x", "1.5"])
def test_bad_sizes_name_the_flag(text):
    with pytest.raises(ConfigError, match="-max-value-size: .* is not a valid BYTES"):
        build({"max_value_size": text})


@pytest.mark.parametrize("text, seconds", [
    ("86400", 86400.0), ("1.5", 1.5), ("24h", 86400.0), ("1h30m", 5400.0), ("90s", 90.0), ("500ms", 0.5),
    ("2m0.5s", 120.5), (" 10m ", 600.0),
])
def test_durations_in_seconds_or_go_style(text, seconds):
    assert build({"tombstone_retention": text}).tombstone_retention == seconds


def test_the_default_retention_is_a_day_and_its_environment_variable_is_read():
    assert build({}).tombstone_retention == 86400.0
    config = Config.from_sources({"name": "n1"}, {"BADKV_TOMBSTONE_RETENTION": "2h"})
    assert config.tombstone_retention == 7200.0


@pytest.mark.parametrize("text", ["", "h", "1x", "1h 2m", "-1s", "1d"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ConfigError, match="-tombstone-retention: .* is not a duration"):
        build({"tombstone_retention": text})


@pytest.mark.parametrize("text", ["infk", "1e400m"])
def test_an_infinite_size_is_a_config_error(text):
    with pytest.raises(ConfigError, match="-max-value-size"):
        build({"max_value_size": text})


@pytest.mark.parametrize("text, value", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" On ", True),
    ("0", False), ("false", False), ("no", False), ("off", False), ("", False),
])
def test_bools(text, value):
    assert parse_bool(text) is value
    assert build(environ={"BADKV_IN_MEMORY": text, "BADKV_REPAIR": text}).in_memory is value


def test_a_bad_bool_says_how_to_write_one():
    with pytest.raises(ConfigError, match=re.escape("BADKV_IN_MEMORY: 'maybe' is not a boolean (use true or false)")):
        build(environ={"BADKV_IN_MEMORY": "maybe"})


@pytest.mark.parametrize("values, data_dir", [
    ({}, "./data/n1"), ({"name": "other"}, "./data/other"), ({"data_dir": "/var/lib/badkv"}, "/var/lib/badkv"),
])
def test_data_dir(values, data_dir):
    assert build(values).data_dir == data_dir


def test_log_level_is_case_insensitive():
    assert build({"log_level": "DEBUG"}).log_level == "debug"


@pytest.mark.parametrize("name, leader, peers", [
    ("n1", "n2", {"n2": "127.0.0.1:2", "n3": "127.0.0.1:3"}),
    ("n2", "n2", {"n1": "127.0.0.1:1", "n3": "127.0.0.1:3"}),
    ("n3", "n2", {"n2": "127.0.0.1:2", "n1": "127.0.0.1:1"}),
])
def test_peers_exclude_self_in_cluster_order(name, leader, peers):
    config = build({"name": name, "cluster": "n2=127.0.0.1:2,n1=127.0.0.1:1,n3=127.0.0.1:3"})
    assert config.cluster[0][0] == leader  # the first to stand for election
    assert config.peers == peers
    assert list(config.peers) == list(peers)
    assert config.address_of("n3") == "127.0.0.1:3"


def test_a_single_node_has_no_peers():
    config = build({"listen": "127.0.0.1:4000"})
    assert (config.cluster, config.peers) == ((("n1", "127.0.0.1:4000"),), {})


def test_members_of_one_cluster_derive_the_same_cluster_id():
    ids = {build({"name": name, "cluster": THREE}).cluster_id for name in ("n1", "n2", "n3")}
    assert len(ids) == 1
    assert ids != {build().cluster_id}
    assert build({"cluster_id": "prod"}).cluster_id == "prod"


@pytest.mark.parametrize("text, host, port", [
    ("127.0.0.1:80", "127.0.0.1", 80), ("example.org:65535", "example.org", 65535), ("[::1]:8080", "::1", 8080),
    (" localhost:1 ", "localhost", 1),
])
def test_parse_address(text, host, port):
    assert parse_address(text) == (host, port)
    assert (build({"listen": text.strip()}).host, build({"listen": text.strip()}).port) == (host, port)


def test_parse_cluster_keeps_order_and_trims():
    assert parse_cluster(" n2=h:2 , n1=h:1,,n3=h:3 ") == (("n2", "h:2"), ("n1", "h:1"), ("n3", "h:3"))


def test_config_is_frozen():
    config = build()
    with pytest.raises(AttributeError):
        config.name = "other"


@pytest.mark.parametrize("cluster, threads", [(None, 8), ("n1=127.0.0.1:1,n2=127.0.0.1:2,n3=127.0.0.1:3", 32)])
def test_default_threads_depend_on_the_cluster_size(cluster, threads):
    assert build({"cluster": cluster}).threads == threads
    assert build({"cluster": cluster, "threads": "5"}).threads == 5


@pytest.mark.parametrize("values, message", [
    ({"cert_file": "n1.crt", "key_file": "n1.key"}, "TLS needs all three"),
    ({"ca_file": "ca.crt"}, "TLS needs all three"),
    ({"cluster_secret_file": "s", "cluster_secret": "x"}, "give the cluster secret once"),
    ({"auth": "on"}, "needs -admin-token-file"),
    ({"tenant_max_keys": "-1"}, "tenant max keys must not be negative"),
    ({"tenant_writes_per_second": "inf"}, "tenant writes per second must be a finite number"),
])
def test_security_settings_are_checked_together(values, message):
    with pytest.raises(ConfigError, match=message):
        build(values)
