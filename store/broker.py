"""The broker port (room events, history, presence) and its in-process engine.

A topic is a room's event stream. :meth:`Broker.publish` gives each event the topic's next
sequence number, strictly increasing from 1, builds its frame once (the event's JSON with
``"seq"`` first: what every viewer's socket is sent as is), keeps it in the topic's history
and hands it to every subscriber, in order. A subscriber is a gateway process's one reader of
a room, not a viewer: the gateway fans each frame out to its own connections. The history
answers "everything after seq N" for a reconnecting viewer, or says the gap is older than it
keeps (the viewer then gets a reset and a snapshot). Presence counts who is in a room.

The in-process engine serves one app process; the Redis engine (``store.redis_broker``: a
counter for the sequence, a capped list per room for the history, pub/sub for the fan-out,
per-process presence counts) lets several processes share rooms with no change above this
port; both pass the same contract tests (tests/store/test_broker.py).
Subscribers get a bounded queue: the broker never waits for a slow reader, and a reader that
missed events sees the gap in the sequence and reads them back from the history.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

HISTORY = 1_000  # events kept per topic
QUEUE = 10_000  # events a subscriber may fall behind before it misses some
PENDING = b""  # a claimed op that has no answer yet
CLAIM_TTL_S = 60.0  # how long a claim holds without an answer (its process may have died)
ANSWER_TTL_S = 24 * 3600.0  # how long an op's answer is kept for retries
ANSWERS_KEPT = 100_000  # the in-process engine's bound on kept answers


@dataclass(frozen=True)
class Event:
    seq: int
    frame: bytes  # the event as sent: a JSON object whose first member is "seq"


def frame(seq: int, body: bytes) -> bytes:
    """The event ``body`` (a JSON object's text, without ``seq``) as sent, ``seq`` first.

    Built once per event, by the broker, so no reader serialises it again."""
    if not body.startswith(b"{") or not body.endswith(b"}"):
        raise ValueError("an event body is the text of a JSON object")
    rest = body[1:]
    return b'{"seq":%d%s%s' % (seq, b"" if rest == b"}" else b",", rest)


class Subscription(Protocol):
    async def get(self) -> Event: ...


class Broker(Protocol):
    async def publish(self, topic: str, body: bytes) -> Event:
        """Append ``body`` to ``topic`` under its next seq and deliver it to the current
        subscribers; the event as kept and sent."""
        ...

    async def since(self, topic: str, seq: int) -> list[Event] | None:
        """The events after ``seq``, in order; None when some of them are no longer kept
        (or ``seq`` is past the topic's last: it is not this topic's)."""
        ...

    async def last_seq(self, topic: str) -> int:
        """The seq of the topic's latest event; 0 before any."""
        ...

    async def recent(self, topic: str) -> list[Event]:
        """Every event the topic's history still keeps, oldest first."""
        ...

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[Subscription]: ...

    async def enter(self, topic: str, member: str) -> int:
        """``member`` (a connection) is in the topic's room; returns how many are."""
        ...

    async def leave(self, topic: str, member: str) -> int:
        """``member`` left; returns how many remain."""
        ...

    async def present(self, topic: str) -> int: ...

    async def forget(self, topic: str) -> None:
        """Drop the topic's history and presence (its room ended); subscribers stay."""
        ...

    async def claim(self, key: str, ttl_s: float = CLAIM_TTL_S) -> bytes | None:
        """Claim ``key`` (an op: room, who, op id) for running it once, across processes.
        None: it is yours — run it, then :meth:`settle`. Otherwise what is kept: the answer
        of the run that settled it, or ``PENDING`` while another run holds it (for
        ``ttl_s`` at most, should that run's process die)."""
        ...

    async def settle(self, key: str, answer: bytes | None, ttl_s: float = ANSWER_TTL_S) -> None:
        """Keep ``answer`` for ``key`` (retries get it) or, with None, let ``key`` go: the run
        had no effect, and a retry runs it again."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class SubscriberQueue:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

    async def get(self) -> Event:
        return await self.queue.get()


@dataclass
class _Topic:
    history: deque[Event]
    seq: int = 0
    subscribers: set[SubscriberQueue] = field(default_factory=set)
    members: set[str] = field(default_factory=set)


class MemoryBroker:
    """In-process engine: per topic, a counter, a ring of recent events, bounded queues."""

    def __init__(self, queue_size: int = QUEUE, history: int = HISTORY) -> None:
        self._topics: dict[str, _Topic] = {}
        self._answers: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key → (until, …)
        self._queue_size = queue_size
        self._history = history

    def _topic(self, name: str) -> _Topic:
        found = self._topics.get(name)
        if found is None:
            found = self._topics[name] = _Topic(deque(maxlen=self._history))
        return found

    async def publish(self, topic: str, body: bytes) -> Event:
        room = self._topic(topic)
        event = Event(room.seq + 1, frame(room.seq + 1, body))
        room.seq = event.seq
        room.history.append(event)
        for sub in room.subscribers:
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                continue  # that reader sees the gap and reads the history
        return event

    async def since(self, topic: str, seq: int) -> list[Event] | None:
        room = self._topics.get(topic)
        last = room.seq if room is not None else 0
        if seq > last:
            return None  # ahead of the room: a seq of another life of it
        if room is None or seq == last:
            return []
        kept = room.history
        if not kept or kept[0].seq > seq + 1:
            return None
        return [e for e in kept if e.seq > seq]

    async def last_seq(self, topic: str) -> int:
        room = self._topics.get(topic)
        return room.seq if room is not None else 0

    async def recent(self, topic: str) -> list[Event]:
        room = self._topics.get(topic)
        return list(room.history) if room is not None else []

    @asynccontextmanager
    async def _subscribe(self, topic: str) -> AsyncIterator[SubscriberQueue]:
        sub = SubscriberQueue(self._queue_size)
        room = self._topic(topic)
        room.subscribers.add(sub)
        try:
            yield sub
        finally:
            room.subscribers.discard(sub)
            if not room.subscribers and not room.history and not room.members:
                self._topics.pop(topic, None)

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscribe(topic)

    async def enter(self, topic: str, member: str) -> int:
        room = self._topic(topic)
        room.members.add(member)
        return len(room.members)

    async def leave(self, topic: str, member: str) -> int:
        room = self._topics.get(topic)
        if room is None:
            return 0
        room.members.discard(member)
        return len(room.members)

    async def present(self, topic: str) -> int:
        room = self._topics.get(topic)
        return len(room.members) if room is not None else 0

    async def forget(self, topic: str) -> None:
        room = self._topics.get(topic)
        if room is None:
            return
        if room.subscribers:
            room.history.clear()
            room.members.clear()
        else:
            del self._topics[topic]

    async def claim(self, key: str, ttl_s: float = CLAIM_TTL_S) -> bytes | None:
        now = time.monotonic()
        kept = self._answers.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        self._keep(key, PENDING, now + ttl_s)
        return None

    async def settle(self, key: str, answer: bytes | None, ttl_s: float = ANSWER_TTL_S) -> None:
        if answer is None:
            self._answers.pop(key, None)
        else:
            self._keep(key, answer, time.monotonic() + ttl_s)

    def _keep(self, key: str, value: bytes, until: float) -> None:
        self._answers[key] = (until, value)
        self._answers.move_to_end(key)
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)

    async def ping(self) -> None:
        """A publish that the broker's own subscriber must receive, in sequence."""
        topic = "_ping"
        async with self.subscribe(topic) as sub:
            sent = await self.publish(topic, b'{"type":"ping"}')
            got = await asyncio.wait_for(sub.get(), timeout=1)
            if got != sent:
                raise RuntimeError("broker round trip returned something else")
        await self.forget(topic)

    async def close(self) -> None:
        for room in self._topics.values():
            room.subscribers.clear()
        self._topics.clear()
