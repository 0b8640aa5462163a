"""Likes: a fan likes a published content once; liking again or unliking twice changes
nothing. The edge and the content's ``likes`` counter move together in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import NotFound
from content.contents import CONTENTS, Status, load
from content.discover import store_score
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

LIKES = "likes"
INDEXES = [
    Index(LIKES, ("content_id", "fan_id"), unique=True),
    Index(LIKES, ("fan_id", "at")),
]


@dataclass(frozen=True)
class LikeState:
    liked: bool
    likes: int


async def _published(store: DocumentStore, content_id: str) -> dict[str, Any]:
    doc = await load(store, content_id)
    if doc["status"] != Status.PUBLISHED:
        raise NotFound("content", content_id, field="content_id")
    return doc


async def like(store: DocumentStore, content_id: str, fan_id: str, *, now: datetime) -> LikeState:
    async with store.transaction():
        doc = await _published(store, content_id)
        edges = store.collection(LIKES)
        if await edges.find_one({"content_id": content_id, "fan_id": fan_id}) is not None:
            return LikeState(True, int(doc.get("likes", 0)))
        await edges.insert(
            {"id": new_id("lik"), "content_id": content_id, "fan_id": fan_id, "at": rfc3339(now)}
        )
        after = await store.collection(CONTENTS).update_one(
            {"id": content_id}, {"$inc": {"likes": 1}}
        )
        if after is not None:
            after = await store_score(store, after)  # the discover feed moves at once
    assert after is not None
    return LikeState(True, int(after["likes"]))


async def unlike(store: DocumentStore, content_id: str, fan_id: str) -> LikeState:
    async with store.transaction():
        doc = await _published(store, content_id)
        gone = await store.collection(LIKES).delete_one(
            {"content_id": content_id, "fan_id": fan_id}
        )
        if gone is None:
            return LikeState(False, int(doc.get("likes", 0)))
        after = await store.collection(CONTENTS).update_one(
            {"id": content_id}, {"$inc": {"likes": -1}}
        )
        if after is not None:
            after = await store_score(store, after)
    assert after is not None
    return LikeState(False, int(after["likes"]))


async def has_liked(store: DocumentStore, content_id: str, fan_id: str) -> bool:
    found = await store.collection(LIKES).find_one({"content_id": content_id, "fan_id": fan_id})
    return found is not None
