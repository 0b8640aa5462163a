from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from accounts.accounts import (
    ACCOUNT_KEYWORDS,
    ACCOUNTS,
    Account,
    create_account,
    update_profile,
)
from accounts.errors import Invalid
from content.contents import Content, create_content
from content.coupons import claim
from content.publishing import publish
from content.searchbox import MAX_CONTENTS, MAX_SERVICES, find_account, search_box
from content.sensitive import ReviewPolicy
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW, make_coupon


def link(page: str, **query: str) -> dict[str, Any]:
    return {"app_id": "wx_tea", "page": page, "title": "去下单", "query": query}


async def post(
    store: SQLiteStore,
    account: Account,
    policy: ReviewPolicy,
    minutes: int,
    links: list[dict[str, Any]] | None = None,
    publish_it: bool = True,
) -> Content:
    at = NOW + timedelta(minutes=minutes)
    body: dict[str, Any] = {"kind": "post", "text": f"新品 {minutes}"}
    if links:
        body["service_links"] = links
    made = await create_content(store, account.id, body, now=at)
    return await publish(store, made.id, policy=policy, now=at) if publish_it else made


async def test_keywords_name_and_handle_find_the_account_folded(
    store: SQLiteStore, account: Account
) -> None:
    await update_profile(store, account.id, keywords=["护肤", "Tea Time"], now=NOW)
    for q in ("护肤", "tea time", "ＴＥＡ　ＴＩＭＥ", "  Tea   TIME ", "tea-house", "TEA HOUSE"):
        found = await find_account(store, q)
        assert found is not None and found.id == account.id, q
    for q in ("护", "tea", "tea time!", "house"):  # exact matches only, never a substring
        assert await find_account(store, q) is None, q
    # Keywords replaced: the old ones no longer lead here.
    await update_profile(store, account.id, keywords=["新品"], now=NOW)
    assert await find_account(store, "护肤") is None
    assert await store.collection(ACCOUNT_KEYWORDS).count({"account_id": account.id}) == 1
    await update_profile(store, account.id, name="茶馆", now=NOW)
    assert (await find_account(store, "茶馆")) == (await find_account(store, "新品"))
    assert await find_account(store, "tea house") is None


async def test_a_shared_keyword_goes_to_the_most_followed_and_a_handle_to_its_owner(
    store: SQLiteStore, account: Account, other_account: Account
) -> None:
    for a in (account, other_account):
        await update_profile(store, a.id, keywords=["咖啡", "tea-house"], now=NOW)
    found = await find_account(store, "咖啡")
    assert found is not None and found.id == account.id  # a tie: the older account
    await store.collection(ACCOUNTS).update_one(
        {"id": other_account.id}, {"$set": {"follower_count": 5}}
    )
    found = await find_account(store, "咖啡")
    assert found is not None and found.id == other_account.id
    # Listing another account's handle as a keyword does not take its card.
    found = await find_account(store, "tea-house")
    assert found is not None and found.id == account.id


async def test_queries_are_checked(store: SQLiteStore) -> None:
    for q, bad in (("   ", "q"), ("x" * 65, "q")):
        with pytest.raises(Invalid) as refused:
            await find_account(store, q)
        assert refused.value.field == bad


async def test_the_card_gathers_services_coupons_and_latest_contents(
    store: SQLiteStore, account: Account, other_account: Account, policy: ReviewPolicy
) -> None:
    await update_profile(store, account.id, keywords=["新品"], now=NOW)
    await post(store, account, policy, 1, [link("pages/a"), link("pages/b", sku="1")])
    second = await post(store, account, policy, 2, [link("pages/b", sku="1"), link("pages/c")])
    newest = [
        await post(store, account, policy, 3, [link("pages/d"), link("pages/e")]),
        await post(store, account, policy, 4),
        await post(store, account, policy, 5),
    ]
    await post(store, account, policy, 6, [link("pages/draft")], publish_it=False)
    await post(store, other_account, policy, 7, [link("pages/other")])
    gone = await make_coupon(store, account, stock=1)
    await claim(store, gone.id, fan_id="fan_1", now=NOW)  # out of stock
    expired = await make_coupon(store, account, ends=NOW + timedelta(minutes=1))
    later = await make_coupon(store, account, starts=NOW + timedelta(days=1))
    valid = [await make_coupon(store, account) for _ in range(4)]
    await make_coupon(store, other_account)

    at = NOW + timedelta(minutes=2)
    box = await search_box(store, "新品", now=at)
    assert box is not None and box.account.id == account.id
    # Newest first, each service once, at most four.
    pages = [(s.link.page, s.link.query) for s in box.services]
    assert pages == [
        ("pages/d", {}),
        ("pages/e", {}),
        ("pages/b", {"sku": "1"}),
        ("pages/c", {}),
    ]
    assert len(box.services) == MAX_SERVICES
    # Each remembers where it came from (the newer content), for its click link.
    assert (box.services[2].content_id, box.services[2].index) == (second.id, 0)
    assert [c.id for c in box.contents] == [c.id for c in reversed(newest)][:MAX_CONTENTS]
    # Only coupons a fan could claim now: started, not expired, stock left; newest first.
    assert [c.id for c in box.coupons] == [c.id for c in reversed(valid)][:3]
    assert {gone.id, expired.id, later.id}.isdisjoint(c.id for c in box.coupons)
    assert box.live_room_id is None
    assert await search_box(store, "没有", now=at) is None


async def test_a_full_width_name_is_found_half_width(
    store: SQLiteStore,
) -> None:
    made = await create_account(store, name="Ｔｅａ Ｂａｒ", handle="tea-bar", now=NOW)
    found = await find_account(store, "tea bar")
    assert found is not None and found.id == made.id
