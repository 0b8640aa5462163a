"""The moves that take a content out to fans: publish, media results, moderation, schedule.

Where a publish lands is decided in one place, :func:`destination`, in this order: a video
whose media is not ready, or a post or article naming an image that is not ready yet, waits
(``pending_media``); text flagged by the sensitive-word review,
or a content a moderator has flagged or rejected before, waits for approval (``in_review``);
a ``publish_at`` still ahead waits for its time (``scheduled``); otherwise it is
``published``. Media results and approval re-enter the same decision from the step they
settle, so every path ends in the same place.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from accounts.errors import Conflict, Invalid
from content.blocks import Kind, reviewed_texts
from content.contents import (
    CONTENTS,
    Content,
    MediaState,
    Status,
    load,
    refused,
    save,
)
from content.fields import check_int, check_list, clean_line, clean_text, parse_time
from content.images import (
    Image,
    ImageRef,
    ImageState,
    contents_showing,
    image_refs,
    images_of,
)
from content.sensitive import ReviewPolicy
from store.clock import rfc3339
from store.port import Doc, DocumentStore

MAX_SCHEDULE_AHEAD = timedelta(days=366)
MAX_REASON = 500
MAX_MEDIA_URL = 1024


def destination(doc: Doc, *, flagged: bool, images_ready: bool, now: datetime) -> Status:
    if doc["kind"] == Kind.VIDEO and (doc.get("media") or {}).get("state") != MediaState.READY:
        return Status.PENDING_MEDIA
    if not images_ready:
        return Status.PENDING_MEDIA
    if flagged or doc.get("needs_approval"):
        return Status.IN_REVIEW
    if doc.get("publish_at") and doc["publish_at"] > rfc3339(now):
        return Status.SCHEDULED
    return Status.PUBLISHED


async def _go_out(
    store: DocumentStore,
    doc: Doc,
    *,
    policy: ReviewPolicy | None,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> Content:
    """Move ``doc`` to where :func:`destination` says; ``policy=None`` skips the review (an
    approval: a moderator has read it)."""
    changes: dict[str, Any] = dict(extra or {})
    merged = {**doc, **changes}
    flagged = False
    ready = all(i.state is ImageState.READY for i in (await _images(store, merged)).values())
    waits = destination(merged, flagged=False, images_ready=ready, now=now)
    if policy is not None and waits != Status.PENDING_MEDIA:
        review = await policy.review_fields(reviewed_texts(merged), account_id=doc["account_id"])
        changes["review"] = review.to_doc()
        flagged = review.flagged
        if flagged:
            changes["needs_approval"] = True
    status = destination(merged, flagged=flagged, images_ready=ready, now=now)
    changes["status"] = status.value
    if status == Status.PUBLISHED:
        # A content approved again after an edit keeps its first date and place in the feed.
        changes["published_at"] = doc.get("published_at") or rfc3339(now)
    return await save(store, doc, changes, now=now)


async def publish(
    store: DocumentStore,
    content_id: str,
    *,
    policy: ReviewPolicy,
    publish_at: Any = None,
    now: datetime,
) -> Content:
    """Publish a draft now, or at ``publish_at``; the returned status says where it landed:
    ``published``, ``scheduled``, ``pending_media`` or ``in_review`` (DESIGN §8)."""
    when: str | None = None
    if publish_at is not None:
        moment = parse_time(publish_at, field="publish_at")
        if moment - now > MAX_SCHEDULE_AHEAD:
            raise Invalid("at most a year ahead", field="publish_at")
        when = rfc3339(moment) if moment > now else None  # a time already past means now
    async with store.transaction():
        doc = await load(store, content_id)
        if doc["status"] != Status.DRAFT:
            raise refused("publish", doc["status"], "content_not_publishable")
        if (doc.get("media") or {}).get("state") == MediaState.FAILED:
            raise Conflict(
                "the video could not be processed; upload it again before publishing",
                code="media_failed",
                field="upload_id",
            )
        failed = _failed_image(doc, await _images(store, doc))
        if failed is not None:
            ref, image = failed
            raise Conflict(
                f"image {ref.upload_id} could not be processed ({image.error}); "
                "replace it before publishing",
                code="image_failed",
                field=ref.field,
            )
        return await _go_out(store, doc, policy=policy, now=now, extra={"publish_at": when})


async def _images(store: DocumentStore, doc: Doc) -> dict[str, Image]:
    """The image records of every image ``doc`` names; a missing record counts as not ready
    (its job is queued by whoever names the upload: the tus hook, a create, an edit)."""
    refs = image_refs(doc)
    found = await images_of(store, [ref.upload_id for ref in refs])
    return {
        ref.upload_id: found.get(ref.upload_id)
        or Image(ref.upload_id, doc["account_id"], ImageState.PROCESSING)
        for ref in refs
    }


def _failed_image(doc: Doc, images: dict[str, Image]) -> tuple[ImageRef, Image] | None:
    for ref in image_refs(doc):
        if images[ref.upload_id].state is ImageState.FAILED:
            return ref, images[ref.upload_id]
    return None


async def image_settled(
    store: DocumentStore, upload_id: str, *, policy: ReviewPolicy, now: datetime
) -> list[Content]:
    """An image became ready or failed: move each content waiting in ``pending_media`` for
    it. When its last image is ready it goes out (through :func:`destination`, as every
    publish does); a failed image takes it back to draft, where the image shows the error.
    Returns the contents moved."""
    moved: list[Content] = []
    for content_id in await contents_showing(store, upload_id):
        async with store.transaction():
            doc = await store.collection(CONTENTS).get(content_id)
            if doc is None or doc["status"] != Status.PENDING_MEDIA:
                continue
            images = await _images(store, doc)
            if upload_id not in images:
                continue  # an edit took the image out meanwhile (a stale row)
            if _failed_image(doc, images) is not None:
                moved.append(await save(store, doc, {"status": Status.DRAFT.value}, now=now))
            elif all(i.state is ImageState.READY for i in images.values()):
                moved.append(await _go_out(store, doc, policy=policy, now=now))
    return moved


async def approve(store: DocumentStore, content_id: str, *, now: datetime) -> Content:
    """A moderator lets a content in review go out (now, or at its ``publish_at``)."""
    async with store.transaction():
        doc = await load(store, content_id)
        if doc["status"] != Status.IN_REVIEW:
            raise refused("approve", doc["status"], "content_not_in_review")
        extra = {"needs_approval": False, "reject_reason": None, "approved_at": rfc3339(now)}
        return await _go_out(store, doc, policy=None, now=now, extra=extra)


async def reject(store: DocumentStore, content_id: str, *, reason: Any, now: datetime) -> Content:
    """A moderator turns a content in review down; the editor sees why and may edit it."""
    text = clean_text(reason, field="reason", longest=MAX_REASON, required=True)
    async with store.transaction():
        doc = await load(store, content_id)
        if doc["status"] != Status.IN_REVIEW:
            raise refused("reject", doc["status"], "content_not_in_review")
        changes = {
            "status": Status.REJECTED.value,
            "reject_reason": text,
            "needs_approval": True,
            "rejected_at": rfc3339(now),
        }
        return await save(store, doc, changes, now=now)


async def due_scheduled(store: DocumentStore, *, now: datetime, limit: int = 100) -> list[Content]:
    """Publish the scheduled contents whose time has come; returns those this call moved.

    Safe to run from several workers at once and to run again: each content moves by a
    guarded update from ``scheduled``, which only one caller can win."""
    docs = await store.collection(CONTENTS).find(
        {"status": Status.SCHEDULED.value, "publish_at": {"$lte": rfc3339(now)}},
        sort=[("publish_at", 1)],
        limit=limit,
    )
    moved: list[Content] = []
    for doc in docs:
        done = await store.collection(CONTENTS).update_one(
            {"id": doc["id"], "status": Status.SCHEDULED.value},
            {
                # Its place in the feed is the time it was meant for, however late this runs.
                "$set": {
                    "status": Status.PUBLISHED.value,
                    "published_at": doc.get("published_at") or doc["publish_at"],
                    "updated_at": rfc3339(now),
                },
                "$inc": {"version": 1},
            },
        )
        if done is not None:
            moved.append(Content.from_doc(done))
    return moved


def _check_media(media: Any) -> dict[str, Any]:
    if not isinstance(media, dict):
        raise Invalid("media is an object", field="media")
    out: dict[str, Any] = {}
    for name in ("hls_url", "mp4_url", "poster_url"):
        value = media.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_MEDIA_URL):
            raise Invalid("a URL relative to media_base_url", field=f"media.{name}")
        out[name] = value
    duration = media.get("duration_s")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
    ):
        raise Invalid("seconds, a number from 0", field="media.duration_s")
    out["duration_s"] = duration
    renditions = check_list(media.get("renditions"), field="media.renditions", most=20)
    out["renditions"] = [
        {
            "height": check_int(
                (r or {}).get("height"), field=f"media.renditions.{i}.height", least=1, most=8640
            ),
            "bitrate": check_int(
                (r or {}).get("bitrate"),
                field=f"media.renditions.{i}.bitrate",
                least=1,
                most=10**9,
            ),
        }
        for i, r in enumerate(renditions)
    ]
    return out


async def _media_doc(store: DocumentStore, content_id: str, upload_id: str | None) -> Doc | None:
    doc = await load(store, content_id)
    if doc["kind"] != Kind.VIDEO:
        raise Invalid("only a video has media", field="content_id")
    # A result for an upload the editor has since replaced is stale: it must not land.
    if upload_id is not None and doc.get("upload_id") != upload_id:
        return None
    # Only processing media takes a result: a late run (its worker presumed dead) must not
    # turn a video that is ready, perhaps published, into a failed one, or swap its files.
    if (doc.get("media") or {}).get("state") != MediaState.PROCESSING.value:
        return None
    return doc


async def media_progress(
    store: DocumentStore, content_id: str, progress: float, *, upload_id: str | None = None
) -> None:
    """Record processing progress (0..1); an older, lower figure never overwrites a newer one."""
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise Invalid("a fraction from 0 to 1", field="progress")
    value = min(max(float(progress), 0.0), 1.0)
    filter: dict[str, Any] = {
        "id": content_id,
        "media.state": MediaState.PROCESSING.value,
        "media.progress": {"$lt": value},
    }
    if upload_id is not None:
        filter["upload_id"] = upload_id
    await store.collection(CONTENTS).update_one(filter, {"$set": {"media.progress": value}})


async def media_ready(
    store: DocumentStore,
    content_id: str,
    media: Any,
    *,
    policy: ReviewPolicy,
    upload_id: str | None = None,
    now: datetime,
) -> Content:
    """The video is playable: record its files and move a waiting publish onward."""
    files = _check_media(media)
    async with store.transaction():
        doc = await _media_doc(store, content_id, upload_id)
        if doc is None:
            return Content.from_doc(await load(store, content_id))
        ready = {**files, "state": MediaState.READY.value, "progress": 1.0, "error": None}
        extra = {"media": ready}
        if doc["status"] == Status.PENDING_MEDIA:
            return await _go_out(store, doc, policy=policy, now=now, extra=extra)
        return await save(store, doc, extra, now=now)


async def media_failed(
    store: DocumentStore,
    content_id: str,
    *,
    error: Any,
    code: str = "failed",
    upload_id: str | None = None,
    now: datetime,
) -> Content:
    """The video could not be processed (``code`` stable, ``error`` what to do about it); a
    waiting publish goes back to draft for a new upload."""
    message = clean_text(error, field="error", longest=MAX_REASON, required=True)
    async with store.transaction():
        doc = await _media_doc(store, content_id, upload_id)
        if doc is None:
            return Content.from_doc(await load(store, content_id))
        media = {**(doc.get("media") or {}), "state": MediaState.FAILED.value}
        media |= {"error": message, "error_code": clean_line(code, field="code", longest=40)}
        changes: dict[str, Any] = {"media": media}
        if doc["status"] == Status.PENDING_MEDIA:
            changes["status"] = Status.DRAFT.value
        return await save(store, doc, changes, now=now)
