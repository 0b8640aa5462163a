from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accounts.accounts import Account
from accounts.errors import Conflict, Invalid, NotFound
from content.blocks import CouponCard, Heading, Image, Kind, Paragraph, ServiceCard, Video
from content.contents import (
    Counters,
    MediaState,
    Status,
    account_contents,
    account_feed,
    contents_for_upload,
    create_content,
    delete_content,
    edit_content,
    get_content,
    get_public_content,
    load,
    save,
)
from content.publishing import publish
from content.sensitive import ReviewPolicy
from media.blobs import BlobStore
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW, make_coupon, make_upload

UPLOAD = "upl_01jabcdefghjkmnpqrstvwxyz0"
LINK = {"app_id": "wx_shop", "page": "pages/index", "title": "进店"}


def article(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "article",
        "title": "秋季新品",
        "blocks": [{"type": "paragraph", "text": "今年的新茶到了。"}],
    }
    return {**body, **changes}


async def test_an_article_is_created_as_a_draft_with_every_block(
    store: SQLiteStore, account: Account, tmp_path: Path
) -> None:
    coupon = await make_coupon(store, account)
    image = await make_upload(store, BlobStore(tmp_path / "media", "/media"), account)
    body = article(
        blocks=[
            {"type": "heading", "text": "新品", "level": 2},
            {"type": "paragraph", "text": "第一段\n第二行"},
            {"type": "image", "upload_id": image, "caption": "茶园"},
            {"type": "video", "upload_id": UPLOAD},
            {"type": "service_card", "service_link": LINK},
            {"type": "coupon_card", "coupon_id": coupon.id},
        ],
        service_links=[LINK],
        coupon_ids=[coupon.id],
    )
    content = await create_content(store, account.id, body, now=NOW)
    assert content.id.startswith("cnt_") and content.kind == Kind.ARTICLE
    assert content.status == Status.DRAFT and content.media is None
    assert [type(b) for b in content.blocks] == [
        Heading,
        Paragraph,
        Image,
        Video,
        ServiceCard,
        CouponCard,
    ]
    assert content.blocks[1] == Paragraph("第一段\n第二行")
    assert content.service_links[0].page == "pages/index"
    assert content.coupon_ids == (coupon.id,)
    assert content.counters == Counters(0, 0, 0, 0, 0)
    assert await get_content(store, content.id) == content


async def test_a_video_starts_processing(store: SQLiteStore, account: Account) -> None:
    body = {"kind": "video", "title": "开箱", "caption": "看看", "upload_id": UPLOAD}
    video = await create_content(store, account.id, body, now=NOW)
    assert video.media is not None
    assert (video.media.state, video.media.progress) == (MediaState.PROCESSING, 0.0)
    assert video.upload_id == UPLOAD and video.poster is None
    assert [c.id for c in await contents_for_upload(store, UPLOAD)] == [video.id]


async def test_a_post_holds_text_and_up_to_nine_images(
    store: SQLiteStore, account: Account, tmp_path: Path
) -> None:
    image = await make_upload(store, BlobStore(tmp_path / "media", "/media"), account)
    body = {"kind": "post", "text": "今日上新", "image_upload_ids": [image] * 9}
    post = await create_content(store, account.id, body, now=NOW)
    assert post.title == "" and post.text == "今日上新" and len(post.image_upload_ids) == 9
    images_only = {"kind": "post", "image_upload_ids": [image]}
    assert (await create_content(store, account.id, images_only, now=NOW)).text == ""


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"kind": "poem"}, "kind", "unknown_kind"),
        ({}, "kind", "unknown_kind"),
        (article(title=""), "title", "invalid_field"),
        (article(title="t" * 61), "title", "invalid_field"),
        (article(blocks=[]), "blocks", "invalid_field"),
        (article(blocks=None), "blocks", "invalid_field"),
        (article(blocks=[{"type": "table"}]), "blocks.0.type", "unknown_block_type"),
        (article(blocks=[{"text": "x"}]), "blocks.0.type", "unknown_block_type"),
        (article(blocks=["x"]), "blocks.0", "invalid_field"),
        (article(blocks=[{"type": "paragraph", "text": " "}]), "blocks.0.text", "invalid_field"),
        (
            article(
                blocks=[
                    {"type": "paragraph", "text": "a"},
                    {"type": "heading", "text": "h", "level": 1},
                ]
            ),
            "blocks.1.level",
            "invalid_field",
        ),
        (
            article(blocks=[{"type": "heading", "text": "h", "level": 4}]),
            "blocks.0.level",
            "invalid_field",
        ),
        (
            article(blocks=[{"type": "image", "upload_id": "../etc"}]),
            "blocks.0.upload_id",
            "invalid_field",
        ),
        (
            article(blocks=[{"type": "image", "upload_id": UPLOAD, "alt": "x"}]),
            "blocks.0.alt",
            "unknown_field",
        ),
        (article(blocks=[{"type": "video"}]), "blocks.0.upload_id", "invalid_field"),
        (
            article(blocks=[{"type": "service_card", "service_link": {**LINK, "page": "../x"}}]),
            "blocks.0.service_link.page",
            "invalid_field",
        ),
        (
            article(blocks=[{"type": "coupon_card", "coupon_id": "cpn_x"}]),
            "blocks.0.coupon_id",
            "unknown_coupon",
        ),
        (
            article(blocks=[{"type": "paragraph", "text": "x" * 5001}]),
            "blocks.0.text",
            "invalid_field",
        ),
        (article(service_links=[LINK] * 6), "service_links", "invalid_field"),
        (
            article(service_links=[{**LINK, "app_id": "a-b"}]),
            "service_links.0.app_id",
            "invalid_field",
        ),
        (article(coupon_ids=["cpn_missing"]), "coupon_ids.0", "unknown_coupon"),
        (article(text="posts only"), "text", "unknown_field"),
        ({"kind": "post", "text": "x" * 1001}, "text", "invalid_field"),
        ({"kind": "post", "text": " "}, "text", "invalid_field"),
        (
            {"kind": "post", "text": "a", "image_upload_ids": [UPLOAD] * 10},
            "image_upload_ids",
            "invalid_field",
        ),
        (
            {"kind": "post", "text": "a", "image_upload_ids": [UPLOAD, 3]},
            "image_upload_ids.1",
            "invalid_field",
        ),
        ({"kind": "video", "title": "v"}, "upload_id", "invalid_field"),
        ({"kind": "video", "upload_id": UPLOAD}, "title", "invalid_field"),
        (
            {"kind": "video", "title": "v", "upload_id": UPLOAD, "caption": "c" * 1001},
            "caption",
            "invalid_field",
        ),
        (
            {"kind": "video", "title": "v", "upload_id": UPLOAD, "poster": "http://x"},
            "poster",
            "invalid_field",
        ),
    ],
)
async def test_bad_bodies_name_the_field_and_write_nothing(
    store: SQLiteStore, account: Account, body: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(Invalid) as err:
        await create_content(store, account.id, body, now=NOW)
    assert (err.value.field, err.value.code) == (field, code)
    assert (await account_contents(store, account.id, limit=10, cursor=None)).items == []


async def test_another_accounts_coupon_cannot_be_attached(
    store: SQLiteStore, account: Account, other_account: Account
) -> None:
    theirs = await make_coupon(store, other_account)
    with pytest.raises(Invalid) as err:
        await create_content(store, account.id, article(coupon_ids=[theirs.id]), now=NOW)
    assert (err.value.field, err.value.code) == ("coupon_ids.0", "unknown_coupon")


async def test_an_unknown_account_has_no_content(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        await create_content(store, "acc_missing", article(), now=NOW)


async def test_an_edit_changes_only_what_it_names(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    draft = await create_content(store, account.id, article(), now=NOW)
    later = NOW + timedelta(minutes=5)
    edited = await edit_content(store, draft.id, {"title": "冬季新品"}, policy=policy, now=later)
    assert edited.title == "冬季新品" and edited.blocks == draft.blocks
    assert edited.version == draft.version + 1 and edited.updated_at > draft.updated_at
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"kind": "post"}, "kind"),
        ({"text": "x"}, "text"),
        ({"blocks": []}, "blocks"),
        ({"title": None}, "title"),
    ]
    for body, field in refusals:
        with pytest.raises(Invalid) as err:
            await edit_content(store, draft.id, body, policy=policy, now=later)
        assert err.value.field == field
    assert (await get_content(store, draft.id)).title == "冬季新品"


async def test_a_post_cannot_be_edited_empty(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    post = await create_content(store, account.id, {"kind": "post", "text": "hi"}, now=NOW)
    with pytest.raises(Invalid) as err:
        await edit_content(store, post.id, {"text": ""}, policy=policy, now=NOW)
    assert err.value.field == "text"


async def test_a_new_upload_restarts_processing(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    body = {"kind": "video", "title": "开箱", "upload_id": UPLOAD}
    video = await create_content(store, account.id, body, now=NOW)
    other = "upl_01jabcdefghjkmnpqrstvwxyz1"
    edited = await edit_content(store, video.id, {"upload_id": other}, policy=policy, now=NOW)
    assert edited.upload_id == other and edited.media is not None
    assert edited.media.state == MediaState.PROCESSING


async def test_feeds_show_published_contents_newest_first_and_hide_deleted(
    store: SQLiteStore, account: Account, other_account: Account, policy: ReviewPolicy
) -> None:
    ids = []
    for minutes in range(4):
        at = NOW + timedelta(minutes=minutes)
        made = await create_content(store, account.id, article(title=f"第{minutes}篇"), now=at)
        await publish(store, made.id, policy=policy, now=at)
        ids.append(made.id)
    draft = await create_content(store, account.id, article(), now=NOW)
    await create_content(store, other_account.id, article(), now=NOW)
    await delete_content(store, ids[1], now=NOW)

    seen: list[str] = []
    cursor = None
    while True:
        page = await account_feed(store, account.id, limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [ids[3], ids[2], ids[0]]

    console = await account_contents(store, account.id, limit=10, cursor=None)
    assert {c.id for c in console.items} == {draft.id, ids[0], ids[2], ids[3]}
    drafts = await account_contents(store, account.id, status=Status.DRAFT, limit=10, cursor=None)
    assert [c.id for c in drafts.items] == [draft.id]
    with pytest.raises(Invalid):
        await account_contents(store, account.id, status=Status.DELETED, limit=10, cursor=None)

    with pytest.raises(NotFound):
        await get_content(store, ids[1])
    with pytest.raises(NotFound):
        await get_public_content(store, draft.id)
    assert (await get_public_content(store, ids[0])).status == Status.PUBLISHED


async def test_a_stale_version_cannot_overwrite(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    draft = await create_content(store, account.id, article(), now=NOW)
    seen = await load(store, draft.id)
    await edit_content(store, draft.id, {"title": "新"}, policy=policy, now=NOW)
    with pytest.raises(Conflict) as err:
        await save(store, seen, {"title": "旧"}, now=NOW)
    assert err.value.code == "content_changed"
    assert (await get_content(store, draft.id)).title == "新"
