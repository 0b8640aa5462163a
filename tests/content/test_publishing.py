from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from accounts.accounts import Account, create_account
from accounts.errors import Conflict, DomainError, Invalid, NotFound
from content.contents import (
    Content,
    MediaState,
    Status,
    account_feed,
    archive_content,
    create_content,
    delete_content,
    edit_content,
    get_content,
)
from content.publishing import (
    approve,
    due_scheduled,
    media_failed,
    media_progress,
    media_ready,
    publish,
    reject,
)
from content.sensitive import ReviewPolicy, add_words
from store.clock import rfc3339
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW

UPLOAD = "upl_01jabcdefghjkmnpqrstvwxyz0"
LATER = NOW + timedelta(hours=2)
FILES = {
    "hls_url": "videos/v1/index.m3u8",
    "mp4_url": "videos/v1/fallback.mp4",
    "poster_url": "videos/v1/poster.jpg",
    "duration_s": 12.5,
    "renditions": [{"height": 720, "bitrate": 2_500_000}, {"height": 360, "bitrate": 800_000}],
}


def article(text: str = "今年的新茶到了。", title: str = "秋季新品") -> dict[str, Any]:
    return {"kind": "article", "title": title, "blocks": [{"type": "paragraph", "text": text}]}


def video(caption: str = "开箱") -> dict[str, Any]:
    return {"kind": "video", "title": "新品开箱", "caption": caption, "upload_id": UPLOAD}


async def in_state(
    store: SQLiteStore, account: Account, policy: ReviewPolicy, state: Status
) -> Content:
    """A content brought to ``state`` through the public moves only."""
    if state == Status.PENDING_MEDIA:
        made = await create_content(store, account.id, video(), now=NOW)
        return await publish(store, made.id, policy=policy, now=NOW)
    flagged = state in (Status.IN_REVIEW, Status.REJECTED)
    made = await create_content(
        store, account.id, article("网上赌博" if flagged else "好茶"), now=NOW
    )
    if state == Status.DRAFT:
        return made
    if state == Status.SCHEDULED:
        return await publish(store, made.id, policy=policy, publish_at=rfc3339(LATER), now=NOW)
    content = await publish(store, made.id, policy=policy, now=NOW)
    if state == Status.REJECTED:
        content = await reject(store, made.id, reason="含敏感词", now=NOW)
    if state == Status.ARCHIVED:
        content = await archive_content(store, made.id, now=NOW)
    if state == Status.DELETED:
        await delete_content(store, made.id, now=NOW)
        return content
    assert content.status == state
    return content


Action = Callable[[SQLiteStore, str, ReviewPolicy], Awaitable[Any]]
ACTIONS: dict[str, Action] = {
    "publish": lambda s, i, p: publish(s, i, policy=p, now=NOW),
    "approve": lambda s, i, p: approve(s, i, now=NOW),
    "reject": lambda s, i, p: reject(s, i, reason="no", now=NOW),
    "archive": lambda s, i, p: archive_content(s, i, now=NOW),
    "edit": lambda s, i, p: edit_content(s, i, {"title": "改"}, policy=p, now=NOW),
    "delete": lambda s, i, p: delete_content(s, i, now=NOW),
}
NP, NR, NPB, NE = (
    "content_not_publishable",
    "content_not_in_review",
    "content_not_published",
    "content_not_editable",
)
# state → the outcome of each action, in ACTIONS order: the status it lands in, or the code of
# its refusal.
TABLE: dict[Status, tuple[str, ...]] = {
    Status.DRAFT: ("published", NR, NR, NPB, "draft", "deleted"),
    Status.PENDING_MEDIA: (NP, NR, NR, NPB, NE, "deleted"),
    Status.IN_REVIEW: (NP, "published", "rejected", NPB, NE, "deleted"),
    Status.SCHEDULED: (NP, NR, NR, NPB, NE, "deleted"),
    Status.PUBLISHED: (NP, NR, NR, "archived", "published", "deleted"),
    Status.REJECTED: (NP, NR, NR, NPB, "draft", "deleted"),
    Status.ARCHIVED: (NP, NR, NR, NPB, NE, "deleted"),
    Status.DELETED: ("content_not_found",) * 6,
}
CASES = [
    (state, action, outcome)
    for state, outcomes in TABLE.items()
    for action, outcome in zip(ACTIONS, outcomes, strict=True)
]


@pytest.mark.parametrize(("state", "action", "outcome"), CASES)
async def test_the_state_machine(
    store: SQLiteStore,
    account: Account,
    policy: ReviewPolicy,
    state: Status,
    action: str,
    outcome: str,
) -> None:
    content = await in_state(store, account, policy, state)
    if outcome in {s.value for s in Status}:
        await ACTIONS[action](store, content.id, policy)
        if outcome == Status.DELETED:
            with pytest.raises(NotFound):
                await get_content(store, content.id)
        else:
            assert (await get_content(store, content.id)).status == outcome
        return
    with pytest.raises(DomainError) as err:
        await ACTIONS[action](store, content.id, policy)
    assert err.value.code == outcome
    if state != Status.DELETED:
        after = await get_content(store, content.id)
        assert (after.status, after.version) == (state, content.version)  # nothing moved


async def test_publish_lands_where_its_content_says(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    clean = await create_content(store, account.id, article(), now=NOW)
    done = await publish(store, clean.id, policy=policy, now=NOW)
    assert done.status == Status.PUBLISHED and done.published_at == rfc3339(NOW)
    assert done.review is not None and not done.review.flagged

    flagged = await create_content(store, account.id, article(title="Casino 之夜"), now=NOW)
    held = await publish(store, flagged.id, policy=policy, now=NOW)
    assert held.status == Status.IN_REVIEW and held.needs_approval
    assert held.review is not None
    assert [(m.field, m.word) for m in held.review.matches] == [("title", "casino")]

    later = await create_content(store, account.id, article(), now=NOW)
    waiting = await publish(store, later.id, policy=policy, publish_at=rfc3339(LATER), now=NOW)
    assert waiting.status == Status.SCHEDULED and waiting.publish_at == rfc3339(LATER)
    assert waiting.published_at is None

    past = await create_content(store, account.id, article(), now=NOW)
    at = rfc3339(NOW - timedelta(minutes=1))  # a time already past means now
    assert (await publish(store, past.id, policy=policy, publish_at=at, now=NOW)).status == (
        Status.PUBLISHED
    )


@pytest.mark.parametrize(
    "publish_at", ["tomorrow", "2026-11-27T08:00:00", rfc3339(NOW + timedelta(days=367)), 5]
)
async def test_a_bad_publish_time_is_refused(
    store: SQLiteStore, account: Account, policy: ReviewPolicy, publish_at: Any
) -> None:
    made = await create_content(store, account.id, article(), now=NOW)
    with pytest.raises(Invalid) as err:
        await publish(store, made.id, policy=policy, publish_at=publish_at, now=NOW)
    assert err.value.field == "publish_at"
    assert (await get_content(store, made.id)).status == Status.DRAFT


async def test_a_flagged_article_goes_out_only_through_approval(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, article("欢迎来赌博"), now=NOW)
    assert (await publish(store, made.id, policy=policy, now=NOW)).status == Status.IN_REVIEW
    assert (await account_feed(store, account.id, limit=10, cursor=None)).items == []
    rejected = await reject(store, made.id, reason="含敏感词：赌博", now=NOW)
    assert rejected.reject_reason == "含敏感词：赌博"

    # The edit removes the word, yet the content goes back through review, not out.
    fixed = await edit_content(
        store,
        made.id,
        {"blocks": [{"type": "paragraph", "text": "欢迎来品茶"}]},
        policy=policy,
        now=NOW,
    )
    assert fixed.status == Status.DRAFT
    again = await publish(store, made.id, policy=policy, now=NOW)
    assert again.status == Status.IN_REVIEW
    assert again.review is not None and not again.review.flagged
    out = await approve(store, made.id, now=NOW)
    assert out.status == Status.PUBLISHED and not out.needs_approval and out.reject_reason is None
    assert [c.id for c in (await account_feed(store, account.id, limit=10, cursor=None)).items] == [
        made.id
    ]


async def test_a_flagged_edit_takes_a_published_content_back_to_review(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, article(), now=NOW)
    first = await publish(store, made.id, policy=policy, now=NOW)
    clean = await edit_content(store, made.id, {"title": "好茶推荐"}, policy=policy, now=LATER)
    assert clean.status == Status.PUBLISHED

    bad = {"blocks": [{"type": "paragraph", "text": "限时 CASINO 优惠"}]}
    held = await edit_content(store, made.id, bad, policy=policy, now=LATER)
    assert held.status == Status.IN_REVIEW and held.review is not None
    assert [(m.field, m.start, m.end) for m in held.review.matches] == [("blocks.0.text", 3, 9)]
    assert (await account_feed(store, account.id, limit=10, cursor=None)).items == []
    with pytest.raises(Conflict) as err:  # no quiet fix while it waits for a moderator
        await edit_content(
            store, made.id, {"blocks": article()["blocks"]}, policy=policy, now=LATER
        )
    assert err.value.code == "content_not_editable"

    back = await approve(store, made.id, now=LATER + timedelta(hours=1))
    assert back.status == Status.PUBLISHED
    assert back.published_at == first.published_at  # its place in the feed is kept


async def test_an_account_list_flags_only_that_accounts_content(
    store: SQLiteStore, account: Account, other_account: Account, policy: ReviewPolicy
) -> None:
    await add_words(store, account_id=account.id, words=["竞品"], now=NOW)
    mine = await create_content(store, account.id, article("比竞品好"), now=NOW)
    theirs = await create_content(store, other_account.id, article("比竞品好"), now=NOW)
    assert (await publish(store, mine.id, policy=policy, now=NOW)).status == Status.IN_REVIEW
    assert (await publish(store, theirs.id, policy=policy, now=NOW)).status == Status.PUBLISHED


async def test_approval_of_a_scheduled_content_waits_for_its_time(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, article("赌博"), now=NOW)
    held = await publish(store, made.id, policy=policy, publish_at=rfc3339(LATER), now=NOW)
    assert held.status == Status.IN_REVIEW
    assert (await approve(store, made.id, now=NOW)).status == Status.SCHEDULED


async def test_scheduled_contents_are_published_exactly_once(
    threaded_store: SQLiteStore, policy: ReviewPolicy
) -> None:
    store = threaded_store
    account = await create_account(store, name="Tea House", handle="tea-house", now=NOW)
    ids = []
    for minutes in (10, 20):
        made = await create_content(store, account.id, article(), now=NOW)
        at = rfc3339(NOW + timedelta(minutes=minutes))
        await publish(store, made.id, policy=policy, publish_at=at, now=NOW)
        ids.append(made.id)

    assert await due_scheduled(store, now=NOW + timedelta(minutes=9)) == []
    # Several workers at once, after both times have come: each content moves once in all.
    runs = await asyncio.gather(
        *(due_scheduled(store, now=NOW + timedelta(minutes=30)) for _ in range(5))
    )
    moved = [c for run in runs for c in run]
    assert sorted(c.id for c in moved) == sorted(ids)
    assert await due_scheduled(store, now=NOW + timedelta(hours=5)) == []
    for content_id, minutes in zip(ids, (10, 20), strict=True):
        content = await get_content(store, content_id)
        assert content.status == Status.PUBLISHED
        assert content.published_at == rfc3339(NOW + timedelta(minutes=minutes))
    feed = await account_feed(store, account.id, limit=10, cursor=None)
    assert [c.id for c in feed.items] == [ids[1], ids[0]]


async def test_a_video_waits_for_its_media_then_goes_out(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, video(), now=NOW)
    waiting = await publish(store, made.id, policy=policy, now=NOW)
    assert waiting.status == Status.PENDING_MEDIA and waiting.published_at is None

    await media_progress(store, made.id, 0.5)
    await media_progress(store, made.id, 0.25)  # a late, older report never moves it back
    progress = (await get_content(store, made.id)).media
    assert progress is not None and progress.progress == 0.5

    done = await media_ready(store, made.id, FILES, policy=policy, now=LATER)
    assert done.status == Status.PUBLISHED and done.published_at == rfc3339(LATER)
    assert done.media is not None and done.media.state == MediaState.READY
    assert done.media.progress == 1.0 and done.media.hls_url == FILES["hls_url"]
    assert [(r.height, r.bitrate) for r in done.media.renditions] == [
        (720, 2_500_000),
        (360, 800_000),
    ]
    # Reported twice (a retried job): the files are refreshed, the content does not move again.
    again = await media_ready(store, made.id, FILES, policy=policy, now=LATER)
    assert again.status == Status.PUBLISHED and again.published_at == done.published_at
    with pytest.raises(Conflict) as err:
        other = "upl_01jabcdefghjkmnpqrstvwxyz1"
        await edit_content(store, made.id, {"upload_id": other}, policy=policy, now=LATER)
    assert (err.value.code, err.value.field) == ("content_not_editable", "upload_id")


@pytest.mark.parametrize(
    ("caption", "publish_at", "status"),
    [
        ("开箱", None, Status.PUBLISHED),
        ("开箱 赌博", None, Status.IN_REVIEW),
        ("开箱", rfc3339(LATER + timedelta(hours=1)), Status.SCHEDULED),
        ("开箱", rfc3339(NOW + timedelta(hours=1)), Status.PUBLISHED),  # its time passed meanwhile
    ],
)
async def test_media_ready_moves_a_waiting_video_onward(
    store: SQLiteStore,
    account: Account,
    policy: ReviewPolicy,
    caption: str,
    publish_at: str | None,
    status: Status,
) -> None:
    made = await create_content(store, account.id, video(caption), now=NOW)
    await publish(store, made.id, policy=policy, publish_at=publish_at, now=NOW)
    assert (await media_ready(store, made.id, FILES, policy=policy, now=LATER)).status == status


async def test_media_ready_on_a_draft_keeps_it_a_draft(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, video(), now=NOW)
    ready = await media_ready(store, made.id, FILES, policy=policy, now=NOW)
    assert ready.status == Status.DRAFT
    assert (await publish(store, made.id, policy=policy, now=NOW)).status == Status.PUBLISHED


async def test_a_failed_video_goes_back_to_draft_until_a_new_upload(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, video(), now=NOW)
    await publish(store, made.id, policy=policy, now=NOW)
    failed = await media_failed(store, made.id, error="moov atom not found", now=NOW)
    assert failed.status == Status.DRAFT and failed.media is not None
    assert (failed.media.state, failed.media.error) == (MediaState.FAILED, "moov atom not found")
    with pytest.raises(Conflict) as err:
        await publish(store, made.id, policy=policy, now=NOW)
    assert err.value.code == "media_failed"

    other = "upl_01jabcdefghjkmnpqrstvwxyz1"
    await edit_content(store, made.id, {"upload_id": other}, policy=policy, now=NOW)
    assert (await publish(store, made.id, policy=policy, now=NOW)).status == Status.PENDING_MEDIA
    # A late result for the replaced upload does not land on the new one.
    stale = await media_ready(store, made.id, FILES, policy=policy, upload_id=UPLOAD, now=NOW)
    assert stale.status == Status.PENDING_MEDIA
    fresh = await media_ready(store, made.id, FILES, policy=policy, upload_id=other, now=NOW)
    assert fresh.status == Status.PUBLISHED


@pytest.mark.parametrize(
    ("media", "field"),
    [
        ("ready", "media"),
        ({**FILES, "hls_url": 3}, "media.hls_url"),
        ({**FILES, "duration_s": -1}, "media.duration_s"),
        ({**FILES, "duration_s": True}, "media.duration_s"),
        ({**FILES, "renditions": [{"height": 0, "bitrate": 1}]}, "media.renditions.0.height"),
        ({**FILES, "renditions": [{"height": 720}]}, "media.renditions.0.bitrate"),
    ],
)
async def test_bad_media_results_are_refused(
    store: SQLiteStore, account: Account, policy: ReviewPolicy, media: Any, field: str
) -> None:
    made = await create_content(store, account.id, video(), now=NOW)
    await publish(store, made.id, policy=policy, now=NOW)
    with pytest.raises(Invalid) as err:
        await media_ready(store, made.id, media, policy=policy, now=NOW)
    assert err.value.field == field
    assert (await get_content(store, made.id)).status == Status.PENDING_MEDIA


async def test_only_a_video_has_media(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    made = await create_content(store, account.id, article(), now=NOW)
    with pytest.raises(Invalid):
        await media_ready(store, made.id, FILES, policy=policy, now=NOW)


async def test_a_rejection_needs_a_reason(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    held = await in_state(store, account, policy, Status.IN_REVIEW)
    with pytest.raises(Invalid) as err:
        await reject(store, held.id, reason="  ", now=NOW)
    assert err.value.field == "reason"
    assert (await get_content(store, held.id)).status == Status.IN_REVIEW
