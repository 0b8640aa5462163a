"""The broker port, on every engine this build has: sequenced events framed once, ordered
fan-out through bounded queues that drop instead of blocking, history for "since", presence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from store.broker import PENDING, Broker, Event, MemoryBroker, frame
from store.redis_broker import RedisBroker


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    engine: Broker
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        flusher = Redis.from_url(url)
        await flusher.flushdb()
        await flusher.aclose()
        engine = RedisBroker(url, queue_size=4, history=5)
    else:
        engine = MemoryBroker(queue_size=4, history=5)
    yield engine
    await engine.close()


def body(n: int) -> bytes:
    return json.dumps({"type": "chat", "data": {"n": n}}, separators=(",", ":")).encode()


def test_the_frame_puts_seq_first_in_the_json() -> None:
    assert json.loads(frame(7, b'{"type":"likes","data":{"total":3}}')) == {
        "seq": 7,
        "type": "likes",
        "data": {"total": 3},
    }
    assert frame(1, b"{}") == b'{"seq":1}'
    with pytest.raises(ValueError):
        frame(1, b"[1]")


async def test_events_are_numbered_per_topic_from_one(broker: Broker) -> None:
    sent = [await broker.publish("room:1", body(n)) for n in range(3)]
    assert [e.seq for e in sent] == [1, 2, 3]
    assert json.loads(sent[2].frame) == {"seq": 3, "type": "chat", "data": {"n": 2}}
    assert (await broker.publish("room:2", body(0))).seq == 1
    assert await broker.last_seq("room:1") == 3
    assert await broker.last_seq("room:none") == 0


async def test_every_subscriber_gets_every_event_in_order(broker: Broker) -> None:
    async with broker.subscribe("room:1") as a, broker.subscribe("room:1") as b:
        sent = [await broker.publish("room:1", body(n)) for n in range(3)]
        for sub in (a, b):
            assert [await sub.get() for _ in range(3)] == sent


async def test_racing_publishers_never_share_or_skip_a_seq(broker: Broker) -> None:
    async with broker.subscribe("room:1") as sub:
        sent = await asyncio.gather(*(broker.publish("room:1", body(n)) for n in range(4)))
        assert sorted(e.seq for e in sent) == [1, 2, 3, 4]
        got = [await sub.get() for _ in range(4)]
        assert [e.seq for e in got] == [1, 2, 3, 4]


async def test_a_full_queue_drops_for_that_subscriber_only_who_sees_the_gap(
    broker: Broker,
) -> None:
    async with broker.subscribe("room:1") as slow, broker.subscribe("room:1") as fast:
        for n in range(6):  # the queues hold 4
            event = await broker.publish("room:1", body(n))
            assert await fast.get() == event
        got = [await slow.get() for _ in range(4)]
        assert [e.seq for e in got] == [1, 2, 3, 4]
        nxt = await broker.publish("room:1", body(6))
        assert (await slow.get()).seq == nxt.seq == 7  # 5 and 6 were missed…
        missed = await broker.since("room:1", 4)  # …and are read back
        assert missed is not None and [e.seq for e in missed] == [5, 6, 7]


async def test_history_answers_since_or_says_it_is_too_old(broker: Broker) -> None:
    for n in range(8):  # history keeps 5: seqs 4..8
        await broker.publish("room:1", body(n))
    kept = await broker.since("room:1", 3)
    assert kept is not None and [e.seq for e in kept] == [4, 5, 6, 7, 8]
    assert await broker.since("room:1", 8) == []
    assert await broker.since("room:1", 2) is None  # seq 3 is gone: reset
    assert await broker.since("room:1", 9) is None  # not this room's life
    assert await broker.since("room:quiet", 0) == []


async def test_presence_counts_members_once(broker: Broker) -> None:
    assert await broker.enter("room:1", "c1") == 1
    assert await broker.enter("room:1", "c2") == 2
    assert await broker.enter("room:1", "c2") == 2
    assert await broker.present("room:2") == 0
    assert await broker.leave("room:1", "c1") == 1
    assert await broker.leave("room:1", "gone") == 1
    assert await broker.present("room:1") == 1


async def test_forget_drops_history_and_presence_but_keeps_counting(broker: Broker) -> None:
    async with broker.subscribe("room:1") as sub:
        await broker.publish("room:1", body(0))
        await broker.enter("room:1", "c1")
        await broker.forget("room:1")
        assert await broker.present("room:1") == 0
        assert await broker.since("room:1", 0) is None
        assert (await broker.publish("room:1", body(1))).seq == 2
        assert [(await sub.get()).seq, (await sub.get()).seq] == [1, 2]


async def test_leaving_unsubscribes_even_on_error(broker: Broker) -> None:
    async with broker.subscribe("room:1") as sub:
        await broker.publish("room:1", body(0))
        assert isinstance(await sub.get(), Event)
    with pytest.raises(ValueError):
        async with broker.subscribe("room:1"):
            raise ValueError("handler failed")
    async with broker.subscribe("room:1") as again:
        event = await broker.publish("room:1", body(1))
        assert await again.get() == event


async def test_ping_round_trips_and_leaves_nothing_behind(broker: Broker) -> None:
    await broker.ping()
    await broker.ping()
    assert await broker.last_seq("_ping") == 0


async def test_recent_is_what_the_history_keeps(broker: Broker) -> None:
    assert await broker.recent("room:1") == []
    sent = [await broker.publish("room:1", body(n)) for n in range(7)]
    assert await broker.recent("room:1") == sent[2:]


async def test_an_op_is_claimed_once_and_its_answer_kept_for_retries(broker: Broker) -> None:
    assert await broker.claim("room:1:fan_a:c1") is None  # ours to run
    assert await broker.claim("room:1:fan_a:c1") == PENDING  # a retry while it runs
    await broker.settle("room:1:fan_a:c1", b'{"ok":true}')
    assert await broker.claim("room:1:fan_a:c1") == b'{"ok":true}'
    assert await broker.claim("room:1:fan_b:c1") is None  # another fan's c1 is another op
    await broker.settle("room:1:fan_b:c1", None)  # it had no effect: let it go
    assert await broker.claim("room:1:fan_b:c1") is None
    # A claim whose run never settles (its process died) lapses.
    assert await broker.claim("room:1:fan_c:c1", ttl_s=0.05) is None
    assert await broker.claim("room:1:fan_c:c1", ttl_s=0.05) == PENDING
    deadline = asyncio.get_running_loop().time() + 5
    while (again := await broker.claim("room:1:fan_c:c1", ttl_s=0.05)) == PENDING:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)  # polling the lapse, a property of wall time
    assert again is None
