"""A small HTTP/1.1 keep-alive load generator on raw asyncio protocols.

One connection per virtual client and one request in flight on each, so concurrency is exactly
the number of connections. Responses are framed by ``Content-Length`` only, which is what
uvicorn sends for every body this API returns; anything else counts as an error. The client
does as little per request as it can (prebuilt request bytes, no header dict, one timer task
for all timeouts) so that, on a small machine, it is not the bottleneck sooner than it has to be.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

MakeRequest = Callable[[int], bytes]  # request index -> the raw request
OnResponse = Callable[[int, int, bytes], None]  # request index, status, body
CpuProbe = Callable[[], float]  # CPU seconds used so far by some process


class ProtocolError(Exception):
    """The server answered with framing this client does not read."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends raw bytes and awaits (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.started = 0.0  # perf_counter() of the request in flight, 0.0 when idle
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._status = 0
        self._body_at = 0
        self._body_len = -1  # -1: still reading the head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(ConnectionError(f"connection lost: {exc or 'closed by the server'}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._parse()
        except (ProtocolError, ValueError) as exc:
            self._fail(ProtocolError(str(exc)))
            self.abort()

    def _parse(self) -> None:
        buf = self._buffer
        if self._body_len < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).split(b"\r\n")
            self._status = int(head[0][9:12])
            length = -1
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise ProtocolError("chunked responses are not read by this client")
            if length < 0:
                if self._status not in (204, 304):
                    raise ProtocolError(f"a {self._status} answer without Content-Length")
                length = 0
            self._body_at, self._body_len = end + 4, length
        total = self._body_at + self._body_len
        if len(buf) < total:
            return
        body = bytes(buf[self._body_at : total])
        del buf[:total]
        self._body_len = -1
        waiter, self._waiter = self._waiter, None
        self.started = 0.0
        if waiter is None or waiter.done():
            raise ProtocolError("an answer nobody asked for")
        waiter.set_result((self._status, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.started = 0.0
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        if self.transport is None:
            raise ConnectionError("not connected")
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.started = time.perf_counter()
        self.transport.write(raw)
        return waiter

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> Connection:
    _, conn = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return conn


async def fetch(host: str, port: int, raw: bytes, timeout_s: float) -> tuple[int, bytes]:
    """One request on a fresh connection (set-up and health checks, not measured)."""
    async with asyncio.timeout(timeout_s):
        conn = await connect(host, port)
        try:
            return await conn.request(raw)
        finally:
            conn.close()


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list; 0.0 when it is empty."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_s() -> float | None:
    """CPU seconds every core spent not idle (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(t) for t in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    requests: int = 0  # answers received (any status) plus failed exchanges
    errors: int = 0  # non-2xx answers, timeouts, broken connections
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # ascending, every answer
    statuses: Counter[str] = field(default_factory=Counter)
    error_sample: str = ""
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    machine_busy_s: float | None = None  # every process on every core, to expose other load

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000.0


class LoadGenerator:
    """``concurrency`` keep-alive connections driven as fast as each one is answered."""

    def __init__(self, host: str, port: int, concurrency: int, timeout_s: float = 10.0) -> None:
        self.host, self.port = host, port
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._conns: list[Connection] = []

    async def open(self) -> None:
        opened = await asyncio.gather(
            *(connect(self.host, self.port) for _ in range(self.concurrency)),
            return_exceptions=True,
        )
        self._conns = [c for c in opened if isinstance(c, Connection)]
        failed = [e for e in opened if isinstance(e, BaseException)]
        if failed:
            self.close()
            raise failed[0]

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns = []

    async def _watchdog(self) -> None:
        # One timer for every connection: cheaper than a timeout handle per request.
        while True:
            await asyncio.sleep(0.25)
            limit = time.perf_counter() - self.timeout_s
            for conn in self._conns:
                if 0.0 < conn.started < limit:
                    conn.abort()

    async def run(
        self,
        make: MakeRequest,
        *,
        seconds: float,
        max_requests: int,
        on_response: OnResponse | None = None,
        server_cpu: CpuProbe | None = None,
    ) -> LoadResult:
        """Send requests ``make(0)``, ``make(1)``, … until ``seconds`` pass or ``max_requests``
        are sent; every connection finishes its request in flight, so the run is bounded by
        ``seconds + timeout_s``."""
        result = LoadResult()
        latencies = result.latencies_s
        statuses = result.statuses
        counter = itertools.count()
        perf = time.perf_counter

        async def client(slot: int) -> None:
            conn = self._conns[slot]
            while True:
                i = next(counter)
                if i >= max_requests or perf() >= deadline:
                    return
                raw = make(i)
                t0 = perf()
                try:
                    status, body = await conn.request(raw)
                except (ConnectionError, ProtocolError, OSError) as exc:
                    result.requests += 1
                    result.errors += 1
                    statuses[type(exc).__name__] += 1
                    result.error_sample = result.error_sample or repr(exc)
                    conn.abort()
                    try:
                        conn = self._conns[slot] = await connect(self.host, self.port)
                    except OSError:
                        return
                    continue
                latencies.append(perf() - t0)
                result.requests += 1
                statuses[str(status)] += 1
                if not 200 <= status < 300:
                    result.errors += 1
                    if not result.error_sample:
                        result.error_sample = f"{status} {body[:300].decode(errors='replace')}"
                if on_response is not None:
                    on_response(i, status, body)

        watchdog = asyncio.create_task(self._watchdog())
        cpu0, server0 = _own_cpu_s(), server_cpu() if server_cpu else 0.0
        busy0 = _machine_busy_s()
        start = perf()
        deadline = start + seconds
        try:
            await asyncio.gather(*(client(slot) for slot in range(len(self._conns))))
        finally:
            watchdog.cancel()
        result.seconds = perf() - start
        result.client_cpu_s = _own_cpu_s() - cpu0
        if server_cpu is not None:
            result.server_cpu_s = server_cpu() - server0
        busy1 = _machine_busy_s()
        if busy0 is not None and busy1 is not None:
            result.machine_busy_s = busy1 - busy0
        latencies.sort()
        return result
