"""The SQLite engine with ``synchronous=FULL``, whose connections run on threads: a task
cancelled while its transaction's statement runs on the thread leaves the store usable.

A cancelled ``await`` does not stop the statement on the thread. The engine must wait for it
and roll back; otherwise the connection is left inside a transaction nobody owns, and every
later ``BEGIN`` fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "cancel.db", synchronous="FULL")
    yield opened
    await opened.close()


@pytest.mark.parametrize("where", ["begin", "insert"])
async def test_a_transaction_cancelled_on_the_thread_rolls_back(
    store: SQLiteStore, where: str
) -> None:
    things = store.collection("things")
    await things.insert({"id": "before"})  # the table exists: the insert below only inserts
    reached = asyncio.Event()

    async def write() -> None:
        if where == "begin":
            reached.set()
        async with store.transaction():
            if where == "insert":
                reached.set()
            await things.insert({"id": "cancelled"})

    task = asyncio.create_task(write())
    # The event wakes this test only when the task first yields: there, it is awaiting the
    # thread (its BEGIN, or its INSERT inside the transaction).
    await reached.wait()
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()

    async with store.transaction():
        await things.insert({"id": "in-a-transaction"})
    await things.insert({"id": "plain"})
    assert await things.get("cancelled") is None
    ids = sorted(d["id"] for d in await things.find({}))
    assert ids == ["before", "in-a-transaction", "plain"]


@pytest.mark.parametrize("where", ["begin", "insert"])
async def test_a_statement_still_running_on_the_thread_is_waited_for(
    store: SQLiteStore, where: str
) -> None:
    """As above, but the statement is held on the thread until after the cancellation, so
    the race the test above usually wins is forced: the BEGIN (or INSERT) completes after its
    awaiting task was cancelled. White-box: a progress handler on the writer's connection,
    the only way to see from here that the thread is inside the statement."""
    things = store.collection("things")
    await things.insert({"id": "before"})
    conn = store._writer.conn
    assert conn is not None
    on_thread, release = threading.Event(), threading.Event()
    armed = False

    def hold() -> int:
        nonlocal armed
        if armed:
            armed = False
            on_thread.set()
            release.wait(10)
        return 0  # go on with the statement

    async def write() -> None:
        nonlocal armed
        armed = where == "begin"
        async with store.transaction():
            armed = where == "insert"
            await things.insert({"id": "cancelled"})

    conn.set_progress_handler(hold, 1)
    try:
        task = asyncio.create_task(write())
        assert await asyncio.to_thread(on_thread.wait, 10), "the statement never started"
        task.cancel()
    finally:
        release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The handler stays (disarmed): removing it here would take the connection's mutex from
    # the event loop's thread, and deadlock on the GIL if the statement were still running.

    async with store.transaction():
        await things.insert({"id": "in-a-transaction"})
    await things.insert({"id": "plain"})
    ids = sorted(d["id"] for d in await things.find({}))
    assert ids == ["before", "in-a-transaction", "plain"]


async def test_the_store_closes_after_a_cancelled_transaction(tmp_path: Path) -> None:
    path = tmp_path / "reopen.db"
    store = SQLiteStore(path, synchronous="FULL")
    things = store.collection("things")
    await things.insert({"id": "kept"})
    inside = asyncio.Event()

    async def write() -> None:
        async with store.transaction():
            inside.set()
            await things.insert({"id": "cancelled"})

    task = asyncio.create_task(write())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.close()
    reopened = SQLiteStore(path, synchronous="FULL")
    try:
        assert [d["id"] for d in await reopened.collection("things").find({})] == ["kept"]
    finally:
        await reopened.close()


async def test_threaded_normal_mode_keeps_the_loop_free_while_another_writer_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    store = SQLiteStore(path, threaded=True)
    await store.collection("items").insert({"id": "a"})
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    write = asyncio.create_task(store.collection("items").insert({"id": "b"}))
    while ticks < 50:  # the loop keeps running while the write waits for the lock
        await asyncio.sleep(0)
    assert not write.done()
    other.execute("COMMIT")
    await write
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    other.close()
    assert await store.collection("items").count({}) == 2
    await store.close()
