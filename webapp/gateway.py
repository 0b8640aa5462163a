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
from collections import deque
from collections.abc import Iterable
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
from webapp.embedding import embed_origins, origin_of

log = logging.getLogger("lifeaccount.gateway")
PATH = re.compile(r"^/api/v1/rooms/(room_[0-9a-z]{10,40})/channel$")
CLOSE_SLOW = 4008  # DESIGN §5: could not keep up; come back with since
CLOSE_HELLO = 4001  # no hello, or a token that is not valid
CLOSE_ROOM = 4004  # no such room
CLOSE_ORIGIN = 4003  # a page on an origin the room's account does not embed on
MAX_OP_BYTES = 4096


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
    tick_s: float = 0.002  # the least time between two rounds of writes
    max_events: int = 1_000  # a connection's backlog, in messages…
    max_bytes: int = 1 << 20  # …and in bytes (the socket's unsent buffer included)
    hello_s: float = 10.0  # time to say hello
    tell_s: float = 1.0  # how often rooms hear their likes and viewer counts
    close_s: float = 10.0  # a closing viewer that reads nothing more is cut off after this


@dataclass(eq=False)
class Viewing:
    """One connection: its batch of messages not yet written, and whether it fell behind.

    A connection that has every event its hub relayed, and nothing of its own to write,
    *rides* the hub: the hub keeps one batch of the round's messages for all its riders, and
    no per-connection work is done per event. It gets off (the batch so far becomes its own)
    before anything of its own is put, so its messages keep their order."""

    ws: ServerConnection
    viewer: Viewer
    member: str
    hub: Hub
    pending: deque[bytes] = field(default_factory=deque)
    pending_bytes: int = 0
    # The socket's unsent bytes after the last write. Until the next write they only drain
    # (websockets' own few-byte control frames aside), so they are asked of the transport
    # again only when this figure says the backlog may be over its bound.
    buffered: int = 0
    seq: int = 0  # the last event it was given (a rider: its hub's seq, set at each write)
    # While it catches up (snapshot or missed events), the hub's live events wait here.
    early: list[Event] | None = field(default_factory=list)
    slow: bool = False
    rides: bool = False

    def put(self, message: bytes, limits: Limits) -> None:
        if self.slow:
            return
        if self.rides:
            self.hub.get_off(self)
        self.hub.gateway.dirty(self)
        self.pending.append(message)
        self.pending_bytes += len(message)
        if not self.fits(len(self.pending), self.pending_bytes, limits):
            self.slow = True
            self.pending.clear()
            self.pending_bytes = 0

    def fits(self, count: int, size: int, limits: Limits) -> bool:
        """Whether a backlog of ``count`` messages and ``size`` bytes is within bounds, the
        socket's unsent bytes included."""
        if count <= limits.max_events and size + self.buffered <= limits.max_bytes:
            return True
        self.buffered = self._socket_buffer()
        return count <= limits.max_events and size + self.buffered <= limits.max_bytes

    def flush(self) -> None:
        if self.pending:
            self.write(self.pending)
            self.pending.clear()
            self.pending_bytes = 0

    def write(self, messages: Iterable[bytes]) -> None:
        if self.ws.state is not State.OPEN:
            return
        transport = self.ws.transport
        if transport.is_closing():
            return
        transport.writelines(messages)
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
    riders: set[Viewing] = field(default_factory=set)  # of viewings: see Viewing
    loose: set[Viewing] = field(default_factory=set)  # the other viewings
    batch: list[bytes] = field(default_factory=list)  # the riders' messages of this round
    batch_bytes: int = 0
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

    def add(self, viewing: Viewing) -> None:
        self.viewings.add(viewing)
        self.loose.add(viewing)

    def discard(self, viewing: Viewing) -> None:
        self.viewings.discard(viewing)
        self.riders.discard(viewing)
        self.loose.discard(viewing)

    def get_off(self, viewing: Viewing) -> None:
        """``viewing`` stops riding: what it rode so far this round becomes its own."""
        self.riders.discard(viewing)
        if viewing in self.viewings:
            self.loose.add(viewing)
        viewing.rides = False
        viewing.seq = self.seq
        if self.batch:
            self.gateway.dirty(viewing)
            viewing.pending.extend(self.batch)
            viewing.pending_bytes += self.batch_bytes

    def _relay(self, event: Event) -> None:
        self.seq = event.seq
        message = ws_text(event.frame)
        if self.riders:
            if not self.batch:
                self.gateway.batched(self)
            self.batch.append(message)
            self.batch_bytes += len(message)
        limits = self.gateway.limits
        for viewing in self.loose:
            if viewing.early is not None:
                viewing.early.append(event)
            elif event.seq > viewing.seq:
                viewing.seq = event.seq
                viewing.put(message, limits)

    def write(self, limits: Limits) -> list[Viewing]:
        """The round's batch to every rider, each held to its bounds as if it were its own
        backlog; the riders found too slow."""
        batch, size = self.batch, self.batch_bytes
        self.batch, self.batch_bytes = [], 0
        slow = []
        for viewing in self.riders:
            viewing.seq = self.seq
            if viewing.fits(len(batch), size, limits):
                viewing.write(batch)
            else:
                viewing.slow = True
                slow.append(viewing)
        for viewing in slow:
            self.get_off(viewing)
        return slow

    def board(self, viewing: Viewing) -> None:
        """After a write: a live connection with every event and nothing pending rides."""
        if (
            viewing.early is None
            and not viewing.slow
            and not viewing.pending
            and viewing.seq == self.seq
            and not self.batch
            and viewing in self.loose
        ):
            self.loose.discard(viewing)
            self.riders.add(viewing)
            viewing.rides = True

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
        base_url: str = "",
    ) -> None:
        self.channel = channel
        self.broker = broker
        self.limits = limits or Limits()
        # This deployment's pages' origin (the configured public URL's); unset, a page on the
        # host the connection came to (on any of its ports) is ours.
        self.own_origin = origin_of(base_url) if base_url else None
        self.hubs: dict[str, Hub] = {}
        # Ops running now by (room, who, client id): a retry racing one waits for its answer.
        # Once answered, the broker keeps the answer (Channel.perform), for every process.
        self.running: dict[tuple[str, str, str], asyncio.Future[bytes]] = {}
        self.server: Server | None = None
        self._writing: asyncio.TimerHandle | asyncio.Handle | None = None  # the next round
        self._wrote_at = 0.0  # loop time of the last round
        self._teller: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._dirty: set[Viewing] = set()  # connections with messages of their own
        self._batched: set[Hub] = set()  # hubs with a batch for their riders
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

    def dirty(self, viewing: Viewing) -> None:
        """``viewing`` has messages of its own for the next round."""
        self._dirty.add(viewing)
        self._wake()

    def batched(self, hub: Hub) -> None:
        """``hub`` has a batch for its riders for the next round."""
        self._batched.add(hub)
        self._wake()

    def _wake(self) -> None:
        """Schedule the next round, at once (after what the loop is running: a burst of
        events relayed meanwhile shares it) or ``tick_s`` after the last, whichever is later."""
        if self._writing is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._wrote_at + self.limits.tick_s - loop.time()
        if wait > 0:
            self._writing = loop.call_later(wait, self._write)
        else:
            self._writing = loop.call_soon(self._write)

    def _write(self) -> None:
        """A round: each connection with messages gets them in one write. Riders first: a
        connection that boards after its own write rides from the next batch."""
        self._writing = None
        hubs, dirty = list(self._batched), list(self._dirty)
        self._batched.clear()
        self._dirty.clear()
        for hub in hubs:
            for viewing in hub.write(self.limits):
                self._close_later(viewing, CLOSE_SLOW, "too slow; reconnect with since")
        for viewing in dirty:
            if viewing.slow:
                self._close_later(viewing, CLOSE_SLOW, "too slow; reconnect with since")
            else:
                viewing.flush()
                viewing.hub.board(viewing)
        self._wrote_at = asyncio.get_running_loop().time()

    async def _tell(self) -> None:
        while True:
            await asyncio.sleep(self.limits.tell_s)  # the period of the round, not a wait
            try:
                await self.channel.tell(list(self.hubs))
                await self.channel.sweep_packets()
            except Exception:
                log.exception("telling rooms their likes, viewers and packets failed; next round")

    def _close_later(self, viewing: Viewing, code: int, reason: str) -> None:
        task = asyncio.create_task(self._close(viewing.ws, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, ws: ServerConnection, code: int, reason: str) -> None:
        """Close ``ws`` with ``code``; the close frame waits behind what its socket holds,
        so a client that never reads again is cut off (its buffers let go) after a while."""
        try:
            async with asyncio.timeout(self.limits.close_s):
                await ws.close(code, reason)
        except TimeoutError:
            log.info("a viewer that stopped reading was cut off after %.0f s", self.limits.close_s)
            ws.transport.abort()

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
            room = await self.channel.room(room_id)
            if not await self._origin_allowed(
                request.headers.get("Origin"), request.headers.get("Host"), room.account_id
            ):
                await ws.close(CLOSE_ORIGIN, "origin_not_allowed")
                return
            hello_id, viewer = await self._hello(ws, room_id)
        except NotFound:
            await ws.close(CLOSE_ROOM, "no such room")
            return
        except Refused as refused:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_error(refused.op_id, refused.error).decode())
                await ws.close(CLOSE_HELLO, refused.error.code)
            return
        except (TimeoutError, ConnectionClosed):
            with contextlib.suppress(ConnectionClosed):
                await ws.close(CLOSE_HELLO, "say hello first")
            return
        hub = await self._hub(room_id)
        self._members += 1
        viewing = Viewing(ws, viewer, member=f"c{self._members}", hub=hub)
        hub.add(viewing)
        name = topic(room_id)
        try:
            await self.broker.enter(name, viewing.member)
            viewing.put(ws_text(_hello_ack(hello_id, viewer)), self.limits)
            await self._catch_up(hub, viewing, since)
            async for raw in ws:
                await self._op(hub, viewing, raw)
        except ConnectionClosed:
            pass
        finally:
            hub.discard(viewing)
            await self.broker.leave(name, viewing.member)
            if not hub.viewings:
                self._drop(hub)

    async def _origin_allowed(self, origin: str | None, host: str | None, account_id: str) -> bool:
        """A page may watch a room from this deployment's own pages — the configured base
        URL's origin, or unset, the host it connected to (the pages are served on another
        port of it) — or from an origin the room's account lists in its ``embed_origins``
        (DESIGN §7). A client that is no page sends no Origin."""
        if origin is None:
            return True
        try:
            if self.own_origin is not None:
                if origin_of(origin) == self.own_origin:
                    return True
            elif urlsplit(origin).hostname == urlsplit(f"//{host or ''}").hostname:
                return True
        except ValueError:  # not an origin at all
            return False
        return origin in await embed_origins(self.channel.store, account_id)

    async def _hello(self, ws: ServerConnection, room_id: str) -> tuple[str | None, Viewer]:
        """The hello's id and who it names; :class:`Refused` when it names no one."""
        async with asyncio.timeout(self.limits.hello_s):
            raw = await ws.recv()
        try:
            hello = orjson.loads(raw)
        except orjson.JSONDecodeError:
            hello = None
        if not isinstance(hello, dict) or hello.get("op") != "hello":
            required = DomainError('the first message is {"op": "hello"}', code="hello_required")
            raise Refused(None, required)
        hello_id = hello.get("id") if isinstance(hello.get("id"), str) else None
        token = hello.get("token")
        try:
            if token is not None and not isinstance(token, str):
                raise DomainError("token is a string", code="token_invalid", field="token")
            return hello_id, await self.channel.viewer(token, room_id)
        except NotFound:
            raise
        except DomainError as exc:
            raise Refused(hello_id, exc) from exc

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
        if viewing.rides:
            hub.get_off(viewing)
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
        # A fan's or a staff member's retry may come on a new connection: keyed by who they are.
        who = viewing.viewer.fan_id or viewing.viewer.staff or viewing.member
        key = (hub.room_id, who, op_id)
        answer = self.running.get(key)
        if answer is None:
            answer = self.running[key] = asyncio.get_running_loop().create_future()
            try:
                answer.set_result(await self._run(hub, viewing, op, op_id))
            except BaseException:
                answer.cancel()
                raise
            finally:
                del self.running[key]
        viewing.put(await asyncio.shield(answer), self.limits)

    async def _run(self, hub: Hub, viewing: Viewing, op: dict[str, Any], op_id: str) -> bytes:
        try:
            result = await self.channel.perform(hub.room_id, viewing.viewer, op_id, op)
        except DomainError as exc:
            return ws_text(_error(op_id, exc))
        return ws_text(orjson.dumps({"type": "ack", "id": op_id, "ok": True, "result": result}))


class Refused(Exception):
    """A hello that names no one the room lets in: its id and why."""

    def __init__(self, op_id: str | None, error: DomainError) -> None:
        super().__init__(error.detail)
        self.op_id = op_id
        self.error = error


def _hello_ack(hello_id: str | None, viewer: Viewer) -> bytes:
    """The hello's answer (DESIGN §8: its ack, then the snapshot): who the server took the
    connection to be — a fan, staff (with the role chat shows) or a guest who reads."""
    who: dict[str, Any] = {"fan_id": viewer.fan_id, "name": viewer.name, "staff": viewer.role}
    return orjson.dumps({"type": "ack", "id": hello_id, "ok": True, "result": who})


def _since(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 16 else None


def _error(op_id: str | None, exc: DomainError) -> bytes:
    answer: dict[str, Any] = {"type": "error", "id": op_id, "code": exc.code, "message": exc.detail}
    if exc.field is not None:
        answer["field"] = exc.field
    if isinstance(exc, RateLimited):
        answer["retry_after_s"] = exc.retry_after_s
    return orjson.dumps(answer)
