"""Prop sends on a real SQLite file (live/props.py): sends that arrive together are written in
one group, yet each stands alone — a fan who cannot pay the second, a prop above the fan's
tier, a retried key, the same key twice in the group each get their own answer — and the
ledger, the takings and the board agree after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accounts import ledger
from accounts import schema as accounts_schema
from accounts.accounts import Tier, create_account
from accounts.errors import Conflict, DomainError, Invalid, NotFound
from accounts.fans import upsert_fan
from accounts.tiers import set_ladder, set_member_tier
from content import schema as content_schema
from live import props, rooms
from live import schema as live_schema
from store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "props.db")
    await opened.ensure_indexes(
        [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]
    )
    yield opened
    assert await ledger.audit(opened) == []
    await opened.close()


async def test_sends_that_arrive_together_each_get_their_own_answer(store: SQLiteStore) -> None:
    account = await create_account(store, name="Tea", handle="tea-props", now=NOW)
    room = await rooms.go_live(
        store, (await rooms.create_room(store, account.id, title="直播", now=NOW)).id, now=NOW
    )
    await set_ladder(store, account.id, [Tier(0, "粉丝"), Tier(1, "银卡")], now=NOW)
    tea, rocket = await props.set_catalog(
        store,
        account.id,
        [{"name": "奶茶", "price": 10}, {"name": "火箭", "price": 50, "min_tier": 1}],
        now=NOW,
    )
    fans = {}
    for name, points in [("rich", 100), ("poor", 15), ("member", 60)]:
        fan = await upsert_fan(store, issuer_id=account.id, external_id=name, name=name, now=NOW)
        fans[name] = fan.id
        await ledger.transfer(
            store,
            account_id=account.id,
            debit=ledger.ISSUED,
            credit=ledger.wallet(fan.id),
            points=points,
            reason="test",
            reference="test",
            idempotency_key=f"fund:{name}",
            now=NOW,
        )
    await set_member_tier(store, account.id, fans["member"], 1, now=NOW)
    before = await props.send(
        store,
        room,
        fan_id=fans["rich"],
        fan_name="rich",
        prop_id=tea.id,
        count=1,
        idempotency_key="k0",
        now=NOW,
    )

    async def send(who: str, prop: props.Prop, key: str, count: int = 1) -> object:
        try:
            got = await props.send(
                store,
                room,
                fan_id=fans[who],
                fan_name=who,
                prop_id=prop.id,
                count=count,
                idempotency_key=key,
                now=NOW,
            )
        except DomainError as exc:
            return exc.code
        return (got.points, got.balance, got.repeat)

    answers = await asyncio.gather(
        send("poor", tea, "p1"),  # 15 → 5
        send("poor", tea, "p2"),  # cannot pay the second
        send("rich", rocket, "r1"),  # tier 0: not for it
        send("member", rocket, "m1"),  # tier 1: 60 → 10
        send("rich", tea, "k0"),  # the send before this group, asked again
        send("rich", tea, "r2", count=2),  # 90 → 70
        send("rich", tea, "r2", count=2),  # the same key twice in the group
    )
    assert answers == [
        (10, 5, False),
        "insufficient_points",
        "tier_required",
        (50, 10, False),
        (before.points, 70, True),
        (20, 70, False),
        (20, 70, True),
    ]
    assert await ledger.balance(store, account.id, props.TAKINGS) == 10 + 10 + 50 + 20
    board = {s.name: s.points for s in await props.supporters(store, room.id)}
    assert board == {"rich": 30, "member": 50, "poor": 10}
    assert await props.room_total(store, room.id) == (90, 3)


async def test_a_bad_send_is_refused_before_any_group(store: SQLiteStore) -> None:
    account = await create_account(store, name="Tea", handle="tea-props2", now=NOW)
    room = await rooms.create_room(store, account.id, title="还没开播", now=NOW)
    [tea] = await props.set_catalog(store, account.id, [{"name": "奶茶", "price": 1}], now=NOW)
    for prop_id, count, error, field in [
        (None, 1, Invalid, "prop_id"),
        (tea.id, 0, Invalid, "count"),
        (tea.id, 100, Invalid, "count"),
        ("prp_nope", 1, NotFound, "prop_id"),
    ]:
        with pytest.raises(error) as refused:
            await props.send(
                store,
                room,
                fan_id="fan_x",
                fan_name="x",
                prop_id=prop_id,
                count=count,
                idempotency_key="k",
                now=NOW,
            )
        assert refused.value.field == field
    with pytest.raises(Conflict) as closed:
        await props.send(
            store,
            room,
            fan_id="fan_x",
            fan_name="x",
            prop_id=tea.id,
            count=1,
            idempotency_key="k",
            now=NOW,
        )
    assert closed.value.code == "room_not_live"
