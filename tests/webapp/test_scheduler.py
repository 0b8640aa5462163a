"""Scheduled publishing (webapp/scheduler.py): one pass publishes what is due on the injected
clock, racing runners publish each content once, the loop keeps going after a failed pass and
stops when told, and both `serve` (the app's lifespan) and `lifeaccount worker` run it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts import schema as accounts_schema
from accounts.accounts import Account, create_account
from content import schema as content_schema
from content.contents import Content, Status, create_content, get_content
from content.publishing import publish
from content.sensitive import ReviewPolicy
from live import rooms
from store.clock import rfc3339, utc_now
from store.engines import open_store
from store.port import DocumentStore
from store.sqlite import SQLiteStore
from tests.conftest import make_settings, sign_up
from tests.e2e.support import LIFEACCOUNT, lifeaccount_env
from webapp import scheduler
from webapp.app import create_app

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
WAIT_S = 20.0  # a bound on waiting for a condition, never a means of synchronising


class Clock:
    """The injected ``now``: it moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Await a condition that another task or process brings about, bounded by WAIT_S."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.01)  # yield to the runner under test, then look again

    try:
        await asyncio.wait_for(poll(), WAIT_S)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {WAIT_S} s") from None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    # Connections on threads, so that concurrent runners really interleave at every await.
    engine = SQLiteStore(tmp_path / "scheduler.db", synchronous="FULL")
    await engine.ensure_indexes([*accounts_schema.INDEXES, *content_schema.INDEXES])
    yield engine
    await engine.close()


@pytest.fixture
async def account(store: SQLiteStore) -> Account:
    return await create_account(store, name="Tea House", handle="tea-house", now=NOW)


async def scheduled(
    store: DocumentStore, account: Account, at: datetime, count: int = 1
) -> list[str]:
    ids = []
    for i in range(count):
        body = {"kind": "article", "title": f"t{i}", "blocks": [{"type": "paragraph", "text": "x"}]}
        made = await create_content(store, account.id, body, now=NOW)
        done = await publish(
            store, made.id, policy=ReviewPolicy(store), publish_at=rfc3339(at), now=NOW
        )
        assert done.status is Status.SCHEDULED
        ids.append(made.id)
    return ids


async def statuses(store: DocumentStore, ids: list[str]) -> list[Status]:
    return [(await get_content(store, i)).status for i in ids]


async def test_one_pass_publishes_what_is_due_and_only_that(
    store: SQLiteStore, account: Account
) -> None:
    soon = await scheduled(store, account, NOW + timedelta(minutes=10))
    later = await scheduled(store, account, NOW + timedelta(hours=1))
    assert await scheduler.publish_due(store, now=NOW + timedelta(minutes=9)) == []
    moved = await scheduler.publish_due(store, now=NOW + timedelta(minutes=10))
    assert [c.id for c in moved] == soon
    assert moved[0].published_at == rfc3339(NOW + timedelta(minutes=10))
    assert await statuses(store, later) == [Status.SCHEDULED]
    assert await scheduler.publish_due(store, now=NOW + timedelta(minutes=30)) == []


async def test_a_backlog_goes_out_in_one_pass(
    store: SQLiteStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "BATCH", 3)  # several batches from a few contents
    ids = await scheduled(store, account, NOW + timedelta(minutes=1), count=8)
    moved = await scheduler.publish_due(store, now=NOW + timedelta(days=1))
    assert sorted(c.id for c in moved) == sorted(ids)
    assert set(await statuses(store, ids)) == {Status.PUBLISHED}


async def test_two_runners_at_once_publish_each_content_once(
    store: SQLiteStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "BATCH", 4)
    ids = await scheduled(store, account, NOW + timedelta(minutes=1), count=10)
    later = NOW + timedelta(minutes=5)
    first, second = await asyncio.gather(
        scheduler.publish_due(store, now=later), scheduler.publish_due(store, now=later)
    )
    moved = [c.id for c in first + second]
    assert sorted(moved) == sorted(ids)  # every one, and none twice
    for content_id in ids:
        content = await get_content(store, content_id)
        # Published by one guarded move: its version went up once from scheduled.
        assert content.status is Status.PUBLISHED and content.version == 3


async def test_the_loop_publishes_when_the_clock_comes_and_stops_when_told(
    store: SQLiteStore, account: Account
) -> None:
    overdue = await scheduled(store, account, NOW + timedelta(minutes=1))
    ahead = await scheduled(store, account, NOW + timedelta(hours=1))
    clock = Clock(NOW + timedelta(minutes=2))
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler.run_forever(store, clock, every_s=0.01, stop=stop))

    async def published(ids: list[str]) -> bool:
        return await statuses(store, ids) == [Status.PUBLISHED]

    # The first pass, at start, catches up with what fell due while nothing ran.
    await until(lambda: published(overdue), "the overdue content published")
    assert await statuses(store, ahead) == [Status.SCHEDULED]
    clock.moment = NOW + timedelta(hours=1)
    await until(lambda: published(ahead), "the content published when its time came")
    stop.set()
    await asyncio.wait_for(loop, WAIT_S)


async def test_stop_ends_a_long_wait_at_once(store: SQLiteStore) -> None:
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler.run_forever(store, utc_now, every_s=3600, stop=stop))
    stop.set()
    await asyncio.wait_for(loop, WAIT_S)  # not an hour
    with pytest.raises(ValueError):
        await scheduler.run_forever(store, utc_now, every_s=0, stop=stop)


async def test_a_failed_pass_is_logged_and_the_next_one_runs(
    store: SQLiteStore,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = await scheduled(store, account, NOW + timedelta(minutes=1))
    real = scheduler.due_scheduled
    calls = 0

    async def flaky(store: DocumentStore, **kw: Any) -> list[Content]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the store went away for a moment")
        return await real(store, **kw)

    monkeypatch.setattr(scheduler, "due_scheduled", flaky)
    stop = asyncio.Event()
    clock = Clock(NOW + timedelta(minutes=2))
    with caplog.at_level(logging.ERROR, logger="lifeaccount.scheduler"):
        loop = asyncio.create_task(scheduler.run_forever(store, clock, every_s=0.01, stop=stop))

        async def published() -> bool:
            return await statuses(store, ids) == [Status.PUBLISHED]

        await until(published, "published by the pass after the failed one")
        stop.set()
        await asyncio.wait_for(loop, WAIT_S)
    assert "scheduled publishing failed" in caplog.text


async def test_serve_publishes_scheduled_contents_on_time(tmp_path: Path) -> None:
    clock = Clock(NOW)
    app = create_app(make_settings(tmp_path / "data", schedule_every_s=1), now=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            brand = await sign_up(client)
            made = await client.post(
                f"/api/v1/accounts/{brand.account_id}/contents",
                json={"kind": "post", "text": "明早十点上新"},
                headers=brand.key_headers,
            )
            url = f"/api/v1/contents/{made.json()['id']}"
            at = rfc3339(NOW + timedelta(minutes=10))
            r = await client.post(
                f"{url}/publish", json={"publish_at": at}, headers=brand.key_headers
            )
            assert r.json()["status"] == "scheduled"
            clock.moment = NOW + timedelta(minutes=10)

            async def public() -> bool:
                return (await client.get(url)).status_code == 200

            await until(public, "the scheduled post published by serve's loop")
            shown = (await client.get(url)).json()
            assert shown["status"] == "published" and shown["published_at"] == at


@pytest.mark.e2e
async def test_lifeaccount_worker_publishes_scheduled_contents(tmp_path: Path) -> None:
    data = tmp_path / "data"
    real_now = utc_now()
    # Scheduled by an app whose clock is an hour behind, so that the real clock of the worker
    # process finds it due at once.
    clock = Clock(real_now - timedelta(hours=1))
    app = create_app(make_settings(data), now=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            brand = await sign_up(client)
            made = await client.post(
                f"/api/v1/accounts/{brand.account_id}/contents",
                json={"kind": "post", "text": "上新"},
                headers=brand.key_headers,
            )
            content_id = made.json()["id"]
            at = rfc3339(real_now - timedelta(minutes=30))
            r = await client.post(
                f"/api/v1/contents/{content_id}/publish",
                json={"publish_at": at},
                headers=brand.key_headers,
            )
            assert r.json()["status"] == "scheduled"
            # And a live room whose publisher left an hour ago: the worker ends it too.
            room = await client.post(
                f"/api/v1/accounts/{brand.account_id}/rooms",
                json={"title": "断线的直播"},
                headers=brand.key_headers,
            )
            room_id = room.json()["id"]
            started = await client.post(f"/api/v1/rooms/{room_id}/start", headers=brand.key_headers)
            assert started.json()["state"] == "live"
            await rooms.publisher_back(app.state.services.store, room_id)
            await rooms.publisher_gone(app.state.services.store, room_id, at=clock())
    env = {**lifeaccount_env(), "LIFEACCOUNT_SCHEDULE_EVERY_S": "1"}
    worker = await asyncio.create_subprocess_exec(
        str(LIFEACCOUNT),
        "worker",
        "--data-dir",
        str(data),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert worker.stdout is not None
    store = open_store("sqlite:///lifeaccount.db", data, threaded=True)
    try:
        first = await asyncio.wait_for(worker.stdout.readline(), WAIT_S)
        assert b"scheduled publishing every 1 s" in first, first

        async def published() -> bool:
            return (await get_content(store, content_id)).status is Status.PUBLISHED

        await until(published, "the scheduled post published by the worker")
        assert (await get_content(store, content_id)).published_at == at

        async def ended() -> bool:
            return (await rooms.get_room(store, room_id)).state is rooms.State.ENDED

        await until(ended, "the abandoned room ended by the worker")
        assert (await rooms.get_room(store, room_id)).ended_reason is rooms.EndReason.PUBLISHER_GONE
    finally:
        await store.close()
        if worker.returncode is None:
            worker.terminate()
        rest = await asyncio.wait_for(worker.stdout.read(), WAIT_S)
        code = await asyncio.wait_for(worker.wait(), WAIT_S)
    assert code == 0, rest
    assert b"lifeaccount worker stopped" in rest
