from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from accounts.accounts import Account, create_account
from accounts.errors import Conflict, Invalid, NotFound
from content import engagement
from content.contents import Content, Counters, create_content, get_content
from content.engagement import (
    MARKS,
    PER_SOURCE,
    PLAYS,
    PLAYS_PER_VIEWER,
    WINDOW,
    completion_rate,
    counters_doc,
    record_view,
    report_play,
    start_play,
)
from content.publishing import media_ready, publish
from content.sensitive import ReviewPolicy
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW

UPLOAD = "upl_01jabcdefghjkmnpqrstvwxyz0"
FILES = {
    "hls_url": "videos/v1/index.m3u8",
    "mp4_url": "videos/v1/fallback.mp4",
    "poster_url": "videos/v1/poster.jpg",
    "duration_s": 20.0,
    "renditions": [{"height": 720, "bitrate": 2_500_000}],
}


async def published_video(store: SQLiteStore, account: Account, policy: ReviewPolicy) -> Content:
    made = await create_content(
        store, account.id, {"kind": "video", "title": "开箱", "upload_id": UPLOAD}, now=NOW
    )
    await publish(store, made.id, policy=policy, now=NOW)
    return await media_ready(store, made.id, FILES, policy=policy, now=NOW)


async def published_article(
    store: SQLiteStore, account: Account, policy: ReviewPolicy, title: str = "新品"
) -> Content:
    body: dict[str, Any] = {
        "kind": "article",
        "title": title,
        "blocks": [{"type": "paragraph", "text": "好茶"}],
    }
    made = await create_content(store, account.id, body, now=NOW)
    return await publish(store, made.id, policy=policy, now=NOW)


async def test_a_viewer_counts_once_per_window(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published_article(store, account, policy)
    first = await record_view(store, content.id, viewer="fan:1", source="a", now=NOW)
    assert first.counted and first.counters.views == 1
    again = await record_view(
        store, content.id, viewer="fan:1", source="a", now=NOW + timedelta(minutes=5)
    )
    assert not again.counted and again.counters.views == 1
    other = await record_view(store, content.id, viewer="fan:2", source="a", now=NOW)
    assert other.counted and other.counters.views == 2
    later = await record_view(store, content.id, viewer="fan:1", source="a", now=NOW + WINDOW)
    assert later.counted and later.counters.views == 3
    assert (await get_content(store, content.id)).counters.views == 3


async def test_one_address_cannot_inflate_views_with_made_up_viewers(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published_article(store, account, policy)
    counted = 0
    for i in range(PER_SOURCE + 20):
        result = await record_view(store, content.id, viewer=f"anon:{i}", source="one", now=NOW)
        counted += result.counted
    assert counted == PER_SOURCE
    # Another address is not held back by the first one.
    assert (await record_view(store, content.id, viewer="x", source="two", now=NOW)).counted
    assert (await get_content(store, content.id)).counters.views == PER_SOURCE + 1


async def test_only_published_contents_are_viewed_and_only_videos_played(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    draft = await create_content(store, account.id, {"kind": "post", "text": "草稿"}, now=NOW)
    with pytest.raises(NotFound) as missing:
        await record_view(store, draft.id, viewer="v", source="s", now=NOW)
    assert missing.value.field == "content_id"
    article = await published_article(store, account, policy)
    with pytest.raises(Conflict) as refused:
        await start_play(store, article.id, viewer="v", source="s", now=NOW)
    assert (refused.value.code, refused.value.field) == ("not_a_video", "content_id")
    assert await store.collection(PLAYS).count({}) == 0


async def test_a_play_completes_once_at_ninety_percent(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    video = await published_video(store, account, policy)
    play = await start_play(store, video.id, viewer="fan:1", source="a", now=NOW)
    assert play.counted and play.counters.plays == 1 and play.counters.play_completions == 0
    at = NOW + timedelta(seconds=17)
    short = await report_play(store, video.id, play.play_id, watched_s=17.9, now=at)
    assert not short.completed and short.counters.play_completions == 0  # 89.5%
    done = await report_play(store, video.id, play.play_id, watched_s=18.0, now=at)
    assert done.completed and done.counted and done.counters.play_completions == 1
    # Reported again (timeupdate, then ended): still one completion for this play.
    again = await report_play(store, video.id, play.play_id, watched_s=20.0, completed=True, now=at)
    assert again.completed and not again.counted and again.counters.play_completions == 1
    second = await start_play(store, video.id, viewer="fan:1", source="a", now=at)
    assert second.counters.plays == 2
    assert completion_rate(second.counters) == 0.5
    assert counters_doc(second.counters)["completion_rate"] == 0.5


async def test_a_completion_cannot_come_sooner_than_the_video_could_play(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    video = await published_video(store, account, policy)
    play = await start_play(store, video.id, viewer="fan:1", source="a", now=NOW)
    # At once: at most 2 s (the slack) can have played, whatever the player claims.
    at_once = await report_play(
        store, video.id, play.play_id, watched_s=20.0, completed=True, now=NOW
    )
    assert not at_once.completed and at_once.watched_s == 2.0
    # A 20 s video played at twice the speed reaches 90% after 9 s (8 s with the slack).
    soon = NOW + timedelta(seconds=8)
    assert (await report_play(store, video.id, play.play_id, watched_s=18, now=soon)).completed


async def test_unknown_plays_and_bad_seconds_are_refused(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    video = await published_video(store, account, policy)
    other = await published_video(store, account, policy)
    play = await start_play(store, video.id, viewer="fan:1", source="a", now=NOW)
    with pytest.raises(NotFound) as unknown:
        await report_play(store, video.id, "ply_nope", watched_s=1, now=NOW)
    assert unknown.value.field == "play_id"
    with pytest.raises(NotFound):  # a play of another video
        await report_play(store, other.id, play.play_id, watched_s=1, now=NOW)
    for bad in (-1, float("nan"), float("inf"), 10**9, True, "5"):
        with pytest.raises(Invalid) as refused:
            await report_play(store, video.id, play.play_id, watched_s=bad, now=NOW)
        assert refused.value.field == "watched_s"


async def test_plays_beyond_the_limit_do_not_count_nor_complete(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    video = await published_video(store, account, policy)
    plays = [
        await start_play(store, video.id, viewer="fan:1", source="a", now=NOW)
        for _ in range(PLAYS_PER_VIEWER + 1)
    ]
    assert [p.counted for p in plays] == [True] * PLAYS_PER_VIEWER + [False]
    extra = plays[-1]
    done = await report_play(
        store, video.id, extra.play_id, watched_s=20, now=NOW + timedelta(minutes=1)
    )
    # It played to the end, but a play that did not count cannot count a completion:
    # completions never outnumber plays.
    assert done.completed and not done.counted
    assert done.counters == Counters(plays=PLAYS_PER_VIEWER)


async def test_racing_reports_count_one_completion(threaded_store: SQLiteStore) -> None:
    store = threaded_store
    owner = await create_account(store, name="Tea", handle="tea-race", now=NOW)
    video = await published_video(store, owner, ReviewPolicy(store))
    play = await start_play(store, video.id, viewer="fan:1", source="a", now=NOW)
    at = NOW + timedelta(seconds=30)
    results = await asyncio.gather(
        *(report_play(store, video.id, play.play_id, watched_s=20, now=at) for _ in range(8))
    )
    assert sum(r.counted for r in results) == 1
    assert (await get_content(store, video.id)).counters.play_completions == 1


async def test_old_records_are_purged(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    video = await published_video(store, account, policy)
    await record_view(store, video.id, viewer="v", source="s", now=NOW)
    await start_play(store, video.id, viewer="v", source="s", now=NOW)
    assert await store.collection(MARKS).count({}) == 4
    assert await engagement.purge(store, now=NOW) == 0
    later = NOW + timedelta(hours=7)
    assert await engagement.purge(store, now=later) == 5  # four window marks and the play
    # A view long after purges on its own (at most every ten minutes).
    await record_view(store, video.id, viewer="v", source="s", now=later)
    await record_view(store, video.id, viewer="w", source="s", now=later + timedelta(days=1))
    assert await store.collection(MARKS).count({}) == 2  # the newest window's only
