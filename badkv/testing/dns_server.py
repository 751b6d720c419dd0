"""A small authoritative DNS server on a loopback UDP port, answering SRV, A and AAAA queries from dicts.

Tests of ``-discovery-srv`` point ``-discovery-dns-server`` at it, so no test depends on the machine's
resolver or the outside world::

    with DnsServer() as dns_server:
        dns_server.srv["_badkv._tcp.example.test"] = [(0, 0, 10001, "n1.example.test")]
        dns_server.a["n1.example.test"] = "127.0.0.1"
        ... -discovery-srv example.test -discovery-dns-server dns_server.address

A name it has no record of at all is NXDOMAIN; ``silent = True`` makes it drop every query (a server that
is down), ``failing = True`` answers SERVFAIL, ``glue = True`` adds the targets' A records to SRV answers
(as many servers do). ``queries`` counts the queries it received.
"""

from __future__ import annotations

import logging
import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

logger = logging.getLogger(__name__)

TTL_S = 5


def _key(name: str) -> str:
    return name.lower().rstrip(".") + "."


class DnsServer:
    """Answers from ``srv`` (name -> [(priority, weight, port, target)]), ``a`` and ``aaaa`` (name -> address)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.srv: dict[str, list[tuple[int, int, int, str]]] = {}
        self.a: dict[str, str] = {}
        self.aaaa: dict[str, str] = {}
        self.silent = False
        self.glue = False  # True: SRV answers carry their targets' A records in the additional section
        self.failing = False
        self.queries = 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((host, 0))  # the kernel picks a free port; nothing can take it between bind and use
        self.socket.settimeout(0.1)  # so stop() is seen within a tenth of a second
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="test-dns-server", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.socket.getsockname()
        return f"{host}:{port}"

    def start(self) -> "DnsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.socket.close()

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                wire, client = self.socket.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            try:
                answer = self.answer(dns.message.from_wire(wire))
            except dns.exception.DNSException as error:  # not a DNS query: nothing to answer
                logger.warning("test DNS server: ignored a malformed query from %s: %s", client, error)
                continue
            if answer is not None:
                self.socket.sendto(answer.to_wire(), client)

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to ``query`` (None: stay silent)."""
        if self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        question = query.question[0]
        name = _key(question.name.to_text())
        records = self._records(name, question.rdtype)
        if records:
            response.answer.append(dns.rrset.from_text_list(question.name, TTL_S, dns.rdataclass.IN,
                                                            question.rdtype, records))
        elif not any(name in _normalised(table) for table in (self.srv, self.a, self.aaaa)):
            response.set_rcode(dns.rcode.NXDOMAIN)
        if records and self.glue and question.rdtype == dns.rdatatype.SRV:
            for target in {record.split()[3] for record in records}:
                if addresses := self._records(target, dns.rdatatype.A):
                    response.additional.append(dns.rrset.from_text_list(target, TTL_S, dns.rdataclass.IN,
                                                                        dns.rdatatype.A, addresses))
        return response

    def _records(self, name: str, rdtype: int) -> list[str]:
        if rdtype == dns.rdatatype.SRV:
            return [f"{priority} {weight} {port} {_key(target)}"
                    for priority, weight, port, target in _normalised(self.srv).get(name, [])]
        table = _normalised({dns.rdatatype.A: self.a, dns.rdatatype.AAAA: self.aaaa}.get(rdtype, {}))
        return [table[name]] if name in table else []


def _normalised(table: dict) -> dict:
    """The table keyed by lower-case absolute names, so a test may write names with or without the dot."""
    return {_key(name): value for name, value in table.items()}
