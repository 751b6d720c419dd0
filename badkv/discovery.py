"""Finding a node's first members through DNS SRV records (``-discovery-srv DOMAIN``).

Each SRV record of ``_badkv._tcp.DOMAIN`` is one member: the member's name is the first label of the
record's target (``n1.example.com.`` is member ``n1``), its address is the target's A (or AAAA) record,
resolved through the same DNS server, and the record's port. Members are ordered by SRV priority, then
name, so every node derives the same list, the same first member to stand for leader and the same cluster
id. Resolution happens once, at start; after it the node runs exactly as if ``-cluster`` had listed them.
"""

from __future__ import annotations

import time
from typing import Callable

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from badkv.config import NAME_PATTERN
from badkv.config_values import parse_address
from badkv.errors import ConfigError

SERVICE = "_badkv._tcp"
TIMEOUT_S = 10.0  # the whole resolution, retries included: a DNS server still starting has this long
ATTEMPT_TIMEOUT_S = 1.0  # one query unanswered this long is sent again (UDP may lose it)
RETRY_PAUSE_S = 0.5
# Failures worth asking again: the server did not answer, or answered with an error of its own.
_TRANSIENT = (dns.exception.Timeout, dns.resolver.NoNameservers)


def service_name(domain: str) -> str:
    """The absolute name asked for: ``_badkv._tcp.DOMAIN.``."""
    return f"{SERVICE}.{domain.strip().rstrip('.')}."


def srv_members(node_name: str, domain: str, dns_server: str = "", *, timeout: float = TIMEOUT_S,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> tuple[tuple[str, str], ...]:
    """The ``(name, host:port)`` members that ``_badkv._tcp.DOMAIN`` lists; ConfigError in one sentence
    if the records cannot be had within ``timeout`` seconds, are malformed, or do not include ``node_name``."""
    lookup = _Lookup(_resolver(dns_server), timeout, clock, sleep)
    qname = service_name(domain)
    shown = qname.rstrip(".")
    answer = lookup.resolve(qname, "SRV")
    records = sorted(answer, key=lambda record: (record.priority, record.target.to_text().lower()))
    names = [_member_name(record.target, shown) for record in records]
    _check_names(node_name, shown, names)  # before the address lookups: a wrong list needs none of them
    return tuple((name, lookup.address(answer.response, record.target, record.port))
                 for name, record in zip(names, records))


def _resolver(dns_server: str) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks only ``host:port`` (``-discovery-dns-server``)."""
    if not dns_server:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise ConfigError("-discovery-srv: this machine has no DNS resolver configured "
                              "(give one with -discovery-dns-server HOST:PORT)") from None
        resolver.timeout = ATTEMPT_TIMEOUT_S
        return resolver
    host, port = parse_address(dns_server, "-discovery-dns-server")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.timeout = ATTEMPT_TIMEOUT_S
    return resolver


class _Lookup:
    """Lookups that share one deadline: the SRV query and its targets' addresses together get ``timeout``."""

    def __init__(self, resolver: dns.resolver.Resolver, timeout: float, clock: Callable[[], float],
                 sleep: Callable[[float], None]):
        self.resolver = resolver
        self.timeout = timeout
        self.deadline = clock() + timeout
        self.clock = clock
        self.sleep = sleep

    def resolve(self, qname: str, rdtype: str, missing_ok: bool = False) -> dns.resolver.Answer | None:
        """One lookup, asked again after a pause while the server is silent or failing, until the deadline;
        a name without such records is None with ``missing_ok``, else a ConfigError."""
        while True:
            remaining = self.deadline - self.clock()
            try:
                return self.resolver.resolve(qname, rdtype, lifetime=max(remaining, 0.05), search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as error:
                if missing_ok:
                    return None
                what = "does not exist (NXDOMAIN)" if isinstance(error, dns.resolver.NXDOMAIN) else \
                    f"has no {rdtype} records"
                raise ConfigError(f"-discovery-srv: {qname.rstrip('.')} {what}") from None
            except _TRANSIENT as error:
                if self.clock() + RETRY_PAUSE_S >= self.deadline:
                    raise ConfigError(f"-discovery-srv: no answer for {qname.rstrip('.')} {rdtype} within "
                                      f"{self.timeout:g} s ({_reason(error)})") from None
                self.sleep(RETRY_PAUSE_S)

    def address(self, response: dns.message.Message, target: dns.name.Name, port: int) -> str:
        """``host:port`` for one target, from the SRV answer's additional section if it came with one."""
        for rrset in response.additional:
            if rrset.name == target and rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                return _join(rrset[0].address, port)
        for rdtype in ("A", "AAAA"):
            answer = self.resolve(target.to_text(), rdtype, missing_ok=True)
            if answer is not None:
                return _join(answer[0].address, port)
        raise ConfigError(f"-discovery-srv: the SRV target {target} has no A or AAAA record")


def _reason(error: Exception) -> str:
    return "timed out" if isinstance(error, dns.exception.Timeout) else "the DNS server answered with an error"


def _member_name(target: dns.name.Name, qname: str) -> str:
    """A member's name is its SRV target's first label: the name stays the same if its address changes."""
    if not target.labels or target == dns.name.root:
        raise ConfigError(f"-discovery-srv: {qname} has a record whose target is '.' (no service there)")
    name = target.labels[0].decode("ascii", "replace")
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"-discovery-srv: the SRV target {target} gives member name {name!r}, "
                          f"which is not a valid node name")
    return name


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_names(node_name: str, qname: str, names: list[str]) -> None:
    for name in set(names):
        if names.count(name) > 1:
            raise ConfigError(f"-discovery-srv: two SRV targets of {qname} give the member name {name!r} "
                              f"(a member's name is its target's first label)")
    if node_name not in names:
        raise ConfigError(f"-discovery-srv: this node's name {node_name!r} is not among the members of {qname} "
                          f"({', '.join(names)}; a member's name is its SRV target's first label)")
