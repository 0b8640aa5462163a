from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from accounts.accounts import Account, create_account
from accounts.errors import Conflict, Invalid, NotFound
from content import coupons
from content.coupons import claim, claimed_by, create_coupon, fan_claims, get_coupon
from store.clock import rfc3339
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW, make_coupon

GOOD: dict[str, Any] = {
    "title": "满100减20",
    "stock": 100,
    "per_fan_limit": 1,
    "valid_from": "2026-11-26T00:00:00Z",
    "valid_until": "2026-12-01T00:00:00+08:00",
}


async def test_a_coupon_is_created_with_its_stock_and_window(
    store: SQLiteStore, account: Account
) -> None:
    coupon = await create_coupon(store, account.id, **GOOD, description="  限门店  ", now=NOW)
    assert (coupon.stock, coupon.total, coupon.claimed) == (100, 100, 0)
    assert coupon.valid_until == "2026-11-30T16:00:00.000Z"  # stored in UTC
    assert coupon.description == "限门店"
    assert await get_coupon(store, coupon.id) == coupon
    assert coupon.id.startswith("cpn_")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "t" * 61}, "title"),
        ({"stock": 0}, "stock"),
        ({"stock": "5"}, "stock"),
        ({"stock": True}, "stock"),
        ({"per_fan_limit": 0}, "per_fan_limit"),
        ({"per_fan_limit": 1.5}, "per_fan_limit"),
        ({"valid_from": "yesterday"}, "valid_from"),
        ({"valid_from": "2026-11-26T00:00:00"}, "valid_from"),  # no offset
        ({"valid_until": "2026-11-25T23:00:00Z"}, "valid_until"),  # before valid_from
        (
            {"valid_from": "2026-11-01T00:00:00Z", "valid_until": "2026-11-20T00:00:00Z"},
            "valid_until",
        ),  # already over
        ({"description": "d" * 501}, "description"),
    ],
)
async def test_bad_coupons_name_the_field(
    store: SQLiteStore, account: Account, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as err:
        await create_coupon(store, account.id, **{**GOOD, **changes}, now=NOW)
    assert err.value.field == field
    assert await store.collection(coupons.COUPONS).count({}) == 0


async def test_a_coupon_needs_an_account(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        await create_coupon(store, "acc_missing", **GOOD, now=NOW)


async def test_a_claim_takes_one_from_stock(store: SQLiteStore, account: Account) -> None:
    coupon = await make_coupon(store, account, stock=3, per_fan_limit=2)
    result = await claim(store, coupon.id, fan_id="fan_a", now=NOW)
    assert not result.repeat and result.stock == 2 and result.claim.number == 1
    assert result.claim.account_id == account.id
    after = await get_coupon(store, coupon.id)
    assert (after.stock, after.claimed) == (2, 1)
    assert await claimed_by(store, coupon.id, "fan_a") == 1


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (NOW - timedelta(hours=1, milliseconds=1), "coupon_not_started"),
        (NOW - timedelta(hours=1), None),  # valid_from is inclusive
        (NOW + timedelta(days=7, milliseconds=-1), None),
        (NOW + timedelta(days=7), "coupon_expired"),  # valid_until is exclusive
    ],
)
async def test_claims_only_inside_the_window(
    store: SQLiteStore, account: Account, at: Any, code: str | None
) -> None:
    coupon = await make_coupon(store, account)
    if code is None:
        assert (await claim(store, coupon.id, fan_id="fan_a", now=at)).stock == 9
        return
    with pytest.raises(Conflict) as err:
        await claim(store, coupon.id, fan_id="fan_a", now=at)
    assert err.value.code == code
    assert (await get_coupon(store, coupon.id)).stock == 10


async def test_a_fan_claims_at_most_the_limit(store: SQLiteStore, account: Account) -> None:
    coupon = await make_coupon(store, account, per_fan_limit=2)
    assert [
        (await claim(store, coupon.id, fan_id="fan_a", now=NOW)).claim.number for _ in range(2)
    ] == [1, 2]
    with pytest.raises(Conflict) as err:
        await claim(store, coupon.id, fan_id="fan_a", now=NOW)
    assert err.value.code == "coupon_limit_reached"
    assert (await claim(store, coupon.id, fan_id="fan_b", now=NOW)).claim.number == 1
    assert (await get_coupon(store, coupon.id)).stock == 7


async def test_stock_never_goes_below_zero_and_a_refusal_leaves_nothing(
    store: SQLiteStore, account: Account
) -> None:
    coupon = await make_coupon(store, account, stock=1, per_fan_limit=3)
    await claim(store, coupon.id, fan_id="fan_a", now=NOW)
    with pytest.raises(Conflict) as err:
        await claim(store, coupon.id, fan_id="fan_b", now=NOW)
    assert err.value.code == "coupon_out_of_stock"
    assert (await get_coupon(store, coupon.id)).stock == 0
    assert await claimed_by(store, coupon.id, "fan_b") == 0  # its holding rolled back
    assert await store.collection(coupons.CLAIMS).count({}) == 1


async def test_an_unknown_coupon_is_not_found(store: SQLiteStore) -> None:
    with pytest.raises(NotFound) as err:
        await claim(store, "cpn_missing", fan_id="fan_a", now=NOW)
    assert err.value.code == "coupon_not_found"


async def test_a_retry_with_the_same_key_answers_the_first_claim(
    store: SQLiteStore, account: Account
) -> None:
    coupon = await make_coupon(store, account, stock=1, per_fan_limit=1)
    first = await claim(store, coupon.id, fan_id="fan_a", idempotency_key="op-1", now=NOW)
    # Even after the stock ran out and the coupon expired, the retry answers the same claim.
    later = NOW + timedelta(days=30)
    again = await claim(store, coupon.id, fan_id="fan_a", idempotency_key="op-1", now=later)
    assert again.repeat and again.claim == first.claim and again.stock == 0
    # The key is the fan's: another fan's key of the same text is a claim of its own.
    with pytest.raises(Conflict) as err:
        await claim(store, coupon.id, fan_id="fan_b", idempotency_key="op-1", now=NOW)
    assert err.value.code == "coupon_out_of_stock"


async def test_concurrent_retries_of_one_key_claim_once(
    store: SQLiteStore, account: Account
) -> None:
    coupon = await make_coupon(store, account, stock=10, per_fan_limit=5)
    results = await asyncio.gather(
        *(claim(store, coupon.id, fan_id="fan_a", idempotency_key="k", now=NOW) for _ in range(8))
    )
    assert sum(not r.repeat for r in results) == 1
    assert len({r.claim.id for r in results}) == 1
    assert (await get_coupon(store, coupon.id)).stock == 9


@pytest.mark.parametrize(
    ("limit", "claimed"),
    [
        (2, 100),  # 50 fans x 2 = 100: the per-fan limit binds before the stock of 120
        (3, 120),  # 50 fans x 3 = 150 > 120: the stock binds and runs out exactly
    ],
)
async def test_racing_claims_never_overshoot(
    threaded_store: SQLiteStore, limit: int, claimed: int
) -> None:
    store = threaded_store
    account = await create_account(store, name="Tea House", handle="tea-house", now=NOW)
    coupon = await make_coupon(store, account, stock=120, per_fan_limit=limit)
    fans = [f"fan_{i:02d}" for i in range(50)]

    async def attempt(n: int) -> tuple[str, str]:
        fan = fans[n % 50]
        # Half the attempts carry a key that a second attempt retries.
        key = f"{fan}-{n // 100}" if n % 2 else None
        try:
            result = await claim(store, coupon.id, fan_id=fan, idempotency_key=key, now=NOW)
        except Conflict as exc:
            return fan, exc.code
        return fan, "repeat" if result.repeat else "claimed"

    outcomes = await asyncio.gather(*(attempt(n) for n in range(200)))
    per_fan = Counter(fan for fan, what in outcomes if what == "claimed")
    assert sum(per_fan.values()) == claimed
    assert max(per_fan.values()) <= limit
    after = await get_coupon(store, coupon.id)
    assert (after.stock, after.claimed) == (120 - claimed, claimed)
    assert await store.collection(coupons.CLAIMS).count({"coupon_id": coupon.id}) == claimed
    for fan in fans:
        assert await claimed_by(store, coupon.id, fan) == per_fan[fan]
    assert any(what == "repeat" for _, what in outcomes)  # the retries did race their firsts
    refusals = {what for _, what in outcomes} - {"claimed", "repeat"}
    assert refusals <= {"coupon_limit_reached", "coupon_out_of_stock"}


async def test_a_200_stock_coupon_goes_once_each_to_200_of_600_racing_fans(
    threaded_store: SQLiteStore,
) -> None:
    """Issue 7's exactly-once proof for coupons: 600 fans (a third of them twice, one with
    its retry key) race for 200, one each."""
    store = threaded_store
    account = await create_account(store, name="Tea House", handle="tea-house", now=NOW)
    coupon = await make_coupon(store, account, stock=200, per_fan_limit=1)
    fans = [f"fan_{i:03d}" for i in range(600)]
    attempts = [(f, None) for f in fans] + [(f, f"k-{f}") for f in fans[::3]]
    attempts += [(f, f"k-{f}") for f in fans[::3]]  # the same key again, racing

    async def attempt(fan: str, key: str | None) -> tuple[str, str]:
        try:
            result = await claim(store, coupon.id, fan_id=fan, idempotency_key=key, now=NOW)
        except Conflict as exc:
            return fan, exc.code
        return fan, "repeat" if result.repeat else "claimed"

    outcomes = await asyncio.gather(*(attempt(f, k) for f, k in attempts))
    winners = Counter(fan for fan, what in outcomes if what == "claimed")
    assert sum(winners.values()) == 200 and max(winners.values()) == 1
    after = await get_coupon(store, coupon.id)
    assert (after.stock, after.claimed) == (0, 200)
    assert await store.collection(coupons.CLAIMS).count({"coupon_id": coupon.id}) == 200
    refusals = {what for _, what in outcomes} - {"claimed", "repeat"}
    assert refusals <= {"coupon_limit_reached", "coupon_out_of_stock"}


async def test_a_fans_claims_are_listed_newest_first(
    store: SQLiteStore, account: Account, other_account: Account
) -> None:
    mine = await make_coupon(store, account, per_fan_limit=3)
    theirs = await make_coupon(store, other_account)
    for minutes in range(3):
        await claim(store, mine.id, fan_id="fan_a", now=NOW + timedelta(minutes=minutes))
    await claim(store, theirs.id, fan_id="fan_a", now=NOW + timedelta(minutes=9))
    await claim(store, mine.id, fan_id="fan_b", now=NOW)
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = await fan_claims(store, "fan_a", limit=2, cursor=cursor)
        seen += [(c.coupon_id, c.number) for c in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [(theirs.id, 1), (mine.id, 3), (mine.id, 2), (mine.id, 1)]
    own = await fan_claims(store, "fan_a", account_id=account.id, limit=10, cursor=None)
    assert [c.number for c in own.items] == [3, 2, 1]


async def test_content_may_refer_only_to_its_own_coupons(
    store: SQLiteStore, account: Account, other_account: Account
) -> None:
    mine = await make_coupon(store, account)
    theirs = await make_coupon(store, other_account)
    assert await coupons.check_coupon_ids(store, account.id, [mine.id]) == [mine.id]
    for ids, field, code in [
        ([mine.id, theirs.id], "coupon_ids.1", "unknown_coupon"),
        (["cpn_missing"], "coupon_ids.0", "unknown_coupon"),
        ([mine.id, mine.id], "coupon_ids.1", "invalid_field"),
        ([mine.id] * 6, "coupon_ids", "invalid_field"),
        ([7], "coupon_ids.0", "invalid_field"),
    ]:
        with pytest.raises(Invalid) as err:
            await coupons.check_coupon_ids(store, account.id, ids)
        assert (err.value.field, err.value.code) == (field, code)


async def test_an_accounts_coupons_page_newest_first(store: SQLiteStore, account: Account) -> None:
    made = []
    for hours in range(3):
        made.append(
            await create_coupon(store, account.id, **GOOD, now=NOW + timedelta(hours=hours))
        )
    page = await coupons.account_coupons(store, account.id, limit=2, cursor=None)
    rest = await coupons.account_coupons(store, account.id, limit=2, cursor=page.next_cursor)
    assert [c.id for c in page.items + rest.items] == [c.id for c in reversed(made)]
    assert rest.next_cursor is None
    assert rfc3339(NOW) == made[0].created_at
