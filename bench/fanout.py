"""The two servers ``bench.channel`` compares, each in a process of its own, on uvloop (the
loop ``lifeaccount serve`` runs the gateway on), with a publisher inside.

    python -m bench.fanout ours|raw     # run by bench.channel; JSON lines on stdin and stdout

- ``ours``: the real :class:`webapp.gateway.Gateway` with its default limits over a real
  :class:`live.channel.Channel`, on a real SQLite store in a temporary dir holding one live
  room, and the in-process broker. The publisher publishes chat events to the room's topic
  (``broker.publish(topic(room_id), body("chat", …))``), as ``Channel.chat`` does once an op
  has passed its checks; the gateway relays them.
- ``raw``: plain ``websockets`` (the same version, ``compression=None``, the same keepalive):
  a handler keeps each connection in a set after its hello, and the publisher calls
  ``websockets.asyncio.server.broadcast(connections, message, text=True)`` with the same
  JSON (``{"seq":N,"type":"chat","at":…,"data":{…}}``, built once by orjson).

Each chat event's data ends with ``"due"``: the ``time.monotonic_ns()`` its slot on the
publisher's schedule came.
The first line out is ``{"port": …, "path": …}``; then ``{"publish": {"rate": r, "pad": n,
"window": [t0, t1]}}`` starts the publisher (``pad`` bytes more in each text),
``{"stop": null}`` stops it and answers what it published, ``{"count": null}`` answers how
many connections the server holds; end of input ends the process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve

from accounts import schema as accounts_schema
from accounts.accounts import create_account
from content import schema as content_schema
from content.sensitive import ReviewPolicy
from live import rooms
from live import schema as live_schema
from live.channel import Channel, body, topic
from store.broker import MemoryBroker
from store.clock import rfc3339, utc_now
from store.sqlite import SQLiteStore
from webapp.gateway import Gateway

HOST = "127.0.0.1"
SECRET = b"b" * 32
TEXT = "主播这款多少钱？有没有优惠券，能不能便宜一点"  # a chat line of everyday length
BEHIND_S = 0.5  # a publisher this far behind its schedule drops the slots it missed


@dataclass
class Fanout:
    """A server under test: where it listens, how to publish to its viewers, its count."""

    port: int
    path: str
    publish: Callable[[dict[str, Any]], Awaitable[int]]  # the message's size, in bytes
    count: Callable[[], int]
    stop: Callable[[], Awaitable[None]]


async def ours(data_dir: Path) -> Fanout:
    store = SQLiteStore(data_dir / "bench.db")
    await store.ensure_indexes(
        [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]
    )
    now = utc_now()
    account = await create_account(store, name="Bench Tea", handle="bench-tea", now=now)
    room = await rooms.create_room(store, account.id, title="bench", now=now)
    await rooms.go_live(store, room.id, now=now)
    broker = MemoryBroker()
    channel = Channel(store, broker, SECRET, utc_now, ReviewPolicy(store))
    gateway = Gateway(channel, broker)
    port = await gateway.start(HOST, 0)
    name = topic(room.id)

    async def publish(data: dict[str, Any]) -> int:
        event = await broker.publish(name, body("chat", data, utc_now()))
        return len(event.frame)

    async def stop() -> None:
        await gateway.stop()
        await store.close()

    def count() -> int:
        return sum(len(hub.viewings) for hub in gateway.hubs.values())

    return Fanout(port, f"/api/v1/rooms/{room.id}/channel", publish, count, stop)


async def raw() -> Fanout:
    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the hello, which our viewers send too
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    server = await serve(
        handler, HOST, 0, compression=None, max_size=4096, ping_interval=20, ping_timeout=20
    )
    seq = 0

    async def publish(data: dict[str, Any]) -> int:
        nonlocal seq
        seq += 1
        event = {"seq": seq, "type": "chat", "at": rfc3339(utc_now()), "data": data}
        message = orjson.dumps(event)
        broadcast(connections, message, text=True)
        return len(message)

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    port = int(next(iter(server.sockets)).getsockname()[1])
    return Fanout(
        port, "/api/v1/rooms/room_bench000000/channel", publish, lambda: len(connections), stop
    )


@dataclass
class Published:
    total: int = 0  # events published
    due_inside: int = 0  # events due inside the window, published or dropped
    dropped_inside: int = 0  # of those, dropped
    size: int = 0  # bytes of the last event's JSON
    behind_max_s: float = 0.0  # the most an event went out after it was due


async def publisher(
    fanout: Fanout, rate: float, pad: int, window: tuple[int, int], out: Published
) -> None:
    """Publishes ``rate`` events a second on a fixed schedule, each stamped with the time it
    was due, so a server that holds its publisher back is charged the wait (no coordinated
    omission); a late event goes at once, and a publisher BEHIND_S late drops the slots it
    missed."""
    period = round(1e9 / rate)
    text = TEXT + " " * bool(pad) + "x" * pad
    due = time.monotonic_ns()
    n = 0
    while True:
        now = time.monotonic_ns()
        if now < due:
            while (now := time.monotonic_ns()) < due:  # the loop's timers may fire early
                await asyncio.sleep((due - now) / 1e9)  # the schedule itself
        else:
            await asyncio.sleep(0)  # late: still let the loop run (a broadcast never yields)
            behind = time.monotonic_ns() - due
            out.behind_max_s = max(out.behind_max_s, behind / 1e9)
            if behind > BEHIND_S * 1e9:
                for _ in range(behind // period):
                    inside = window[0] <= due < window[1]
                    out.due_inside += inside
                    out.dropped_inside += inside
                    due += period
        n += 1
        data = {"fan_id": "fan_bench", "name": f"观众{n % 1000}", "text": text, "due": due}
        out.size = await fanout.publish(data)
        out.total += 1
        out.due_inside += window[0] <= due < window[1]
        due += period


async def run(kind: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with tempfile.TemporaryDirectory(prefix="bench-channel-") as tmp:
        fanout = await (ours(Path(tmp)) if kind == "ours" else raw())
        say({"port": fanout.port, "path": fanout.path})
        task: asyncio.Task[None] | None = None
        published = Published()
        try:
            while line := await reader.readline():
                request = json.loads(line)
                if "publish" in request:
                    asked = request["publish"]
                    published = Published()
                    window = (int(asked["window"][0]), int(asked["window"][1]))
                    task = asyncio.create_task(
                        publisher(
                            fanout, float(asked["rate"]), int(asked["pad"]), window, published
                        )
                    )
                    say({})
                elif "stop" in request:
                    if task is not None:
                        task.cancel()
                    say(vars(published) | {"behind_max_s": round(published.behind_max_s, 4)})
                elif "count" in request:
                    say({"connections": fanout.count()})
        finally:
            if task is not None:
                task.cancel()
            await fanout.stop()


def say(reply: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


def main() -> None:
    import uvloop  # as uvicorn picks it for `lifeaccount serve`

    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind not in ("ours", "raw"):
        sys.exit("usage: python -m bench.fanout ours|raw")
    uvloop.run(run(kind))


if __name__ == "__main__":
    main()
