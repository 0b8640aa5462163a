"""Content: an account's articles, posts and videos, their editing and their listing.

A content moves through these states (``content.publishing`` holds the moves that publish)::

    draft ──publish──▶ pending_media ──media ready──▶ in_review | scheduled | published
      │                     └──media failed──▶ draft
      ├───publish──▶ in_review ──approve──▶ scheduled | published
      │                  └──reject──▶ rejected ──edit──▶ draft
      ├───publish──▶ scheduled ──its time comes──▶ published
      └───publish──▶ published ──archive──▶ archived
    any state ──delete──▶ deleted (soft: hidden everywhere, kept for audit)

Edits are allowed in draft, rejected and published. An edit of a published content's text
re-runs the review: a flagged edit takes it back to in_review, out of every feed. Once a
content has been flagged or rejected it needs a moderator's approval to go out again, even
after an edit removed the words: the edit cannot clear the flag by itself.

Each move is a guarded update (the filter names the state and version it was decided on), so
two racing moves cannot both apply on any engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from accounts.accounts import get_account
from accounts.errors import Conflict, Invalid, NotFound
from content.blocks import (
    Block,
    Kind,
    block_from_doc,
    check_post_has_body,
    parse_fields,
    parse_kind,
    reviewed_texts,
)
from content.blocks import Image as ImageBlock
from content.images import check_image_uploads, image_refs, link_images
from content.links import ServiceLink
from content.sensitive import Review, ReviewPolicy
from store.clock import rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index

CONTENTS = "contents"
INDEXES = [
    Index(CONTENTS, ("account_id", "status", "published_at")),  # the account's public feed
    Index(CONTENTS, ("account_id", "status", "created_at")),  # the console's list by state
    Index(CONTENTS, ("account_id", "created_at")),
    Index(CONTENTS, ("status", "publish_at")),  # the scheduler
    Index(CONTENTS, ("status", "published_at")),  # discovery
    Index(CONTENTS, ("upload_id",)),  # media results find their video
]
COUNTERS = ("likes", "comments", "views", "plays", "play_completions")


class Status(StrEnum):
    DRAFT = "draft"
    PENDING_MEDIA = "pending_media"
    IN_REVIEW = "in_review"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    REJECTED = "rejected"
    ARCHIVED = "archived"
    DELETED = "deleted"


class MediaState(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


EDITABLE = frozenset({Status.DRAFT, Status.REJECTED, Status.PUBLISHED})


@dataclass(frozen=True)
class Rendition:
    height: int
    bitrate: int


@dataclass(frozen=True)
class Media:
    """A video's processing state and, once ready, its playback files (DESIGN §8). URLs are
    relative to the deployment's ``media_base_url``."""

    state: MediaState
    progress: float  # 0..1, never goes back
    error: str | None = None
    # Stable (media.probe / media.transcode codes), for clients; ``error`` says what to do.
    error_code: str | None = None
    hls_url: str | None = None
    mp4_url: str | None = None
    poster_url: str | None = None
    duration_s: float | None = None
    renditions: tuple[Rendition, ...] = ()

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Media:
        return cls(
            state=MediaState(doc["state"]),
            progress=float(doc.get("progress", 0.0)),
            error=doc.get("error"),
            error_code=doc.get("error_code"),
            hls_url=doc.get("hls_url"),
            mp4_url=doc.get("mp4_url"),
            poster_url=doc.get("poster_url"),
            duration_s=doc.get("duration_s"),
            renditions=tuple(
                Rendition(r["height"], r["bitrate"]) for r in doc.get("renditions", ())
            ),
        )


PROCESSING: dict[str, Any] = {
    "state": MediaState.PROCESSING.value,
    "progress": 0.0,
    "error": None,
    "error_code": None,
    "hls_url": None,
    "mp4_url": None,
    "poster_url": None,
    "duration_s": None,
    "renditions": [],
}


@dataclass(frozen=True)
class Counters:
    likes: int = 0
    comments: int = 0
    views: int = 0
    plays: int = 0
    play_completions: int = 0


@dataclass(frozen=True)
class Content:
    id: str
    account_id: str
    kind: Kind
    status: Status
    title: str
    created_at: str
    updated_at: str
    version: int
    text: str = ""  # post
    caption: str = ""  # video
    blocks: tuple[Block, ...] = ()  # article
    image_upload_ids: tuple[str, ...] = ()  # post
    upload_id: str | None = None  # video
    poster: str | None = None  # video: an upload id chosen by the editor
    media: Media | None = None  # video
    service_links: tuple[ServiceLink, ...] = ()
    coupon_ids: tuple[str, ...] = ()
    review: Review | None = None  # the last sensitive-word review
    needs_approval: bool = False
    reject_reason: str | None = None
    publish_at: str | None = None
    published_at: str | None = None
    counters: Counters = Counters()

    @property
    def image_ids(self) -> tuple[str, ...]:
        """Its image uploads in order of appearance (``content.images.image_refs``)."""
        blocks = (b.upload_id for b in self.blocks if isinstance(b, ImageBlock))
        return (*self.image_upload_ids, *blocks)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Content:
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            kind=Kind(doc["kind"]),
            status=Status(doc["status"]),
            title=doc.get("title", ""),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=doc.get("version", 0),
            text=doc.get("text", ""),
            caption=doc.get("caption", ""),
            blocks=tuple(block_from_doc(b) for b in doc.get("blocks", ())),
            image_upload_ids=tuple(doc.get("image_upload_ids", ())),
            upload_id=doc.get("upload_id"),
            poster=doc.get("poster"),
            media=Media.from_doc(doc["media"]) if doc.get("media") else None,
            service_links=tuple(ServiceLink.from_doc(s) for s in doc.get("service_links", ())),
            coupon_ids=tuple(doc.get("coupon_ids", ())),
            review=Review.from_doc(doc["review"]) if doc.get("review") else None,
            needs_approval=bool(doc.get("needs_approval", False)),
            reject_reason=doc.get("reject_reason"),
            publish_at=doc.get("publish_at"),
            published_at=doc.get("published_at"),
            counters=Counters(**{name: int(doc.get(name, 0)) for name in COUNTERS}),
        )


@dataclass(frozen=True)
class ContentPage:
    items: list[Content]
    next_cursor: str | None


def refused(action: str, status: str, code: str) -> Conflict:
    return Conflict(f"cannot {action} a content that is {status}", code=code, field="status")


async def create_content(
    store: DocumentStore, account_id: str, body: dict[str, Any], *, now: datetime
) -> Content:
    """A new draft from the §8 request body ``{"kind", …}``; a video starts processing."""
    if not isinstance(body, dict):
        raise Invalid("the body is an object with a kind", field="kind")
    kind = parse_kind(body.get("kind"))
    await get_account(store, account_id)
    fields = await parse_fields(store, account_id, kind, body, partial=False)
    at = rfc3339(now)
    doc: Doc = {
        "id": new_id("cnt"),
        "account_id": account_id,
        "kind": kind.value,
        "status": Status.DRAFT.value,
        **fields,
        "review": None,
        "needs_approval": False,
        "reject_reason": None,
        "publish_at": None,
        "published_at": None,
        "created_at": at,
        "updated_at": at,
        "version": 1,
        **{name: 0 for name in COUNTERS},
    }
    if kind == Kind.POST:
        check_post_has_body(doc)
    if kind == Kind.VIDEO:
        doc["media"] = dict(PROCESSING)
    refs = image_refs(doc)
    await check_image_uploads(store, account_id, refs)
    async with store.transaction():
        await store.collection(CONTENTS).insert(doc)
        await link_images(store, doc["id"], refs)
    return Content.from_doc(doc)


async def load(store: DocumentStore, content_id: str) -> Doc:
    """The stored document of a live (not deleted) content."""
    doc = await store.collection(CONTENTS).get(content_id)
    if doc is None or doc["status"] == Status.DELETED:
        raise NotFound("content", content_id)
    return doc


async def get_content(store: DocumentStore, content_id: str) -> Content:
    """Any live content, whatever its state (the console's and the staff API's view)."""
    return Content.from_doc(await load(store, content_id))


async def get_public_content(store: DocumentStore, content_id: str) -> Content:
    """A content as fans see it: only a published one exists for them."""
    content = await get_content(store, content_id)
    if content.status != Status.PUBLISHED:
        raise NotFound("content", content_id)
    return content


async def save(
    store: DocumentStore, doc: Doc, changes: dict[str, Any], *, now: datetime
) -> Content:
    """Apply ``changes`` if the content is still in the state and version ``doc`` shows."""
    changes = {**changes, "updated_at": rfc3339(now)}
    saved = await store.collection(CONTENTS).update_one(
        {"id": doc["id"], "status": doc["status"], "version": doc["version"]},
        {"$set": changes, "$inc": {"version": 1}},
    )
    if saved is None:
        raise Conflict(
            "the content changed meanwhile; reload it and try again",
            code="content_changed",
            field="status",
        )
    return Content.from_doc(saved)


async def edit_content(
    store: DocumentStore,
    content_id: str,
    body: dict[str, Any],
    *,
    policy: ReviewPolicy,
    now: datetime,
) -> Content:
    """Change some fields (a PATCH body). Allowed in draft, rejected (back to draft) and
    published (its text reviewed again)."""
    if not isinstance(body, dict):
        raise Invalid("the body is an object of fields to change", field="")
    async with store.transaction():
        doc = await load(store, content_id)
        status = Status(doc["status"])
        if status not in EDITABLE:
            raise refused("edit", status, "content_not_editable")
        kind = Kind(doc["kind"])
        changes = await parse_fields(store, doc["account_id"], kind, body, partial=True)
        merged = {**doc, **changes}
        if kind == Kind.POST:
            check_post_has_body(merged)
        refs = image_refs(merged)
        if refs != image_refs(doc):
            # Only uploads new to the content are checked: one it already shows may have
            # been resized and its source removed since.
            known = {ref.upload_id for ref in image_refs(doc)}
            fresh = [ref for ref in refs if ref.upload_id not in known]
            await check_image_uploads(store, doc["account_id"], fresh)
            await link_images(store, doc["id"], refs)
        if "upload_id" in changes and changes["upload_id"] != doc.get("upload_id"):
            if status == Status.PUBLISHED:
                raise Conflict(
                    "a published video keeps its upload; archive it and publish a new one",
                    code="content_not_editable",
                    field="upload_id",
                )
            changes["media"] = dict(PROCESSING)
        if status == Status.REJECTED:
            changes["status"] = Status.DRAFT.value
        if status == Status.PUBLISHED and reviewed_texts(merged) != reviewed_texts(doc):
            review = await policy.review_fields(
                reviewed_texts(merged), account_id=doc["account_id"]
            )
            changes["review"] = review.to_doc()
            if review.flagged:
                changes["status"] = Status.IN_REVIEW.value
                changes["needs_approval"] = True
        return await save(store, doc, changes, now=now)


async def archive_content(store: DocumentStore, content_id: str, *, now: datetime) -> Content:
    """Take a published content out of feeds and search; staff still see it."""
    async with store.transaction():
        doc = await load(store, content_id)
        if doc["status"] != Status.PUBLISHED:
            raise refused("archive", doc["status"], "content_not_published")
        return await save(
            store, doc, {"status": Status.ARCHIVED.value, "archived_at": rfc3339(now)}, now=now
        )


async def delete_content(store: DocumentStore, content_id: str, *, now: datetime) -> None:
    """Soft delete from any state: the content is hidden everywhere and kept for audit."""
    async with store.transaction():
        doc = await load(store, content_id)
        await save(
            store, doc, {"status": Status.DELETED.value, "deleted_at": rfc3339(now)}, now=now
        )


async def account_feed(
    store: DocumentStore, account_id: str, *, limit: int, cursor: str | None
) -> ContentPage:
    """An account's published contents, newest first: what fans see."""
    page = await store.collection(CONTENTS).page(
        {"account_id": account_id, "status": Status.PUBLISHED.value},
        sort=[("published_at", -1)],
        limit=limit,
        cursor=cursor,
    )
    return ContentPage([Content.from_doc(d) for d in page.items], page.next_cursor)


async def account_contents(
    store: DocumentStore,
    account_id: str,
    *,
    status: Status | None = None,
    limit: int,
    cursor: str | None,
) -> ContentPage:
    """Every live content of an account, newest first, optionally in one state (the console)."""
    if status == Status.DELETED:
        raise Invalid("deleted contents are not listed", field="status")
    filter: dict[str, Any] = {"account_id": account_id}
    filter["status"] = status.value if status else {"$ne": Status.DELETED.value}
    page = await store.collection(CONTENTS).page(
        filter, sort=[("created_at", -1)], limit=limit, cursor=cursor
    )
    return ContentPage([Content.from_doc(d) for d in page.items], page.next_cursor)


async def contents_for_upload(store: DocumentStore, upload_id: str) -> list[Content]:
    """The live videos showing an upload, for the media pipeline to report to."""
    docs = await store.collection(CONTENTS).find(
        {"upload_id": upload_id, "status": {"$ne": Status.DELETED.value}}
    )
    return [Content.from_doc(d) for d in docs]
