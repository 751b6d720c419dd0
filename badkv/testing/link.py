"""One proxied link src -> dst: its fault modes, its delays and the connections it relays.

A `Link` listens on 127.0.0.1 and forwards each accepted connection to its
target; requests src -> dst and the responses on the same connections both
belong to it. Its mode passes, holds (blackhole), resets or drops bytes in
one direction; its delay postpones every chunk without reordering bytes.
`badkv.testing.proxy.ProxyNetwork` owns the links and runs them on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import random
import socket
import struct
from typing import Awaitable

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Ports that free_port() handed out in this process, for nodes that may not listen on them yet: the kernel
# may give such a port to the next bind to port 0, so a link's listener must not keep one (a fault test's
# node once found its own port taken by a link, and its member addresses were no longer unique).
HANDED_OUT_PORTS: set[int] = set()
PASS, BLACKHOLE, RESET = "pass", "blackhole", "reset"
DROP_REQUESTS, DROP_RESPONSES = "drop_requests", "drop_responses"
MODES = (PASS, BLACKHOLE, RESET, DROP_REQUESTS, DROP_RESPONSES)
REQUEST, RESPONSE = "request", "response"
DROPPING_MODE = {REQUEST: DROP_REQUESTS, RESPONSE: DROP_RESPONSES}

CHUNK_BYTES = 64 * 1024
QUEUED_CHUNKS = 64
CONNECT_TIMEOUT_S = 2.0


@dataclasses.dataclass(frozen=True)
class LinkStats:
    """Counters of one link; requests flow src -> dst, responses dst -> src."""

    connections: int
    open_connections: int
    request_bytes_forwarded: int
    response_bytes_forwarded: int
    request_bytes_dropped: int
    response_bytes_dropped: int

    @property
    def bytes_forwarded(self) -> int:
        return self.request_bytes_forwarded + self.response_bytes_forwarded

    @property
    def bytes_dropped(self) -> int:
        return self.request_bytes_dropped + self.response_bytes_dropped


class _Connection:
    """One accepted client connection and, once it is made, its connection to the target."""

    def __init__(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter):
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.upstream_writer: asyncio.StreamWriter | None = None

    def abort(self, reset: bool) -> None:
        """Close both sockets at once, dropping unsent bytes; with `reset` the peers get an RST."""
        for writer in filter(None, (self.client_writer, self.upstream_writer)):
            sock = writer.get_extra_info("socket")
            if reset and sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    def close(self) -> None:
        for writer in filter(None, (self.client_writer, self.upstream_writer)):
            writer.close()


class Link:
    """One directed link src -> dst: a loopback listener forwarding to `target` with injectable faults.

    Its methods must run on the event loop thread; `ProxyNetwork` takes care of that.
    """

    def __init__(self, name: str, target: tuple[str, int]):
        host, port = target
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"link {name} must target a loopback address, not {host}")
        self.name = name
        self.target = (host, port)
        self.port = 0
        self.mode = PASS
        self._delay_mean_s = 0.0
        self._delay_jitter_s = 0.0
        self._rng = random.Random(0)
        self._unblocked = asyncio.Event()
        self._unblocked.set()
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, asyncio.Task] = {}
        self._accepted = 0
        self._forwarded = {REQUEST: 0, RESPONSE: 0}
        self._dropped = {REQUEST: 0, RESPONSE: 0}

    async def start(self) -> int:
        while True:
            self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
            self.port = self._server.sockets[0].getsockname()[1]
            if self.port not in HANDED_OUT_PORTS:
                break
            self._server.close()
            await self._server.wait_closed()
        logger.info("%s: listening on port %d, forwarding to %s:%d", self.name, self.port, *self.target)
        return self.port

    async def close(self) -> None:
        """Stop listening and abort every connection."""
        if self._server is not None:
            self._server.close()
        self._abort_all(reset=False)
        await asyncio.gather(*self._connections.values(), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown link mode {mode!r}; expected one of {', '.join(MODES)}")
        previous, self.mode = self.mode, mode
        if mode == RESET:
            self._abort_all(reset=True)
        elif previous == BLACKHOLE and mode != BLACKHOLE:
            self._abort_all(reset=False)  # held bytes are stale; their clients must reconnect
        if mode == BLACKHOLE:
            self._unblocked.clear()
        else:
            self._unblocked.set()
        if mode != previous:
            logger.info("%s: mode %s -> %s", self.name, previous, mode)

    def set_delay(self, mean_s: float, jitter_s: float, seed: int | str = 0) -> None:
        """Delay every chunk by mean_s ± a uniform jitter_s (never below zero), keeping byte order."""
        if mean_s < 0 or jitter_s < 0:
            raise ValueError(f"link {self.name}: delay mean and jitter must not be negative")
        self._delay_mean_s, self._delay_jitter_s = mean_s, jitter_s
        self._rng = random.Random(seed)

    def stats(self) -> LinkStats:
        return LinkStats(
            connections=self._accepted,
            open_connections=len(self._connections),
            request_bytes_forwarded=self._forwarded[REQUEST],
            response_bytes_forwarded=self._forwarded[RESPONSE],
            request_bytes_dropped=self._dropped[REQUEST],
            response_bytes_dropped=self._dropped[RESPONSE],
        )

    def _abort_all(self, reset: bool) -> None:
        for connection, task in list(self._connections.items()):
            connection.abort(reset)
            task.cancel()

    def _next_delay(self) -> float:
        if self._delay_mean_s == 0 and self._delay_jitter_s == 0:
            return 0.0
        jitter = self._rng.uniform(-self._delay_jitter_s, self._delay_jitter_s)
        return max(0.0, self._delay_mean_s + jitter)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(reader, writer)
        self._accepted += 1
        task = asyncio.get_running_loop().create_task(self._serve(connection))
        # a task cancelled before it starts never runs its finally block, so forget it here
        task.add_done_callback(lambda _: self._connections.pop(connection, None))
        self._connections[connection] = task

    async def _serve(self, connection: _Connection) -> None:
        try:
            await self._relay(connection)
        except OSError as error:
            logger.debug("%s: connection ended: %r", self.name, error)
        except Exception:
            logger.exception("%s: relaying a connection failed", self.name)
        finally:
            connection.close()

    async def _relay(self, connection: _Connection) -> None:
        if self.mode == RESET:
            connection.abort(reset=True)
            return
        await self._unblocked.wait()  # a connection made during a partition waits, then heal closes it
        try:
            upstream_reader, connection.upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), CONNECT_TIMEOUT_S
            )
        except (OSError, asyncio.TimeoutError) as error:
            logger.info("%s: cannot reach %s:%d (%r); resetting the client", self.name, *self.target, error)
            connection.abort(reset=True)
            return
        requests: asyncio.Queue = asyncio.Queue(QUEUED_CHUNKS)
        responses: asyncio.Queue = asyncio.Queue(QUEUED_CHUNKS)
        await _run_together(
            self._receive(connection.client_reader, requests),
            self._send(requests, connection.upstream_writer, REQUEST),
            self._receive(upstream_reader, responses),
            self._send(responses, connection.client_writer, RESPONSE),
        )

    async def _receive(self, reader: asyncio.StreamReader, queue: asyncio.Queue) -> None:
        """Queue each chunk read with its send time, never earlier than the chunk before it."""
        loop = asyncio.get_running_loop()
        send_at = 0.0
        while chunk := await reader.read(CHUNK_BYTES):
            send_at = max(send_at, loop.time() + self._next_delay())
            await queue.put((send_at, chunk))
        await queue.put(None)

    async def _send(self, queue: asyncio.Queue, writer: asyncio.StreamWriter, direction: str) -> None:
        """Write each queued chunk at its send time unless the link's mode holds or drops it."""
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            send_at, chunk = item
            await asyncio.sleep(max(0.0, send_at - loop.time()))
            await self._unblocked.wait()  # blackhole holds the chunk here
            if self.mode == DROPPING_MODE[direction]:
                self._dropped[direction] += len(chunk)
                continue
            writer.write(chunk)
            self._forwarded[direction] += len(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _run_together(*coroutines: Awaitable[None]) -> None:
    """Run coroutines as tasks until all finish or one fails; then cancel the rest and re-raise the failure."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
