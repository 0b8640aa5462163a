"""Images of posts and articles: one record per image upload, and which contents show it.

A post names up to nine image uploads (``image_upload_ids``), an article names them in image
blocks (``{"type": "image", "upload_id"}``). Each upload gets one record in ``images``, keyed
by the upload id: ``processing`` until the ``image`` job (``content.pipeline.ImagePipeline``)
has resized it, then ``ready`` with the URLs of its ``large.jpg`` and ``thumb.jpg``, or
``failed`` with a stable ``error_code`` and a message saying what to upload instead.

``content_images`` holds one row per (content, upload) so that an image becoming ready finds
the contents waiting for it: the store cannot match inside arrays. ``content.publishing``
decides what a content waiting for images does; this module only keeps the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from accounts.errors import DomainError
from content.uploads import usable_upload
from media.jobs import JobQueue
from store.clock import rfc3339
from store.port import Doc, DocumentStore, DuplicateKeyError, Index

IMAGES = "images"
CONTENT_IMAGES = "content_images"
INDEXES = [
    Index(CONTENT_IMAGES, ("upload_id",)),  # an image settles: the contents that show it
    Index(CONTENT_IMAGES, ("content_id",)),  # an edit replaces a content's rows
]
RESIZE = "image"  # the job kind


class ImageState(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class Image:
    upload_id: str
    account_id: str
    state: ImageState
    url: str | None = None  # large.jpg, long side at most 1440
    thumb_url: str | None = None  # thumb.jpg, long side at most 360
    width: int | None = None  # of large.jpg
    height: int | None = None
    error_code: str | None = None  # stable: media.images codes, upload_missing, failed
    error: str | None = None

    @classmethod
    def from_doc(cls, doc: Doc) -> Image:
        return cls(
            upload_id=doc["id"],
            account_id=doc["account_id"],
            state=ImageState(doc["state"]),
            url=doc.get("url"),
            thumb_url=doc.get("thumb_url"),
            width=doc.get("width"),
            height=doc.get("height"),
            error_code=doc.get("error_code"),
            error=doc.get("error"),
        )


@dataclass(frozen=True)
class ImageRef:
    """Where a content names an image upload: the request field, for error messages."""

    field: str
    upload_id: str


def image_refs(doc: dict[str, Any]) -> list[ImageRef]:
    """A content's images in order of appearance: a post's, then an article's image blocks."""
    refs = [
        ImageRef(f"image_upload_ids.{i}", upload_id)
        for i, upload_id in enumerate(doc.get("image_upload_ids") or ())
    ]
    refs += [
        ImageRef(f"blocks.{i}.upload_id", block["upload_id"])
        for i, block in enumerate(doc.get("blocks") or ())
        if block.get("type") == "image"
    ]
    return refs


async def check_image_uploads(
    store: DocumentStore, account_id: str, refs: Iterable[ImageRef]
) -> None:
    """Each upload must be the account's own and complete: 404 / 409 naming the field."""
    for ref in refs:
        try:
            await usable_upload(store, ref.upload_id, account_id=account_id)
        except DomainError as exc:
            exc.field = ref.field
            raise


async def link_images(store: DocumentStore, content_id: str, refs: Sequence[ImageRef]) -> None:
    """Record which uploads ``content_id`` shows, replacing what it showed before."""
    rows = store.collection(CONTENT_IMAGES)
    await rows.delete_many({"content_id": content_id})
    for upload_id in dict.fromkeys(ref.upload_id for ref in refs):
        await rows.insert(
            {"id": f"{content_id}.{upload_id}", "content_id": content_id, "upload_id": upload_id}
        )


async def contents_showing(store: DocumentStore, upload_id: str) -> list[str]:
    """The ids of the contents that name ``upload_id`` as an image (any state)."""
    rows = await store.collection(CONTENT_IMAGES).find({"upload_id": upload_id})
    return list(dict.fromkeys(row["content_id"] for row in rows))


async def images_of(store: DocumentStore, upload_ids: Iterable[str]) -> dict[str, Image]:
    """The image records of ``upload_ids`` in one query; an upload without one is absent."""
    wanted = list(dict.fromkeys(upload_ids))
    if not wanted:
        return {}
    docs = await store.collection(IMAGES).find({"id": {"$in": wanted}})
    return {doc["id"]: Image.from_doc(doc) for doc in docs}


async def start_image(
    store: DocumentStore, queue: JobQueue, *, upload_id: str, account_id: str, now: datetime
) -> bool:
    """Create the upload's image record and queue its job, once: True when this call did.

    Record and job are written in one transaction, so no record waits for a job that was
    never queued; a second call (the tus hook and a content both asking) finds the record.
    """
    images = store.collection(IMAGES)
    if await images.get(upload_id) is not None:
        return False
    stamp = rfc3339(now)
    try:
        async with store.transaction():
            await images.insert(
                {
                    "id": upload_id,
                    "account_id": account_id,
                    "state": ImageState.PROCESSING.value,
                    "url": None,
                    "thumb_url": None,
                    "width": None,
                    "height": None,
                    "error_code": None,
                    "error": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            await queue.enqueue(RESIZE, {"upload_id": upload_id})
    except DuplicateKeyError:
        return False
    return True


async def image_ready(
    store: DocumentStore,
    upload_id: str,
    *,
    url: str,
    thumb_url: str,
    width: int,
    height: int,
    now: datetime,
) -> Image | None:
    """Record the resized files; None when the image is not processing (a late run)."""
    doc = await store.collection(IMAGES).update_one(
        {"id": upload_id, "state": ImageState.PROCESSING.value},
        {
            "$set": {
                "state": ImageState.READY.value,
                "url": url,
                "thumb_url": thumb_url,
                "width": width,
                "height": height,
                "updated_at": rfc3339(now),
            }
        },
    )
    return Image.from_doc(doc) if doc else None


async def image_failed(
    store: DocumentStore, upload_id: str, *, code: str, error: str, now: datetime
) -> Image | None:
    """Record why the upload is no usable image; None when it is not processing."""
    doc = await store.collection(IMAGES).update_one(
        {"id": upload_id, "state": ImageState.PROCESSING.value},
        {
            "$set": {
                "state": ImageState.FAILED.value,
                "error_code": code[:40],
                "error": error[:500],
                "updated_at": rfc3339(now),
            }
        },
    )
    return Image.from_doc(doc) if doc else None
