"""Fault-injecting TCP proxy that puts delays, losses and partitions between cluster nodes.

This machine's kernel has no netem, so fault tests route node-to-node traffic
through a `ProxyNetwork`. Each directed pair of nodes gets its own `Link`
(`badkv.testing.link`), a listener on 127.0.0.1 forwarding to the
destination's real address; requests src -> dst and the responses on the
same connections both belong to link src -> dst. A three-node cluster is
wired by giving each node a real address from `free_port()`, adding a link
for every ordered pair, and telling each node that its peers live behind its
own links::

    network.add_link("A", "B", real_address["B"])  # ... and the other five pairs
    # node A is started with
    #   -cluster A=<A's real addr>,B=127.0.0.1:<port(A,B)>,C=127.0.0.1:<port(A,C)>
    # and B and C likewise, so each directed link is separately controllable.
    network.partition("A", "B")
    network.heal()

The network runs one asyncio event loop in a daemon thread; every public method
of `ProxyNetwork` is safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
from typing import Any, Callable

from badkv.testing.link import (BLACKHOLE, DROP_REQUESTS, DROP_RESPONSES, HANDED_OUT_PORTS, LOOPBACK, PASS, Link,
                                LinkStats)

logger = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (another process may still take it), never
    the same one twice in this process, and never one a link listens on (``HANDED_OUT_PORTS``)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in HANDED_OUT_PORTS:
            HANDED_OUT_PORTS.add(port)
            return port


class ProxyNetwork:
    """A set of links between named nodes, run on one event loop in a daemon thread."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, str], Link] = {}  # touched only on the loop thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ProxyNetwork:
        if self._thread is not None:
            raise RuntimeError("proxy network is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="badkv-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every listener and connection, then end the loop thread."""
        if self._thread is None:
            return
        try:
            self._run(self._close_links)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                logger.warning("proxy network: loop thread did not end within %.1f s", STOP_TIMEOUT_S)
            else:
                self._loop.close()
            self._thread = self._loop = None

    def __enter__(self) -> ProxyNetwork:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_link(self, src: str, dst: str, target: tuple[str, int]) -> int:
        """Create the link src -> dst forwarding to `target` and return the port it listens on."""
        return self._run(self._add_link, src, dst, target)

    def port(self, src: str, dst: str) -> int:
        return self._run(lambda: self._link(src, dst).port)

    def set_mode(self, src: str, dst: str, mode: str) -> None:
        self._run(lambda: self._link(src, dst).set_mode(mode))

    def blackhole(self, src: str, dst: str) -> None:
        self.set_mode(src, dst, BLACKHOLE)

    def partition(self, a: str, b: str) -> None:
        """Blackhole both links between a and b."""
        self._run(self._set_modes, {(a, b): BLACKHOLE, (b, a): BLACKHOLE}, f"between {a} and {b}")

    def isolate(self, node: str) -> None:
        """Blackhole every link to or from `node`."""
        self._run(self._isolate, node)

    def drop_one_way(self, src: str, dst: str) -> None:
        """Lose every byte sent from src to dst: requests on src -> dst and responses on dst -> src."""
        modes = {(src, dst): DROP_REQUESTS, (dst, src): DROP_RESPONSES}
        self._run(self._set_modes, modes, f"between {src} and {dst}")

    def delay_all(self, mean_s: float, jitter_s: float, seed: int = 0) -> None:
        """Delay every chunk on every link; each link draws from its own generator derived from seed."""
        self._run(self._delay_all, mean_s, jitter_s, seed)

    def heal(self) -> None:
        """Put every link back to pass with no delay."""
        self._run(self._heal)

    def stats(self) -> dict[tuple[str, str], LinkStats]:
        return self._run(lambda: {key: link.stats() for key, link in self._links.items()})

    def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call function(*args) on the loop thread, awaiting the result if it is awaitable."""
        if self._loop is None:
            raise RuntimeError("proxy network is not running; call start() first")

        async def call():
            result = function(*args)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(CALL_TIMEOUT_S)

    def _link(self, src: str, dst: str) -> Link:
        try:
            return self._links[(src, dst)]
        except KeyError:
            raise KeyError(f"no link {src} -> {dst}") from None

    async def _add_link(self, src: str, dst: str, target: tuple[str, int]) -> int:
        if (src, dst) in self._links:
            raise ValueError(f"link {src} -> {dst} already exists")
        link = Link(f"{src}->{dst}", target)
        self._links[(src, dst)] = link
        try:
            return await link.start()
        except BaseException:
            del self._links[(src, dst)]
            raise

    def _set_modes(self, modes: dict[tuple[str, str], str], where: str) -> None:
        present = {key: mode for key, mode in modes.items() if key in self._links}
        if not present:
            raise KeyError(f"no links {where}")
        for key, mode in present.items():
            self._links[key].set_mode(mode)

    def _isolate(self, node: str) -> None:
        self._set_modes({key: BLACKHOLE for key in self._links if node in key}, f"to or from {node}")

    def _delay_all(self, mean_s: float, jitter_s: float, seed: int) -> None:
        for link in self._links.values():
            link.set_delay(mean_s, jitter_s, f"{seed}/{link.name}")

    def _heal(self) -> None:
        for link in self._links.values():
            link.set_mode(PASS)
            link.set_delay(0.0, 0.0)

    async def _close_links(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links))
