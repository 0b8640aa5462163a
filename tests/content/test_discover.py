from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from accounts.accounts import Account
from content import likes
from content.comments import add_comment
from content.contents import CONTENTS, Content, Counters, archive_content, create_content
from content.discover import (
    SNAPSHOT_EVERY,
    SNAPSHOT_TTL,
    discover_feed,
    hot_score,
    refresh_scores,
)
from content.engagement import record_view
from content.publishing import publish
from content.sensitive import ReviewPolicy
from store.port import InvalidCursorError
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW


async def published(
    store: SQLiteStore, account: Account, policy: ReviewPolicy, at: datetime, title: str = "t"
) -> Content:
    body = {"kind": "article", "title": title, "blocks": [{"type": "paragraph", "text": "好茶"}]}
    made = await create_content(store, account.id, body, now=at)
    return await publish(store, made.id, policy=policy, now=at)


async def like(store: SQLiteStore, content: Content, times: int) -> None:
    for i in range(times):
        await likes.like(store, content.id, f"fan_{i}", now=NOW)


async def listing(store: SQLiteStore, now: datetime, limit: int = 100) -> list[str]:
    page = await discover_feed(store, limit=limit, cursor=None, now=now)
    return [c.id for c in page.items]


def test_the_hot_score_is_reddits() -> None:
    at = "2025-01-01T12:30:00.000Z"  # 45000 s after the epoch
    assert hot_score(Counters(), at) == pytest.approx(1.0)
    assert hot_score(Counters(likes=3), at) == pytest.approx(1.0 + 1.0)  # log10(1 + 9)
    weighted = Counters(likes=1, comments=1, play_completions=1, plays=1, views=5)
    assert hot_score(weighted, at) == pytest.approx(1.0 + math.log10(1 + 3 + 4 + 2 + 1 + 1))
    # Twelve and a half hours of freshness are worth ten times the engagement.
    later = "2025-01-02T01:00:00.000Z"
    assert hot_score(Counters(likes=3), at) == pytest.approx(hot_score(Counters(), later))


async def test_a_fresh_content_outranks_an_older_one_with_the_same_likes(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    old = await published(store, account, policy, NOW - timedelta(days=2))
    fresh = await published(store, account, policy, NOW)
    await like(store, old, 3)
    await like(store, fresh, 3)
    assert await listing(store, NOW) == [fresh.id, old.id]


async def test_a_much_more_engaged_older_content_outranks_a_fresh_empty_one(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    old = await published(store, account, policy, NOW - timedelta(hours=6))
    fresh = await published(store, account, policy, NOW)
    assert await listing(store, NOW) == [fresh.id, old.id]
    await like(store, old, 50)  # log10(151) ≈ 2.18 against 6 h ≈ 0.48
    assert await listing(store, NOW + SNAPSHOT_EVERY) == [old.id, fresh.id]


async def test_views_move_the_stored_score_at_once(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, NOW)
    await refresh_scores(store, now=NOW)
    before = (await store.collection(CONTENTS).get(content.id) or {})["score"]
    await record_view(store, content.id, viewer="v", source="s", now=NOW)
    after = (await store.collection(CONTENTS).get(content.id) or {})["score"]
    assert after == hot_score(Counters(views=1), content.published_at) > before


async def test_likes_and_comments_move_the_stored_score_at_once(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, NOW)
    await refresh_scores(store, now=NOW)

    async def score() -> float:
        return float((await store.collection(CONTENTS).get(content.id) or {})["score"])

    await likes.like(store, content.id, "fan_a", now=NOW)
    assert await score() == hot_score(Counters(likes=1), content.published_at)
    await add_comment(
        store,
        policy,
        content.id,
        author_kind="fan",
        author_id="fan_a",
        author_name="A",
        text="好喝",
        parent_id=None,
        now=NOW,
    )
    assert await score() == hot_score(Counters(likes=1, comments=1), content.published_at)
    await likes.unlike(store, content.id, "fan_a")
    assert await score() == hot_score(Counters(comments=1), content.published_at)


async def test_a_listing_shows_each_content_once_while_counters_move(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = [
        await published(store, account, policy, NOW - timedelta(hours=i), f"t{i}")
        for i in range(12)
    ]
    first = await discover_feed(store, limit=5, cursor=None, now=NOW)
    seen = [c.id for c in first.items]
    assert seen == [c.id for c in made[:5]]  # the newest first while nothing is engaged
    # Between pages the last ones become the hottest and one is published: a keyset over the
    # live score would now skip them; the listing keeps the order it began with.
    for content in made[-4:]:
        await like(store, content, 40)
        await record_view(store, content.id, viewer="v", source="s", now=NOW)
    late = await published(store, account, policy, NOW + timedelta(seconds=5), "late")
    await archive_content(store, made[6].id, now=NOW)  # gone from the feed: left out
    cursor = first.next_cursor
    while cursor is not None:
        page = await discover_feed(store, limit=5, cursor=cursor, now=NOW + timedelta(seconds=30))
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
    expected = [c.id for c in made if c.id != made[6].id]
    assert seen == expected and len(set(seen)) == len(seen)
    # A listing that starts later shows the new order and what was published meanwhile.
    fresh = await listing(store, NOW + SNAPSHOT_EVERY)
    assert fresh[:4] == [c.id for c in made[-4:]] and late.id in fresh
    assert made[6].id not in fresh


async def test_cursors_are_checked_and_expire(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    for i in range(3):
        await published(store, account, policy, NOW - timedelta(hours=i))
    page = await discover_feed(store, limit=1, cursor=None, now=NOW)
    assert page.next_cursor is not None
    for forged in ("x", "W10", "WyJkc2NfMSIsLTFd", page.next_cursor + "x"):
        with pytest.raises(InvalidCursorError):
            await discover_feed(store, limit=1, cursor=forged, now=NOW)
    # A new snapshot much later clears the old ones away, and their cursors with them.
    await listing(store, NOW + SNAPSHOT_TTL + SNAPSHOT_EVERY)
    with pytest.raises(InvalidCursorError):
        await discover_feed(store, limit=1, cursor=page.next_cursor, now=NOW)


async def test_an_empty_feed(store: SQLiteStore) -> None:
    page = await discover_feed(store, limit=20, cursor=None, now=NOW)
    assert page.items == [] and page.next_cursor is None
