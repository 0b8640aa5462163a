"""Many WebSocket viewers on raw asyncio protocols, in a process of its own.

    python -m bench.wsload     # run by bench.channel; one JSON object a line on stdin and stdout

Each viewer does the least a client can: an RFC 6455 opening handshake, the hello as one
masked text frame, then it reads the server's unmasked frames straight out of each chunk
the loop hands it (no per-message objects, no UTF-8 check, no JSON parse). A message whose
payload ends ``"due":<ns>}}`` carries the time it was due to be published
(``time.monotonic_ns``: CLOCK_MONOTONIC, one clock for every process on the machine); the
chunk's arrival time minus that is its latency. One clock read per chunk, one slot of a fixed
histogram per message. Messages that start ``{"seq":N`` are checked to come in seq order
without gaps.

``{"open": {...}}`` opens viewers, ``{"window": [t0, t1]}`` sets the measured span (messages
received from ``t0`` until ``t1``, monotonic ns), ``{"resume": null}`` lets the stalled
viewers read again, ``{"report": null}`` answers their tallies, ``{"close": null}`` closes
them; end of input ends the process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

HOST = "127.0.0.1"
KEY = base64.b64encode(b"bench.wsload-key").decode()
ACCEPT = base64.b64encode(
    hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
)
# Histogram slots of 2**SHIFT ns (8.2 µs) up to TOP slots (8.6 s); later ones go to the last.
SHIFT = 13
TOP = 1 << 20
STAMP = b'"due":'
SEQ = b'{"seq":'
OPEN_AT_ONCE = 64  # handshakes in flight: the listen backlog is 100
JOIN_TIMEOUT_S = 60.0


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (RFC 6455 section 5.3): masked, with the all-zero key, so the payload
    goes as it is. Payloads here are under 126 bytes."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


HELLO = masked(0x1, b'{"op":"hello"}')


@dataclass
class Tally:
    """What one group of viewers (readers, or the stalled ones) got."""

    t0: int = 0
    t1: int = 0
    received: int = 0  # stamped messages received inside the window
    due_inside: int = 0  # stamped messages due inside the window, received at any time
    stamped: int = 0  # stamped messages received at any time
    other: int = 0  # messages without a stamp (a snapshot, a viewer count)
    gaps: int = 0  # a seq more than one past the last
    disorder: int = 0  # a seq not past the last
    hist: list[int] = field(default_factory=lambda: [0] * (TOP + 1))
    closes: Counter[str] = field(default_factory=Counter)  # how connections ended

    def report(self, open_now: int) -> dict[str, Any]:
        return {
            "received": self.received,
            "due_inside": self.due_inside,
            "stamped": self.stamped,
            "other": self.other,
            "gaps": self.gaps,
            "disorder": self.disorder,
            "hist": {str(i): n for i, n in enumerate(self.hist) if n},
            "closes": dict(self.closes),
            "open": open_now,
        }


class Viewer(asyncio.Protocol):
    """One connection: the handshake, then frames parsed as they come."""

    def __init__(self, request: bytes, tally: Tally, first: bool, stall: bool) -> None:
        self.request = request
        self.tally = tally
        self.first = first  # joined on the first message (a snapshot), else on the 101
        self.stall = stall
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.head = b""  # the handshake's answer while it is read
        self.upgraded = False
        self.rest = b""
        self.seq = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed:
            self.closed = True
            self.tally.closes["reset" if exc is not None else "eof"] += 1
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"lost while joining: {exc or 'eof'}"))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            data = self._handshake(data)
            if not data:
                return
        now = time.monotonic_ns()
        buf = self.rest + data if self.rest else data
        tally = self.tally
        t0, t1 = tally.t0, tally.t1
        counted = t0 <= now < t1
        hist = tally.hist
        pos, n = 0, len(buf)
        while n - pos >= 2:
            size = buf[pos + 1]  # a server's frames are not masked: the mask bit is 0
            if size < 126:
                start = pos + 2
            elif size == 126:
                if n - pos < 4:
                    break
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                size = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + size
            if end > n:
                break
            if buf[pos] == 0x81:  # a whole text message
                at = buf.rfind(STAMP, start, end)
                if at < 0:
                    tally.other += 1
                else:
                    tally.stamped += 1
                    if buf.startswith(SEQ, start):
                        seq = int(buf[start + 7 : buf.index(b",", start + 7, end)])
                        if self.seq and seq != self.seq + 1:
                            if seq > self.seq:
                                tally.gaps += 1
                            else:
                                tally.disorder += 1
                        self.seq = seq
                    due = int(buf[at + 6 : end - 2])
                    if t0 <= due < t1:
                        tally.due_inside += 1
                    if counted:
                        tally.received += 1
                        slot = (now - due) >> SHIFT
                        hist[slot if 0 <= slot < TOP else (TOP if slot > 0 else 0)] += 1
            else:
                self._control(buf[pos] & 0x0F, buf[start:end])
            pos = end
        self.rest = buf[pos:] if pos < n else b""
        if self.first and not self.joined.done():
            self.joined.set_result(None)

    def _handshake(self, data: bytes) -> bytes:
        """Reads the server's 101; what follows it, if anything."""
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self.head[:end], self.head[end + 4 :]
        self.head = b""
        if not head.startswith(b"HTTP/1.1 101 ") or ACCEPT not in head:
            self.joined.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
            self.abort()
            return b""
        self.upgraded = True
        assert self.transport is not None
        self.transport.write(HELLO)
        if self.stall:
            self.transport.pause_reading()
        if not self.first or self.stall:
            self.joined.set_result(None)
        return rest

    def _control(self, opcode: int, payload: bytes) -> None:
        if self.transport is None:
            return
        if opcode == 0x9:  # ping: pong with its payload
            self.transport.write(masked(0xA, payload))
        elif opcode == 0x8:  # close: its code, echoed back
            if not self.closed:
                self.closed = True
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.tally.closes[str(code)] += 1
            self.transport.write(masked(0x8, payload[:2]))
            self.transport.close()

    def resume(self) -> None:
        if self.transport is not None and self.stall:
            self.stall = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Says goodbye (1000) and lets the server close."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.tally.closes["1000 (ours)"] += 1
            self.transport.write(masked(0x8, (1000).to_bytes(2, "big")))
            self.transport.close()


class Load:
    def __init__(self) -> None:
        self.readers = Tally()
        self.stalled = Tally()
        self.viewers: list[Viewer] = []

    async def open(
        self, port: int, path: str, count: int, first: bool, stall: int
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        gate = asyncio.Semaphore(OPEN_AT_ONCE)

        async def one(k: int) -> None:
            stalls = k < stall
            tally = self.stalled if stalls else self.readers
            async with gate:
                _, viewer = await loop.create_connection(
                    lambda: Viewer(request, tally, first, stalls), HOST, port
                )
                self.viewers.append(viewer)
                async with asyncio.timeout(JOIN_TIMEOUT_S):
                    await viewer.joined

        began = time.perf_counter()
        done = await asyncio.gather(*(one(k) for k in range(count)), return_exceptions=True)
        failed = [d for d in done if isinstance(d, BaseException)]
        return {
            "opened": count - len(failed),
            "failed": len(failed),
            "error": repr(failed[0]) if failed else None,
            "seconds": round(time.perf_counter() - began, 3),
        }

    def window(self, t0: int, t1: int) -> None:
        for tally in (self.readers, self.stalled):
            tally.t0, tally.t1 = t0, t1
            tally.received = tally.due_inside = 0
            tally.hist = [0] * (TOP + 1)

    def report(self) -> dict[str, Any]:
        open_now = {True: 0, False: 0}
        for viewer in self.viewers:
            if not viewer.closed:
                open_now[viewer.tally is self.stalled] += 1
        return {
            "readers": self.readers.report(open_now[False]),
            "stalled": self.stalled.report(open_now[True]),
        }

    async def close(self) -> int:
        for viewer in self.viewers:
            viewer.close()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(v.transport for v in self.viewers):
            await asyncio.sleep(0.05)  # polling the transports' own close
        for viewer in self.viewers:
            viewer.abort()
        closed, self.viewers = len(self.viewers), []
        return closed


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    load = Load()
    while line := await reader.readline():
        request = json.loads(line)
        reply: dict[str, Any] = {}
        if "open" in request:
            asked = request["open"]
            reply = await load.open(
                asked["port"], asked["path"], asked["count"], asked["first"], asked["stall"]
            )
        elif "window" in request:
            load.window(*request["window"])
        elif "resume" in request:
            for viewer in load.viewers:
                viewer.resume()
        elif "report" in request:
            reply = load.report()
        elif "close" in request:
            reply = {"closed": await load.close()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        await load.close()


def main() -> None:
    import uvloop  # the cheapest loop per chunk, so the clients saturate last

    uvloop.run(serve())


if __name__ == "__main__":
    main()
