"""Red packets on a real SQLite file (live/red_packets.py, live/split.py): the split from the
seed and its commitment, the budget paid at the drop, one share per fan exactly once under
thousands of concurrent grabs and retries, the refund of what is left exactly once with two
sweepers racing, and the ledger balanced after each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts import ledger
from accounts import schema as accounts_schema
from accounts.accounts import Tier, create_account
from accounts.errors import Conflict, Forbidden, Invalid
from accounts.fans import upsert_fan
from accounts.tiers import set_ladder, set_member_tier
from content import schema as content_schema
from live import red_packets, rooms, split
from live import schema as live_schema
from live.rooms import Room
from store.clock import utc_now
from store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=utc_now().tzinfo)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "rp.db")
    await opened.ensure_indexes(
        [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]
    )
    yield opened
    assert await ledger.audit(opened) == []  # whatever the test did, the ledger balances
    await opened.close()


async def live_room(store: SQLiteStore, budget: int) -> Room:
    account = await create_account(store, name="Tea", handle="tea-rp", now=NOW)
    room = await rooms.create_room(store, account.id, title="红包雨", now=NOW)
    room = await rooms.go_live(store, room.id, now=NOW)
    await ledger.credit_budget(
        store,
        account_id=account.id,
        points=budget,
        reason=None,
        reference=None,
        idempotency_key="top-up",
        now=NOW,
    )
    return room


@settings(max_examples=300, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    count=st.integers(1, 200),
    extra=st.integers(0, 5_000),
    mode=st.sampled_from(["random", "equal"]),
)
def test_the_split_is_whole_at_least_one_each_and_the_seeds_alone(
    seed: bytes, count: int, extra: int, mode: str
) -> None:
    total = count + extra
    shares = split.split(seed, total, count, mode)
    assert len(shares) == count and sum(shares) == total and min(shares) >= 1
    assert split.split(seed, total, count, mode) == shares  # nothing but the seed decides
    if mode == "equal":
        assert max(shares) - min(shares) <= 1
    left = total
    for i, share in enumerate(shares[:-1]):  # each within double the mean of what was left
        assert share <= 2 * left // (count - i)
        left -= share
    published = split.commitment(seed.hex(), shares)
    assert split.verify(seed.hex(), shares, total, count, mode, published) == []
    if count > 1 and shares[0] != shares[1]:
        swapped = [shares[1], shares[0], *shares[2:]]
        assert split.verify(seed.hex(), swapped, total, count, mode, published) != []


def test_the_generator_is_the_documented_one() -> None:
    """Fixed vectors, as docs/red-packets.md shows them, so another implementation can check
    itself against ours (and ours never drifts from what was published)."""
    zero = split.split(bytes(32), 100, 5, "random")
    assert zero == [16, 32, 3, 46, 3]
    assert split.commitment("00" * 32, zero) == (
        "cc5ec82dcc963f31bf635688d13054901e2fdf031e7a1831a6e95c5c6a4be6b4"
    )
    counting = bytes(range(32))
    assert split.split(counting, 1000, 10, "random") == [40, 81, 194, 18, 122, 65, 70, 25, 339, 46]
    assert split.split(counting, 10, 3, "equal") == [4, 3, 3]


async def test_a_thousand_shares_for_three_thousand_fans_go_once_each(
    store: SQLiteStore,
) -> None:
    room = await live_room(store, budget=10_000)
    packet = await red_packets.drop(store, room, total=5_000, count=1_000, mode="random", now=NOW)
    assert await ledger.balance(store, room.account_id, ledger.BUDGET) == 5_000
    assert packet.reveal() is None  # secret until it finishes
    fans = [f"fan_{n:026d}" for n in range(3_000)]
    retries = fans[::6]  # 500 fans grab twice at once

    async def grab(fan: str) -> tuple[str, int | None, bool]:
        try:
            got = await red_packets.grab(store, packet.id, fan_id=fan, now=NOW)
        except Conflict as exc:
            assert exc.code == "red_packet_empty"
            return fan, None, False
        return fan, got.amount, got.repeat

    results = await asyncio.gather(*(grab(f) for f in [*fans, *retries]))
    won: dict[str, int] = {}
    for fan, amount, _ in results:
        if amount is not None:
            assert won.setdefault(fan, amount) == amount  # a fan's every answer agrees
    finished = await red_packets.get_packet(store, packet.id, with_shares=True)
    assert len(won) == 1_000 and sum(won.values()) == 5_000 and min(won.values()) >= 1
    assert finished.finished_at is not None and finished.grabbed_total == 5_000
    reveal = finished.reveal()
    assert reveal is not None
    assert (
        split.verify(reveal["seed"], reveal["shares"], 5_000, 1_000, "random", packet.commitment)
        == []
    )
    taken = await red_packets.grabs(store, packet.id)
    assert [g["n"] for g in taken] == list(range(1_000))
    assert all(g["amount"] == reveal["shares"][g["n"]] for g in taken)
    assert {g["fan_id"]: g["amount"] for g in taken} == won
    for fan, amount in list(won.items())[:20]:  # a winner asking again, after it emptied
        again = await red_packets.grab(store, packet.id, fan_id=fan, now=NOW)
        assert (again.amount, again.repeat) == (amount, True)
        assert await ledger.balance(store, room.account_id, ledger.wallet(fan)) == amount
    late = [f for f in fans if f not in won][0]
    with pytest.raises(Conflict) as empty:
        await red_packets.grab(store, packet.id, fan_id=late, now=NOW)
    assert empty.value.code == "red_packet_empty"


async def test_expiry_refunds_what_is_left_exactly_once_with_two_sweepers(
    store: SQLiteStore,
) -> None:
    room = await live_room(store, budget=1_000)
    packet = await red_packets.drop(
        store, room, total=900, count=30, mode="equal", expires_in_s=60, now=NOW
    )
    for n in range(12):
        await red_packets.grab(store, packet.id, fan_id=f"fan_{n:026d}", now=NOW)
    assert await red_packets.expire(store, packet.id, now=NOW) is None  # not due yet
    later = NOW + timedelta(seconds=61)
    assert await red_packets.due(store, now=later) == [packet.id]
    both = await asyncio.gather(
        red_packets.expire(store, packet.id, now=later),
        red_packets.expire(store, packet.id, now=later),
    )
    done = [p for p in both if p is not None]
    assert len(done) == 1 and done[0].refunded == 900 - 12 * 30
    assert await ledger.balance(store, room.account_id, ledger.BUDGET) == 100 + 900 - 360
    assert await ledger.balance(store, room.account_id, red_packets.book(packet.id)) == 0
    assert await red_packets.due(store, now=later) == []
    with pytest.raises(Conflict) as over:
        await red_packets.grab(store, packet.id, fan_id="fan_late", now=later)
    assert over.value.code == "red_packet_finished"
    kept = await red_packets.grab(store, packet.id, fan_id=f"fan_{0:026d}", now=later)
    assert (kept.amount, kept.repeat) == (30, True)


async def test_a_packet_counts_down_keeps_to_its_tier_and_the_budget(
    store: SQLiteStore,
) -> None:
    room = await live_room(store, budget=100)
    with pytest.raises(Conflict) as poor:
        await red_packets.drop(store, room, total=101, count=1, mode="random", now=NOW)
    assert poor.value.code == "insufficient_points"
    for fields, field in [
        ({"total": 5, "count": 6}, "total"),
        ({"total": 5, "count": 0}, "count"),
        ({"total": 5, "count": 1, "mode": "lucky"}, "mode"),
        ({"total": 5, "count": 1, "expires_in_s": 1}, "expires_in_s"),
    ]:
        with pytest.raises(Invalid) as bad:
            await red_packets.drop(store, room, **{"mode": "random", **fields}, now=NOW)  # type: ignore[arg-type]
        assert bad.value.field == field
    await set_ladder(store, room.account_id, [Tier(0, "粉丝"), Tier(1, "银卡")], now=NOW)
    packet = await red_packets.drop(
        store, room, total=10, count=2, mode="random", min_tier=1, opens_in_s=30, now=NOW
    )
    with pytest.raises(Conflict) as early:
        await red_packets.grab(store, packet.id, fan_id="fan_a", now=NOW)
    assert early.value.code == "red_packet_not_open"
    opened = NOW + timedelta(seconds=30)
    with pytest.raises(Forbidden) as low:
        await red_packets.grab(store, packet.id, fan_id="fan_a", now=opened)
    assert low.value.code == "tier_required"
    assert await ledger.balance(store, room.account_id, ledger.wallet("fan_a")) == 0


async def test_grabs_that_arrive_together_are_answered_each_in_arrival_order(
    store: SQLiteStore,
) -> None:
    """One group: shares go in arrival order; a fan twice in it, a fan who grabbed before, a
    fan below the tier and the fans after the last share each get their own answer."""
    room = await live_room(store, budget=100)
    await set_ladder(store, room.account_id, [Tier(0, "粉丝"), Tier(1, "银卡")], now=NOW)
    fans = {
        name: (
            await upsert_fan(store, issuer_id=room.account_id, external_id=name, name=name, now=NOW)
        ).id
        for name in ["m0", "m1", "m2", "m3", "m4", "low"]
    }
    for name, fan in fans.items():
        if name != "low":
            await set_member_tier(store, room.account_id, fan, 1, now=NOW)
    packet = await red_packets.drop(
        store, room, total=40, count=4, mode="equal", min_tier=1, now=NOW
    )
    before = await red_packets.grab(store, packet.id, fan_id=fans["m0"], now=NOW)
    asked = [fans[n] for n in ["m1", "low", "m0", "m1", "m2", "m3", "m4"]]
    answers = await asyncio.gather(
        *(red_packets.grab(store, packet.id, fan_id=f, now=NOW) for f in asked),
        return_exceptions=True,
    )
    got = [
        (a.n, a.repeat) if isinstance(a, red_packets.Grab) else a.code  # type: ignore[union-attr]
        for a in answers
    ]
    assert got == [
        (1, False),
        "tier_required",
        (before.n, True),
        (1, True),
        (2, False),
        (3, False),
        "red_packet_empty",
    ]
    finished = answers[5]
    assert isinstance(finished, red_packets.Grab) and finished.packet.reveal() is not None
    # Every answer of the group sees the packet finished; one grab finished it.
    grabs = [a for a in answers if isinstance(a, red_packets.Grab)]
    assert all(g.packet.finished_at is not None for g in grabs)
    assert [g.last for g in grabs] == [False, False, False, False, True]
    assert await ledger.balance(store, room.account_id, ledger.wallet(fans["m1"])) == 10
    assert await ledger.balance(store, room.account_id, ledger.wallet(fans["low"])) == 0
    assert await ledger.audit(store) == []


async def test_two_workers_on_the_same_file_grab_and_expire_exactly_once(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """Two processes' stores (each its own connections, lock and groups, on threads as
    ``lifeaccount worker`` runs) grab one packet with the same fans, then both sweep it: one
    share per winner across both, and one refund."""
    # Both on threads: a worker waiting out the other's write lock must not stall the loop
    # the other's transaction needs (the fixture's store, inline, only sets up and checks).
    first = SQLiteStore(tmp_path / "rp.db", threaded=True)
    other = SQLiteStore(tmp_path / "rp.db", threaded=True)
    try:
        room = await live_room(store, budget=2_000)
        packet = await red_packets.drop(
            store, room, total=1_500, count=300, mode="random", expires_in_s=60, now=NOW
        )
        fans = [f"fan_{n:026d}" for n in range(400)]

        async def grab(on: SQLiteStore, fan: str) -> tuple[str, int] | None:
            try:
                got = await red_packets.grab(on, packet.id, fan_id=fan, now=NOW)
            except Conflict:
                return None
            return fan, got.amount

        # Every fan asks through both workers at once, some of them twice on each.
        asks = [grab(on, f) for f in fans for on in (first, other)]
        asks += [grab(other, f) for f in fans[::7]]
        answers = [a for a in await asyncio.gather(*asks) if a is not None]
        won: dict[str, int] = {}
        for fan, amount in answers:
            assert won.setdefault(fan, amount) == amount  # both workers answer the same share
        taken = await red_packets.grabs(store, packet.id)
        assert len(won) == len(taken) == 300 and sum(won.values()) == 1_500
        assert {g["fan_id"]: g["amount"] for g in taken} == won

        # A second packet, partly grabbed, expires with both workers sweeping at once.
        late = await red_packets.drop(
            store, room, total=500, count=50, mode="equal", expires_in_s=60, now=NOW
        )
        for fan in fans[:20]:
            await red_packets.grab(other, late.id, fan_id=fan, now=NOW)
        after = NOW + timedelta(seconds=61)
        both = await asyncio.gather(
            red_packets.expire(first, late.id, now=after),
            red_packets.expire(other, late.id, now=after),
        )
        assert [p.refunded for p in both if p is not None] == [300]
        assert await ledger.balance(store, room.account_id, ledger.BUDGET) == 2_000 - 1_500 - 200
        assert await ledger.audit(other) == []
    finally:
        await first.close()
        await other.close()
