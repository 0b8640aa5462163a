"""The room channel's gateway (DESIGN §5), on the ``websockets`` library, not Starlette: the
ASGI websocket path reached 0.3–0.7× of raw ``websockets.broadcast()`` on fan-out.

One :class:`Hub` per room with viewers in this process reads the room's topic from the broker
once and relays each event's frame, framed once as a WebSocket message too, to every
connection of the room. Writes are batched: a connection collects its messages and they go
to its socket in one write per round; a round starts as soon as the loop is free, but no
sooner than ``tick_s`` after the last, so a busy room's messages share writes and a quiet
room's go at once. Each connection's backlog is bounded (events and bytes);
a viewer that cannot keep up is closed with 4008 and comes back with ``since``, and the room
never waits for it.

Protocol: connect to ``/api/v1/rooms/{room_id}/channel`` (``?since=<seq>`` when resuming),
send ``{"op": "hello", "token": "<fan token>"}`` (no token: anonymous, read only), get a
``snapshot`` (or, resuming, every missed event in order; ``reset`` then a snapshot when they
are older than the history keeps), then events. Each later op carries a client ``id`` and is
answered ``ack`` or ``error`` with that id; a retried id gets the first answer again, and its
effect happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from accounts.errors import DomainError, NotFound
from live.channel import Channel, RateLimited, Viewer, body, topic
from store.broker import Broker, Event

log = logging.getLogger("lifeaccount.gateway")
PATH = re.compile(r"^/api/v1/rooms/(room_[0-9a-z]{10,40})/channel$")
CLOSE_SLOW = 4008  # DESIGN §5: could not keep up; come back with since
CLOSE_HELLO = 4001  # no hello, or a token that is not valid
CLOSE_ROOM = 4004  # no such room
MAX_OP_BYTES = 4096
ANSWERS_KEPT = 10_000  # recent ops' answers, for retries

Op = Callable[[str, Viewer, dict[str, Any]], Awaitable[dict[str, Any]]]


def ws_text(payload: bytes) -> bytes:
    """``payload`` as one unmasked, unfragmented WebSocket text frame (RFC 6455 section
    5.2), as a server sends it: built once per event, written to every viewer's socket."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


@dataclass(frozen=True)
class Limits:
    tick_s: float = 0.02  # the least time between two rounds of writes
    max_events: int = 1_000  # a connection's backlog, in messages…
    max_bytes: int = 1 << 20  # …and in bytes (the socket's unsent buffer included)
    hello_s: float = 10.0  # time to say hello
    tell_s: float = 1.0  # how often rooms hear their likes and viewer counts


@dataclass(eq=False)
class Viewing:
    """One connection: its batch of messages not yet written, and whether it fell behind."""

    ws: ServerConnection
    viewer: Viewer
    member: str
    dirty: set[Viewing]  # the gateway's: connections with something to write at the next round
    wake: Callable[[], None]  # the gateway's: a round of writes is due
    pending: deque[bytes] = field(default_factory=deque)
    pending_bytes: int = 0
    # The socket's unsent bytes after the last write. Until the next write they only drain
    # (websockets' own few-byte control frames aside), so they are asked of the transport
    # again only when this figure says the backlog may be over its bound.
    buffered: int = 0
    seq: int = 0  # the last event it was given
    # While it catches up (snapshot or missed events), the hub's live events wait here.
    early: list[Event] | None = field(default_factory=list)
    slow: bool = False

    def put(self, message: bytes, limits: Limits) -> None:
        # Called for every viewer of every event: kept to a few attribute reads.
        if self.slow:
            return
        dirty = self.dirty
        if not dirty:
            self.wake()
        dirty.add(self)
        pending = self.pending
        pending.append(message)
        self.pending_bytes += len(message)
        if len(pending) > limits.max_events or (
            self.pending_bytes + self.buffered > limits.max_bytes
        ):
            self.buffered = self._socket_buffer()
            if len(pending) > limits.max_events or (
                self.pending_bytes + self.buffered > limits.max_bytes
            ):
                self.slow = True
                pending.clear()
                self.pending_bytes = 0

    def flush(self) -> None:
        if not self.pending or self.ws.state is not State.OPEN:
            return
        transport = self.ws.transport
        if transport.is_closing():
            return
        transport.writelines(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        self.buffered = transport.get_write_buffer_size()

    def _socket_buffer(self) -> int:
        transport = self.ws.transport
        return 0 if transport.is_closing() else transport.get_write_buffer_size()


@dataclass(eq=False)
class Hub:
    """A room's viewers in this process, fed from the broker by one reader."""

    room_id: str
    gateway: Gateway
    viewings: set[Viewing] = field(default_factory=set)
    seq: int = 0  # the last event relayed
    reader: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self.reader = asyncio.create_task(self._read())
        self.reader.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "room %s: its channel reader stopped", self.room_id, exc_info=task.exception()
            )

    async def _read(self) -> None:
        broker = self.gateway.broker
        name = topic(self.room_id)
        async with broker.subscribe(name) as sub:
            self.seq = await broker.last_seq(name)
            self.ready.set()
            while True:
                event = await sub.get()
                if event.seq <= self.seq:
                    continue
                if event.seq > self.seq + 1:
                    missed = await broker.since(name, self.seq)
                    if missed is None:
                        await self._reset_all()
                        self.seq = event.seq
                        continue
                    for gap in missed:
                        if gap.seq < event.seq:
                            self._relay(gap)
                self._relay(event)

    def _relay(self, event: Event) -> None:
        self.seq = event.seq
        message = ws_text(event.frame)
        limits = self.gateway.limits
        for viewing in self.viewings:
            if viewing.early is not None:
                viewing.early.append(event)
            elif event.seq > viewing.seq:
                viewing.seq = event.seq
                viewing.put(message, limits)

    async def _reset_all(self) -> None:
        for viewing in list(self.viewings):
            await self.gateway.reset(self, viewing)


class Gateway:
    """The websocket listener and its rooms' hubs."""

    def __init__(
        self,
        channel: Channel,
        broker: Broker,
        *,
        limits: Limits | None = None,
        ops: dict[str, Op] | None = None,
    ) -> None:
        self.channel = channel
        self.broker = broker
        self.limits = limits or Limits()
        self.ops: dict[str, Op] = (
            ops if ops is not None else {"chat": channel.chat, "like": channel.like}
        )
        self.hubs: dict[str, Hub] = {}
        # Recent ops' answers by (room, who, client id): a retry gets the first answer.
        # Held as futures from the op's start, so a retry racing it waits for the same answer.
        self.answers: OrderedDict[tuple[str, str, str], asyncio.Future[bytes]] = OrderedDict()
        self.server: Server | None = None
        self._writing: asyncio.TimerHandle | asyncio.Handle | None = None  # the next round
        self._wrote_at = 0.0  # loop time of the last round
        self._teller: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._dirty: set[Viewing] = set()
        self._members = 0

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> int:
        """Listen on ``host:port`` (0: any free port), or on ``sock`` already bound; the
        port."""
        where: dict[str, Any] = {"sock": sock} if sock is not None else {"host": host, "port": port}
        self.server = await serve(
            self._connection,
            **where,
            compression=None,  # frames are built once, unmasked and uncompressed
            max_size=MAX_OP_BYTES,
            ping_interval=20,
            ping_timeout=20,
        )
        self._teller = asyncio.create_task(self._tell())
        sockets = list(self.server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._teller is not None:
            self._teller.cancel()
        if self._writing is not None:
            self._writing.cancel()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for hub in self.hubs.values():
            if hub.reader is not None:
                hub.reader.cancel()
        self.hubs.clear()

    def _wake(self) -> None:
        """A connection has a first message for the next round: schedule the round, at once
        (after what the loop is running: a burst of events relayed meanwhile shares it) or
        ``tick_s`` after the last round, whichever is later."""
        if self._writing is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._wrote_at + self.limits.tick_s - loop.time()
        if wait > 0:
            self._writing = loop.call_later(wait, self._write)
        else:
            self._writing = loop.call_soon(self._write)

    def _write(self) -> None:
        """A round: each connection with messages gets them in one write."""
        self._writing = None
        self._wrote_at = asyncio.get_running_loop().time()
        dirty = list(self._dirty)  # the same set object: every connection holds it
        self._dirty.clear()
        for viewing in dirty:
            if viewing.slow:
                self._close_later(viewing, CLOSE_SLOW, "too slow; reconnect with since")
            else:
                viewing.flush()

    async def _tell(self) -> None:
        while True:
            await asyncio.sleep(self.limits.tell_s)  # the period of the round, not a wait
            try:
                await self.channel.tell(list(self.hubs))
            except Exception:
                log.exception("telling rooms their likes and viewers failed; next round")

    def _close_later(self, viewing: Viewing, code: int, reason: str) -> None:
        task = asyncio.create_task(viewing.ws.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _connection(self, ws: ServerConnection) -> None:
        request = ws.request
        if request is None:
            return
        url = urlsplit(request.path)
        match = PATH.match(url.path)
        if match is None:
            await ws.close(CLOSE_ROOM, "no such channel")
            return
        room_id = match.group(1)
        since = _since(parse_qs(url.query).get("since", [""])[0])
        try:
            await self.channel.room(room_id)
            viewer = await self._hello(ws, room_id)
        except NotFound:
            await ws.close(CLOSE_ROOM, "no such room")
            return
        except DomainError as exc:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_error(None, exc).decode())
                await ws.close(CLOSE_HELLO, exc.code)
            return
        except (TimeoutError, ConnectionClosed):
            with contextlib.suppress(ConnectionClosed):
                await ws.close(CLOSE_HELLO, "say hello first")
            return
        hub = await self._hub(room_id)
        self._members += 1
        viewing = Viewing(
            ws, viewer, member=f"c{self._members}", dirty=self._dirty, wake=self._wake
        )
        hub.viewings.add(viewing)
        name = topic(room_id)
        try:
            await self.broker.enter(name, viewing.member)
            await self._catch_up(hub, viewing, since)
            async for raw in ws:
                await self._op(hub, viewing, raw)
        except ConnectionClosed:
            pass
        finally:
            hub.viewings.discard(viewing)
            await self.broker.leave(name, viewing.member)
            if not hub.viewings:
                self._drop(hub)

    async def _hello(self, ws: ServerConnection, room_id: str) -> Viewer:
        async with asyncio.timeout(self.limits.hello_s):
            raw = await ws.recv()
        try:
            hello = orjson.loads(raw)
        except orjson.JSONDecodeError:
            hello = None
        if not isinstance(hello, dict) or hello.get("op") != "hello":
            raise DomainError('the first message is {"op": "hello"}', code="hello_required")
        token = hello.get("token")
        if token is not None and not isinstance(token, str):
            raise DomainError("token is a string", code="token_invalid", field="token")
        return await self.channel.viewer(token, room_id)

    async def _hub(self, room_id: str) -> Hub:
        hub = self.hubs.get(room_id)
        if hub is None:
            hub = self.hubs[room_id] = Hub(room_id, self)
            hub.start()
        await hub.ready.wait()
        return hub

    def _drop(self, hub: Hub) -> None:
        if self.hubs.get(hub.room_id) is hub:
            del self.hubs[hub.room_id]
            self.channel.forget(hub.room_id)
        if hub.reader is not None:
            hub.reader.cancel()

    async def _catch_up(self, hub: Hub, viewing: Viewing, since: int | None) -> None:
        """Give a new connection what it missed, or a snapshot; then it is live."""
        name = topic(hub.room_id)
        if since is not None:
            missed = await self.broker.since(name, since)
            if missed is not None:
                viewing.seq = since
                self._give(viewing, missed)
                self._live(viewing)
                return
            viewing.put(ws_text(body("reset", {"since": since}, self.channel.now())), self.limits)
        await self._snapshot(hub, viewing)

    async def _snapshot(self, hub: Hub, viewing: Viewing) -> None:
        seq, snapshot = await self.channel.snapshot(hub.room_id)
        viewing.seq = seq
        viewing.put(ws_text(snapshot), self.limits)
        self._live(viewing)

    def _give(self, viewing: Viewing, events: list[Event]) -> None:
        for event in events:
            if event.seq > viewing.seq:
                viewing.seq = event.seq
                viewing.put(ws_text(event.frame), self.limits)

    def _live(self, viewing: Viewing) -> None:
        """Caught up: the events that came meanwhile follow, then the hub relays to it."""
        early, viewing.early = viewing.early or [], None
        self._give(viewing, early)

    async def reset(self, hub: Hub, viewing: Viewing) -> None:
        viewing.early = []
        now = self.channel.now()
        viewing.put(ws_text(body("reset", {"since": viewing.seq}, now)), self.limits)
        await self._snapshot(hub, viewing)

    async def _op(self, hub: Hub, viewing: Viewing, raw: str | bytes) -> None:
        try:
            op = orjson.loads(raw)
        except orjson.JSONDecodeError:
            op = None
        if not isinstance(op, dict):
            error = DomainError("send a JSON object", code="bad_op")
            viewing.put(ws_text(_error(None, error)), self.limits)
            return
        op_id = op.get("id")
        if not isinstance(op_id, str) or not 1 <= len(op_id) <= 64:
            error = DomainError("each op carries an 'id' of 1 to 64 characters", code="bad_op")
            viewing.put(ws_text(_error(None, error)), self.limits)
            return
        key = (hub.room_id, viewing.viewer.fan_id or viewing.member, op_id)
        answer = self.answers.get(key)
        if answer is None:
            answer = self.answers[key] = asyncio.get_running_loop().create_future()
            while len(self.answers) > ANSWERS_KEPT:
                self.answers.popitem(last=False)
            try:
                answer.set_result(await self._run(hub, viewing, op, op_id))
            except BaseException:
                self.answers.pop(key, None)  # not answered: a retry runs it
                answer.cancel()
                raise
        viewing.put(await asyncio.shield(answer), self.limits)

    async def _run(self, hub: Hub, viewing: Viewing, op: dict[str, Any], op_id: str) -> bytes:
        name = op.get("op")
        handler = self.ops.get(name) if isinstance(name, str) else None
        if handler is None:
            known = ", ".join(sorted(self.ops))
            error = DomainError(f"unknown op {name!r}; ops: {known}", code="unknown_op")
            return ws_text(_error(op_id, error))
        try:
            result = await handler(hub.room_id, viewing.viewer, op)
        except DomainError as exc:
            return ws_text(_error(op_id, exc))
        return ws_text(orjson.dumps({"type": "ack", "id": op_id, "ok": True, "result": result}))


def _since(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 16 else None


def _error(op_id: str | None, exc: DomainError) -> bytes:
    answer: dict[str, Any] = {"type": "error", "id": op_id, "code": exc.code, "message": exc.detail}
    if exc.field is not None:
        answer["field"] = exc.field
    if isinstance(exc, RateLimited):
        answer["retry_after_s"] = exc.retry_after_s
    return orjson.dumps(answer)
