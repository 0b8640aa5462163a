from __future__ import annotations

import asyncio
import random

from accounts import follows
from accounts.accounts import Account, get_account
from accounts.fans import upsert_fan
from store.sqlite import SQLiteStore
from tests.accounts.conftest import NOW


async def test_follow_and_unfollow_are_idempotent(store: SQLiteStore, account: Account) -> None:
    assert await follows.follow(store, account.id, "fan_a", now=NOW) == follows.FollowState(True, 1)
    assert await follows.follow(store, account.id, "fan_a", now=NOW) == follows.FollowState(True, 1)
    assert await follows.is_following(store, account.id, "fan_a")
    assert await follows.unfollow(store, account.id, "fan_a") == follows.FollowState(False, 0)
    assert await follows.unfollow(store, account.id, "fan_a") == follows.FollowState(False, 0)
    assert not await follows.is_following(store, account.id, "fan_a")


async def test_a_storm_of_follows_and_unfollows_keeps_the_count_exact(
    store: SQLiteStore, account: Account
) -> None:
    rng = random.Random(7)
    fans = [f"fan_{i}" for i in range(60)]
    ops = [(rng.choice(fans), rng.random() < 0.6) for _ in range(600)]

    async def apply(fan_id: str, on: bool) -> None:
        if on:
            await follows.follow(store, account.id, fan_id, now=NOW)
        else:
            await follows.unfollow(store, account.id, fan_id)

    await asyncio.gather(*(apply(f, on) for f, on in ops))
    edges = await store.collection(follows.FOLLOWS).count({"account_id": account.id})
    assert (await get_account(store, account.id)).follower_count == edges


async def test_followers_page_newest_first_with_names(store: SQLiteStore, account: Account) -> None:
    ids = []
    for i in range(5):
        fan = await upsert_fan(
            store, issuer_id=account.id, external_id=f"e{i}", name=f"F{i}", now=NOW
        )
        ids.append(fan.id)
        await follows.follow(store, account.id, fan.id, now=NOW)
    names: list[str] = []
    cursor = None
    while True:
        page = await follows.followers(store, account.id, limit=2, cursor=cursor)
        names += [f.name for f in page.items]
        if (cursor := page.next_cursor) is None:
            break
    # Same timestamp for all: the id (creation order) breaks the tie, newest first.
    assert names == ["F4", "F3", "F2", "F1", "F0"]
    listed, _ = await follows.following(store, ids[0], limit=10, cursor=None)
    assert [a for a, _ in listed] == [account.id]
