"""Node configuration: one frozen dataclass, its defaults, its sources and its checks.

Every setting is declared once in ``OPTIONS`` (its text parsed by
``badkv/config_values.py``); the command line (``cli.py``),
the ``BADKV_*`` environment and ``gunicorn.conf.py`` all go through
``Config.from_sources`` so there is exactly one path from user input to a
validated ``Config``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from badkv.config_values import parse_address, parse_bool, parse_cluster, parse_duration, parse_size
from badkv.errors import ConfigError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
ENV_PREFIX = "BADKV_"


@dataclass(frozen=True)
class Option:
    """One setting: its Config field, its type parser and its help text."""

    field: str
    parse: Callable[[str], object]
    help: str
    metavar: str = ""

    @property
    def flag(self) -> str:
        return self.field.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


@dataclass(frozen=True)
class Config:
    """Everything one badkv node needs to know; build with ``from_sources``."""

    name: str = ""
    listen: str = "127.0.0.1:10001"
    cluster: tuple[tuple[str, str], ...] = ()
    cluster_id: str = ""
    learners: tuple[str, ...] = ()  # members of ``cluster`` that are learners (a joined node's first membership)
    discovery_srv: str = ""  # the members come from _badkv._tcp.DOMAIN instead of -cluster (badkv/discovery.py)
    discovery_dns_server: str = ""
    join: str = ""  # a member's URL: this new node joins through it (badkv/cluster/joining.py)
    join_token: str = ""
    acks: str = "all"
    threads: int = 0  # 0: 8 for a single node, 32 for a cluster member (see validate)
    max_value_size: int = 1 << 20
    data_dir: str = ""
    in_memory: bool = False
    write_timeout: float = 5.0
    read_timeout: float = 5.0
    max_read_timeout: float = 60.0
    isr_timeout: float = 2.0
    heartbeat_interval: float = 0.1
    election_timeout: float = 0.5
    leader_wait: float = 2.0
    peer_timeout: float = 1.0
    sync_interval: float = 10.0
    max_batch_entries: int = 2000
    snapshot_entries: int = 100_000
    tombstone_retention: float = 86400.0  # seconds a tombstone lives at least (then gc removes it, see store.py)
    repair: bool = False
    log_level: str = "info"
    log_format: str = "text"
    # Security (docs/design.md section 8): TLS, the peer boundary, tenant auth and quotas.
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    cluster_secret_file: str = ""
    cluster_secret: str = field(default="", repr=False)  # never shown: a Config may be logged
    auth: bool = False
    admin_token_file: str = ""
    tenant_max_keys: int = 0
    tenant_max_bytes: int = 0
    tenant_writes_per_second: float = 0.0
    tenant_metrics_top: int = 20
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_sources(cls, values: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None,
                     discover: Callable[[str, str, str], tuple] | None = None) -> "Config":
        """Build from flag values (highest priority) over ``BADKV_*`` environment values, then validate.
        With ``-discovery-srv`` the members are looked up here, once, by ``discover(name, domain, dns_server)``
        (default ``badkv.discovery.srv_members``)."""
        settings: dict[str, object] = {}
        for option in OPTIONS:
            if environ and option.env in environ:
                settings[option.field] = _parse_option(option, environ[option.env], option.env)
        for key, value in (values or {}).items():
            if value is None:
                continue
            option = OPTION_BY_FIELD[key]
            settings[key] = _parse_option(option, value, "-" + option.flag) if isinstance(value, str) else value
        config = cls(**settings)
        if config.discovery_srv:
            config = _with_discovered_members(config, discover)
        return config.validate()

    def validate(self) -> "Config":
        """Check every setting and fill derived defaults; return the finished Config."""
        cluster = self._checked_cluster()
        self._check_limits_and_timings()
        names = [name for name, _ in cluster]
        data_dir = self.data_dir or f"./data/{self.name}"
        # Derived from the member names only: peers may be reached through proxies at other addresses.
        cluster_id = self.cluster_id or hashlib.sha256(",".join(names).encode()).hexdigest()[:16]
        # A cluster member's request threads wait on replication round trips, so more of them keep
        # more writes in flight and batches larger (measured in bench/README.md); a single node is
        # CPU-bound and gains nothing from more threads.
        threads = self.threads or (8 if len(cluster) == 1 else 32)
        return dataclasses.replace(self, cluster=tuple(cluster), data_dir=data_dir, cluster_id=cluster_id,
                                   threads=threads, log_level=self.log_level.lower())

    def _checked_cluster(self) -> tuple[tuple[str, str], ...]:
        """Check the node name, the listen address and the cluster list; return the list (this node alone if empty)."""
        if not self.name:
            raise ConfigError("a node name is required (-name or BADKV_NAME)")
        if not NAME_PATTERN.fullmatch(self.name):
            raise ConfigError(f"node name {self.name!r} must be 1-63 characters of letters, digits, '.', '_' or '-'")
        parse_address(self.listen, "listen address")
        if self.discovery_dns_server and not self.discovery_srv:
            raise ConfigError("-discovery-dns-server is only used with -discovery-srv DOMAIN")
        if self.join and (self.discovery_srv or (self.cluster and not self.learners)):
            raise ConfigError("give the members one way: -join (the cluster tells them), -cluster or -discovery-srv")
        cluster = self.cluster or ((self.name, self.listen),)
        names = [name for name, _ in cluster]
        if len(set(names)) != len(names):
            raise ConfigError("cluster member names must be unique")
        if len({address for _, address in cluster}) != len(cluster):
            raise ConfigError("cluster member addresses must be unique")
        for name in names:
            if not NAME_PATTERN.fullmatch(name):
                raise ConfigError(f"cluster member name {name!r} is not a valid node name")
        if self.name not in names:
            raise ConfigError(f"this node's name {self.name!r} is not in the cluster list")
        # (A first start lists 1, 3 or 5; a cluster grows to 7 and through even sizes at run time, and a
        # joined node's first membership, with its learners, is the cluster's as it was then.)
        if not self.learners and len(cluster) not in (1, 3, 5):
            raise ConfigError(f"a cluster has 1, 3 or 5 members, not {len(cluster)}")
        return cluster

    def _check_limits_and_timings(self) -> None:
        """Check acks, the sizes and counts, the timings and the log level, in that order."""
        if self.acks not in ("all", "majority"):
            raise ConfigError("acks must be 'all' or 'majority'")
        if self.threads < 0:
            raise ConfigError("threads must be at least 1")
        if self.max_value_size < 1:
            raise ConfigError("max value size must be at least 1 byte")
        for name in ("write_timeout", "read_timeout", "max_read_timeout", "isr_timeout", "heartbeat_interval",
                     "election_timeout", "leader_wait", "peer_timeout", "sync_interval", "tombstone_retention"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be positive (a finite number of seconds)")
        for name in ("max_batch_entries", "snapshot_entries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be at least 1")
        if _below(self.isr_timeout, 3 * self.heartbeat_interval):
            raise ConfigError("isr timeout must be at least 3x the heartbeat interval")
        if _below(self.election_timeout, 3 * self.heartbeat_interval):
            raise ConfigError("election timeout must be at least 3x the heartbeat interval")
        if _below(self.isr_timeout, self.election_timeout):
            raise ConfigError("isr timeout must be at least the election timeout")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError("log level must be one of debug, info, warning, error")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log format must be text or json")
        self._check_security()

    def _check_security(self) -> None:
        """TLS files come as a set; auth needs the admin token; quotas are not negative."""
        tls = [bool(self.cert_file), bool(self.key_file), bool(self.ca_file)]
        if any(tls) and not all(tls):
            raise ConfigError("TLS needs all three of -cert-file, -key-file and -ca-file (peers verify each other)")
        if self.cluster_secret_file and self.cluster_secret:
            raise ConfigError("give the cluster secret once: -cluster-secret-file or BADKV_CLUSTER_SECRET, not both")
        if self.auth and not self.admin_token_file:
            raise ConfigError("-auth on needs -admin-token-file (the file that holds the admin token)")
        for name in ("tenant_max_keys", "tenant_max_bytes", "tenant_metrics_top"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must not be negative (0 means no limit)")
        if not math.isfinite(self.tenant_writes_per_second) or self.tenant_writes_per_second < 0:
            raise ConfigError("tenant writes per second must be a finite number, 0 or more (0 means no limit)")

    @property
    def host(self) -> str:
        return parse_address(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_address(self.listen)[1]

    @property
    def peers(self) -> dict[str, str]:
        """The other members, name -> address, in cluster order."""
        return {name: address for name, address in self.cluster if name != self.name}

    def address_of(self, name: str) -> str:
        return dict(self.cluster)[name]


def _with_discovered_members(config: Config, discover: Callable[[str, str, str], tuple] | None) -> Config:
    """``config`` with the members ``-discovery-srv`` finds, as if ``-cluster`` had listed them."""
    if config.cluster:
        raise ConfigError("give the members one way: -cluster or -discovery-srv, not both")
    if not config.name:
        raise ConfigError("a node name is required (-name or BADKV_NAME)")
    if discover is None:  # imported here: dnspython is loaded only by a node that discovers its members
        from badkv.discovery import srv_members as discover
    return dataclasses.replace(config, cluster=tuple(discover(config.name, config.discovery_srv,
                                                              config.discovery_dns_server)))


def _below(value: float, floor: float) -> bool:
    """``value < floor``, forgiving the float error of e.g. 3 * 0.1."""
    return value < floor and not math.isclose(value, floor)


def _parse_option(option: Option, value: object, source: str) -> object:
    try:
        return option.parse(str(value))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (ValueError, OverflowError):
        raise ConfigError(f"{source}: {value!r} is not a valid {option.metavar or 'value'}") from None


OPTIONS: tuple[Option, ...] = (
    Option("name", str, "this node's unique name, e.g. badkv1 (required)", "NAME"),
    Option("listen", str, "host:port to serve HTTP on (default 127.0.0.1:10001)", "HOST:PORT"),
    Option("cluster", parse_cluster, "all members as name=host:port,...; the first is the first to stand for leader "
           "(default: this node alone)", "N=HOST:PORT,..."),
    Option("discovery_srv", str, "find the members in the SRV records of _badkv._tcp.DOMAIN instead of "
           "-cluster: each target's first label is a member's name", "DOMAIN"),
    Option("discovery_dns_server", str, "the DNS server -discovery-srv asks (default: the system's resolver)",
           "HOST:PORT"),
    Option("join", str, "join a running cluster through any member's URL (with -join-token; the members "
           "come from the cluster)", "URL"),
    Option("join_token", str, "the one-time token 'badkvctl member add' printed (works once, for 10 minutes)",
           "TOKEN"),
    Option("cluster_id", str, "the cluster's identity, kept in the data dir (default: derived from the "
           "member names)", "ID"),
    Option("acks", str, "when a write is acknowledged: 'all' in-sync members applied it (default) "
           "or 'majority' committed it", "all|majority"),
    Option("threads", int, "request threads in the gunicorn worker (default 8 for a single node, 32 in a "
           "cluster)", "N"),
    Option("max_value_size", parse_size, "largest value accepted, bytes or with k/m suffix (default 1m)", "BYTES"),
    Option("data_dir", str, "where the write-ahead log and snapshots live (default ./data/NAME)", "DIR"),
    Option("in_memory", parse_bool, "keep nothing on disk", "BOOL"),
    Option("write_timeout", float, "seconds a write waits for replication before 504 (default 5)", "SECONDS"),
    Option("read_timeout", float, "default seconds a min_revision read waits (default 5)", "SECONDS"),
    Option("max_read_timeout", float, "largest ?timeout= a client may ask for (default 60)", "SECONDS"),
    Option("isr_timeout", float, "seconds without an answer before a follower leaves the in-sync set "
           "(default 2)", "SECONDS"),
    Option("heartbeat_interval", float, "seconds between leader heartbeats (default 0.1)", "SECONDS"),
    Option("election_timeout", float, "seconds without a leader before a follower stands for election; each"
           " wait is drawn from [T, 2T) (default 0.5)", "SECONDS"),
    Option("leader_wait", float, "seconds a request that needs a leader waits for one during an election"
           " before 503 (default 2)", "SECONDS"),
    Option("peer_timeout", float, "seconds for one call to another node (default 1)", "SECONDS"),
    Option("sync_interval", float, "seconds between take syncs from the leader (default 10)", "SECONDS"),
    Option("max_batch_entries", int, "most log entries in one append call (default 2000)", "N"),
    Option("snapshot_entries", int, "log entries between snapshots (default 100000)", "N"),
    Option("tombstone_retention", parse_duration, "how long a deleted key's tombstone lives at least, in seconds "
           "or as 24h, 90m, 30s: take cursors stay valid that long; then, once every member applied past it, "
           "one replicated gc entry removes it (default 24h)", "DURATION"),
    Option("repair", parse_bool, "truncate a corrupt write-ahead log at the first bad record", "BOOL"),
    Option("log_level", str, "debug, info, warning or error (default info)", "LEVEL"),
    Option("log_format", str, "text (default): one readable line per event; json: one JSON object per line "
           "with time, level, node, logger, message (and exception)", "text|json"),
    Option("cert_file", str, "this node's TLS certificate (PEM); with -key-file and -ca-file the node serves "
           "HTTPS and its peers must present certificates from the same CA", "FILE"),
    Option("key_file", str, "the private key of -cert-file (PEM)", "FILE"),
    Option("ca_file", str, "the CA certificate (PEM) that signed every member's certificate", "FILE"),
    Option("cluster_secret_file", str, "a file holding the secret every peer call is signed with (HMAC-SHA256)",
           "FILE"),
    Option("cluster_secret", str, "the cluster secret itself; prefer -cluster-secret-file or the "
           "BADKV_CLUSTER_SECRET environment (a flag shows in the process list)", "SECRET"),
    Option("auth", parse_bool, "on: every key request needs a tenant or admin bearer token (default off)",
           "on|off"),
    Option("admin_token_file", str, "a file holding the admin token (needed with -auth on)", "FILE"),
    Option("tenant_max_keys", int, "default most keys a new tenant may hold (0: no limit)", "N"),
    Option("tenant_max_bytes", parse_size, "default most value bytes a new tenant may hold, k/m/g suffixes "
           "(0: no limit)", "BYTES"),
    Option("tenant_writes_per_second", float, "default write rate a new tenant may sustain (0: no limit)", "RATE"),
    Option("tenant_metrics_top", int, "tenants with their own Prometheus series: the N busiest (default 20)", "N"),
)
OPTION_BY_FIELD = {option.field: option for option in OPTIONS}
