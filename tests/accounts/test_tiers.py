from __future__ import annotations

import pytest

from accounts import tiers
from accounts.accounts import Account, Tier, get_account
from accounts.errors import Conflict, Invalid, NotFound
from accounts.fans import Fan
from store.sqlite import SQLiteStore
from tests.accounts.conftest import NOW

LADDER = [Tier(2, "金卡"), Tier(0, "普通"), Tier(1, "银卡"), Tier(3, "钻石")]


async def test_a_ladder_is_stored_in_rank_order(store: SQLiteStore, account: Account) -> None:
    await tiers.set_ladder(store, account.id, LADDER, now=NOW)
    stored = (await get_account(store, account.id)).tiers
    assert [t.rank for t in stored] == [0, 1, 2, 3]
    assert stored[3].name == "钻石"


@pytest.mark.parametrize(
    ("ladder", "field"),
    [
        ([Tier(1, "a")], "tiers"),  # no rank 0
        ([Tier(0, "a"), Tier(0, "b")], "tiers.1.rank"),
        ([Tier(0, "a"), Tier(1, "a")], "tiers.1.name"),
        ([Tier(0, "  ")], "tiers.0.name"),
        ([], "tiers"),
    ],
)
async def test_bad_ladders_name_the_field(
    store: SQLiteStore, account: Account, ladder: list[Tier], field: str
) -> None:
    with pytest.raises(Invalid) as err:
        await tiers.set_ladder(store, account.id, ladder, now=NOW)
    assert err.value.field == field
    assert [t.rank for t in (await get_account(store, account.id)).tiers] == [0]


async def test_members_get_tiers_only_from_the_ladder(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    await tiers.set_ladder(store, account.id, LADDER, now=NOW)
    assert await tiers.member_tier(store, account.id, fan.id) == 0
    member = await tiers.set_member_tier(store, account.id, fan.id, 2, now=NOW)
    assert (member.tier, member.tier_name) == (2, "金卡")
    assert await tiers.member_tier(store, account.id, fan.id) == 2
    with pytest.raises(Invalid) as err:
        await tiers.set_member_tier(store, account.id, fan.id, 7, now=NOW)
    assert err.value.code == "unknown_tier"
    with pytest.raises(NotFound):
        await tiers.set_member_tier(store, account.id, "fan_nobody", 1, now=NOW)


async def test_a_rank_held_by_members_cannot_be_removed(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    await tiers.set_ladder(store, account.id, LADDER, now=NOW)
    await tiers.set_member_tier(store, account.id, fan.id, 3, now=NOW)
    with pytest.raises(Conflict) as err:
        await tiers.set_ladder(store, account.id, LADDER[:3], now=NOW)
    assert err.value.code == "tier_in_use"
    await tiers.set_member_tier(store, account.id, fan.id, 1, now=NOW)
    assert len(await tiers.set_ladder(store, account.id, LADDER[:3], now=NOW)) == 3
