"""The broker port on Redis (``--broker redis://host:port/db``): several ``lifeaccount serve``
processes share their rooms' channels.

Per topic: a counter (``la:seq:<topic>``), the history as a capped list of frames
(``la:hist:<topic>``) and a pub/sub channel (``la:ch:<topic>``). A publish is one Lua script,
so numbering, keeping and sending happen together and in seq order for every process. Each
process reads every topic it follows over one pub/sub connection and hands the frames to its
subscribers' bounded queues, which drop rather than wait (the reader sees the gap and reads
the history back, as with the in-process engine). Presence is counted per process
(``la:here:<topic>``, a hash of process → members) and a process's counts only count while
its heartbeat key lives, so a process that dies stops being counted within ``NODE_TTL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from store.broker import (
    ANSWER_TTL_S,
    CLAIM_TTL_S,
    HISTORY,
    PENDING,
    QUEUE,
    Event,
    SubscriberQueue,
    Subscription,
)

log = logging.getLogger("lifeaccount.broker")
NODE_TTL_S = 30  # a process not heard of for this long is not counted as present
PREFIX = "la:"

# KEYS: seq, history, channel. ARGV: body (a JSON object's text), history size.
PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local body = ARGV[1]
local rest = string.sub(body, 2)
local frame
if rest == '}' then frame = '{"seq":' .. seq .. '}' else frame = '{"seq":' .. seq .. ',' .. rest end
redis.call('RPUSH', KEYS[2], frame)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', KEYS[3], frame)
return seq
"""

# KEYS: seq, history. ARGV: since. → {last} followed by the frames after since, or {-1}.
SINCE = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(ARGV[1])
if since > last then return {-1} end
if since == last then return {last} end
local n = redis.call('LLEN', KEYS[2])
local first = last - n + 1
if n == 0 or first > since + 1 then return {-1} end
local frames = redis.call('LRANGE', KEYS[2], since + 1 - first, -1)
table.insert(frames, 1, last)
return frames
"""


def seq_of(frame: bytes) -> int:
    """The seq a frame starts with (``{"seq":N,…``)."""
    end = frame.find(b",", 7)
    return int(frame[7 : end if end != -1 else -1])


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _keys(topic: str) -> tuple[str, str, str, str]:
    return (
        f"{PREFIX}seq:{topic}",
        f"{PREFIX}hist:{topic}",
        f"{PREFIX}ch:{topic}",
        f"{PREFIX}here:{topic}",
    )


class RedisBroker:
    def __init__(self, url: str, queue_size: int = QUEUE, history: int = HISTORY) -> None:
        self._url = url
        self._redis: Redis = Redis.from_url(url)
        self._queue_size = queue_size
        self._history = history
        self._node = secrets.token_hex(6)  # this process, for presence
        self._members: dict[str, set[str]] = {}  # topic → this process's members
        self._subscribers: dict[str, set[SubscriberQueue]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heart: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._publish = self._redis.register_script(PUBLISH)
        self._since = self._redis.register_script(SINCE)

    async def publish(self, topic: str, body: bytes) -> Event:
        if not body.startswith(b"{") or not body.endswith(b"}"):
            raise ValueError("an event body is the text of a JSON object")
        seq_key, hist, channel, _ = _keys(topic)
        seq = int(await self._publish(keys=[seq_key, hist, channel], args=[body, self._history]))
        rest = body[1:]
        return Event(seq, b'{"seq":%d%s%s' % (seq, b"" if rest == b"}" else b",", rest))

    async def since(self, topic: str, seq: int) -> list[Event] | None:
        seq_key, hist, _, _ = _keys(topic)
        answer: list[Any] = await self._since(keys=[seq_key, hist], args=[seq])
        if int(answer[0]) == -1:
            return None
        return [Event(seq_of(f), f) for f in map(_bytes, answer[1:])]

    async def last_seq(self, topic: str) -> int:
        value = await self._redis.get(_keys(topic)[0])
        return int(value) if value is not None else 0

    async def recent(self, topic: str) -> list[Event]:
        frames: list[bytes | str] = await self._redis.lrange(_keys(topic)[1], 0, -1)
        return [Event(seq_of(f), f) for f in map(_bytes, frames)]

    # -- fan-out: one pub/sub connection per process, its frames routed to local queues

    async def _follow(self, topic: str) -> None:
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(f"{PREFIX}_")  # a connection before the reader
                self._reader = asyncio.create_task(self._read(self._pubsub))
            await self._pubsub.subscribe(_keys(topic)[2])

    async def _read(self, pubsub: PubSub) -> None:
        skip = len(f"{PREFIX}ch:")
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lost the Redis pub/sub connection; reconnecting")
                await asyncio.sleep(0.5)  # back off before the client reconnects
                continue
            if message is None or message.get("type") != "message":
                continue
            topic = message["channel"].decode()[skip:]
            frame = bytes(message["data"])
            event = Event(seq_of(frame), frame)
            for sub in self._subscribers.get(topic, ()):
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    continue  # that reader sees the gap and reads the history

    @asynccontextmanager
    async def _subscribe(self, topic: str) -> AsyncIterator[SubscriberQueue]:
        sub = SubscriberQueue(self._queue_size)
        subs = self._subscribers.setdefault(topic, set())
        first = not subs
        subs.add(sub)
        try:
            if first:
                await self._follow(topic)
            yield sub
        finally:
            subs.discard(sub)
            if not subs:
                del self._subscribers[topic]
                if self._pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(_keys(topic)[2])

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscribe(topic)

    # -- presence: this process's count per topic, counted while its heartbeat lives

    async def _beat(self) -> None:
        await self._redis.set(f"{PREFIX}node:{self._node}", 1, ex=NODE_TTL_S)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(NODE_TTL_S / 3)  # the heartbeat's period
            try:
                await self._beat()
            except Exception:
                log.exception("the Redis heartbeat failed; next beat")

    async def _add(self, topic: str, by: int) -> None:
        """This process's count in the topic, moved by ``by``: increments, which land in any
        order (an enter and a leave racing never leave a stale count behind)."""
        await self._redis.hincrby(_keys(topic)[3], self._node, by)

    async def enter(self, topic: str, member: str) -> int:
        if self._heart is None:
            await self._beat()
            self._heart = asyncio.create_task(self._heartbeat())
        members = self._members.setdefault(topic, set())
        if member not in members:
            members.add(member)
            await self._add(topic, 1)
        return await self.present(topic)

    async def leave(self, topic: str, member: str) -> int:
        members = self._members.get(topic)
        if members is not None and member in members:
            members.discard(member)
            if not members:
                del self._members[topic]
            await self._add(topic, -1)
        return await self.present(topic)

    async def present(self, topic: str) -> int:
        found: dict[bytes | str, bytes | str] = await self._redis.hgetall(_keys(topic)[3])
        counts = {_bytes(node).decode(): int(count) for node, count in found.items()}
        if not counts:
            return 0
        nodes = list(counts)
        alive = await self._redis.mget([f"{PREFIX}node:{node}" for node in nodes])
        return sum(max(counts[n], 0) for n, up in zip(nodes, alive, strict=True) if up is not None)

    async def forget(self, topic: str) -> None:
        _, hist, _, here = _keys(topic)
        self._members.pop(topic, None)
        await self._redis.delete(hist, here)

    async def claim(self, key: str, ttl_s: float = CLAIM_TTL_S) -> bytes | None:
        name = f"{PREFIX}op:{key}"
        if await self._redis.set(name, PENDING, nx=True, px=int(ttl_s * 1000)):
            return None
        kept = await self._redis.get(name)
        if kept is None:  # expired in between: claim again
            return await self.claim(key, ttl_s)
        return _bytes(kept)

    async def settle(self, key: str, answer: bytes | None, ttl_s: float = ANSWER_TTL_S) -> None:
        name = f"{PREFIX}op:{key}"
        if answer is None:
            await self._redis.delete(name)
        else:
            await self._redis.set(name, answer, px=int(ttl_s * 1000))

    async def ping(self) -> None:
        """A publish that this process's own subscriber must receive, in sequence."""
        topic = f"_ping:{self._node}:{secrets.token_hex(4)}"
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise RuntimeError(
                f"cannot reach Redis at {self._url} ({exc}): start redis-server there, "
                "or point --broker (LIFEACCOUNT_BROKER) at one"
            ) from exc
        try:
            async with self.subscribe(topic) as sub:
                sent = await self.publish(topic, b'{"type":"ping"}')
                got = await asyncio.wait_for(sub.get(), timeout=2)
                if got != sent:
                    raise RuntimeError("broker round trip returned something else")
        finally:
            await self._redis.delete(*_keys(topic))

    async def close(self) -> None:
        for task in (self._reader, self._heart):
            if task is not None:
                task.cancel()
        if self._members:
            for topic in list(self._members):
                self._members.pop(topic)
                with contextlib.suppress(Exception):
                    await self._redis.hdel(_keys(topic)[3], self._node)
        with contextlib.suppress(Exception):
            await self._redis.delete(f"{PREFIX}node:{self._node}")
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                # redis-py leaves PubSub.aclose unannotated; it returns None.
                closing = cast("Callable[[], Awaitable[None]]", self._pubsub.aclose)
                await closing()
        await self._redis.aclose()
