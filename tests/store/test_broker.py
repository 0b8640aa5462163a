"""The in-process broker: ordered fan-out, bounded queues that drop instead of blocking."""

from __future__ import annotations

from store.broker import MemoryBroker


async def test_publish_reaches_every_subscriber_in_order() -> None:
    broker = MemoryBroker()
    async with broker.subscribe("room:1") as a, broker.subscribe("room:1") as b:
        for i in range(5):
            assert await broker.publish("room:1", f"m{i}".encode()) == 2
        for sub in (a, b):
            assert [await sub.get() for _ in range(5)] == [b"m0", b"m1", b"m2", b"m3", b"m4"]


async def test_topics_are_separate() -> None:
    broker = MemoryBroker()
    async with broker.subscribe("room:1") as one:
        assert await broker.publish("room:2", b"elsewhere") == 0
        await broker.publish("room:1", b"here")
        assert await one.get() == b"here"


async def test_leaving_unsubscribes_even_on_error() -> None:
    broker = MemoryBroker()
    async with broker.subscribe("room:1"):
        assert await broker.publish("room:1", b"x") == 1
    assert await broker.publish("room:1", b"x") == 0
    try:
        async with broker.subscribe("room:1"):
            raise ValueError("handler failed")
    except ValueError:
        pass
    assert await broker.publish("room:1", b"x") == 0


async def test_a_full_queue_drops_for_that_subscriber_only() -> None:
    broker = MemoryBroker(queue_size=2)
    async with broker.subscribe("room:1") as slow, broker.subscribe("room:1") as fast:
        assert await broker.publish("room:1", b"m1") == 2
        assert await fast.get() == b"m1"
        assert await broker.publish("room:1", b"m2") == 2
        assert await fast.get() == b"m2"
        # slow holds m1 and m2: m3 is dropped for it, and publish returned without waiting.
        assert await broker.publish("room:1", b"m3") == 1
        assert await fast.get() == b"m3"
        assert [await slow.get(), await slow.get()] == [b"m1", b"m2"]
        assert await broker.publish("room:1", b"m4") == 2
        assert await slow.get() == b"m4"
        assert await fast.get() == b"m4"


async def test_ping_round_trips_and_leaves_nothing_behind() -> None:
    broker = MemoryBroker()
    await broker.ping()
    assert await broker.publish("_ping", b"x") == 0


async def test_close_drops_every_subscription() -> None:
    broker = MemoryBroker()
    async with broker.subscribe("room:1"):
        await broker.close()
        assert await broker.publish("room:1", b"x") == 0
