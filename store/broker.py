"""The broker port (room events, history, presence) and its in-process engine.

Publishers put bytes on a topic; every subscriber of that topic receives them in order. The
in-process engine serves one app process; the Redis engine (pub/sub) lets several processes
share rooms. Subscribers get a bounded queue: the broker never waits for a slow reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class Subscription(Protocol):
    async def get(self) -> bytes: ...


class Broker(Protocol):
    async def publish(self, topic: str, message: bytes) -> int:
        """Deliver to current subscribers; returns how many received it."""
        ...

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[Subscription]: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class _Queue:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize)

    async def get(self) -> bytes:
        return await self.queue.get()


class MemoryBroker:
    """In-process engine: a set of bounded queues per topic."""

    def __init__(self, queue_size: int = 10_000) -> None:
        self._topics: dict[str, set[_Queue]] = {}
        self._queue_size = queue_size

    async def publish(self, topic: str, message: bytes) -> int:
        delivered = 0
        for sub in self._topics.get(topic, ()):
            try:
                sub.queue.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                continue  # a slow subscriber misses this one and recovers by sequence number
        return delivered

    @asynccontextmanager
    async def _subscribe(self, topic: str) -> AsyncIterator[_Queue]:
        sub = _Queue(self._queue_size)
        self._topics.setdefault(topic, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._topics.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._topics[topic]

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscribe(topic)

    async def ping(self) -> None:
        """A publish that the broker's own subscriber must receive."""
        async with self.subscribe("_ping") as sub:
            await self.publish("_ping", b"ping")
            if await asyncio.wait_for(sub.get(), timeout=1) != b"ping":
                raise RuntimeError("broker round trip returned something else")

    async def close(self) -> None:
        self._topics.clear()
