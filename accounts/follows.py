"""Follows: the fan → account edge, counted on the account, listed newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.accounts import ACCOUNTS, get_account
from accounts.errors import NotFound
from accounts.fans import fans_by_id
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

FOLLOWS = "follows"
INDEXES = [
    Index(FOLLOWS, ("account_id", "fan_id"), unique=True),
    Index(FOLLOWS, ("account_id", "at")),
    Index(FOLLOWS, ("fan_id", "at")),
]


@dataclass(frozen=True)
class FollowState:
    following: bool
    follower_count: int


@dataclass(frozen=True)
class Follower:
    fan_id: str
    name: str
    followed_at: str


@dataclass(frozen=True)
class FollowerPage:
    items: list[Follower]
    next_cursor: str | None


async def follow(
    store: DocumentStore, account_id: str, fan_id: str, *, now: datetime
) -> FollowState:
    """Follow; following again changes nothing. The edge and the count move together."""
    async with store.transaction():
        account = await get_account(store, account_id)
        edges = store.collection(FOLLOWS)
        if await edges.find_one({"account_id": account_id, "fan_id": fan_id}) is not None:
            return FollowState(True, account.follower_count)
        await edges.insert(
            {"id": new_id("fol"), "account_id": account_id, "fan_id": fan_id, "at": rfc3339(now)}
        )
        doc = await store.collection(ACCOUNTS).update_one(
            {"id": account_id}, {"$inc": {"follower_count": 1}}
        )
    assert doc is not None
    return FollowState(True, doc["follower_count"])


async def unfollow(store: DocumentStore, account_id: str, fan_id: str) -> FollowState:
    """Unfollow; unfollowing again changes nothing."""
    async with store.transaction():
        account = await get_account(store, account_id)
        gone = await store.collection(FOLLOWS).delete_one(
            {"account_id": account_id, "fan_id": fan_id}
        )
        if gone is None:
            return FollowState(False, account.follower_count)
        doc = await store.collection(ACCOUNTS).update_one(
            {"id": account_id}, {"$inc": {"follower_count": -1}}
        )
    assert doc is not None
    return FollowState(False, doc["follower_count"])


async def is_following(store: DocumentStore, account_id: str, fan_id: str) -> bool:
    edge = await store.collection(FOLLOWS).find_one({"account_id": account_id, "fan_id": fan_id})
    return edge is not None


async def followers(
    store: DocumentStore, account_id: str, *, limit: int, cursor: str | None
) -> FollowerPage:
    if await store.collection(ACCOUNTS).get(account_id) is None:
        raise NotFound("account", account_id)
    page = await store.collection(FOLLOWS).page(
        {"account_id": account_id}, sort=[("at", -1)], limit=limit, cursor=cursor
    )
    names = await fans_by_id(store, [e["fan_id"] for e in page.items])
    items = [
        Follower(e["fan_id"], names[e["fan_id"]].name if e["fan_id"] in names else "", e["at"])
        for e in page.items
    ]
    return FollowerPage(items, page.next_cursor)


async def following(
    store: DocumentStore, fan_id: str, *, limit: int, cursor: str | None
) -> tuple[list[tuple[str, str]], str | None]:
    """The accounts a fan follows, newest first, as ``(account_id, followed_at)``."""
    page = await store.collection(FOLLOWS).page(
        {"fan_id": fan_id}, sort=[("at", -1)], limit=limit, cursor=cursor
    )
    return [(e["account_id"], e["at"]) for e in page.items], page.next_cursor
