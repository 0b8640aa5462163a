"""The media pipelines, as jobs of the persisted media queue (``media.jobs``): an uploaded
file becomes the HLS ladder, MP4 fallback and poster of a video content (:class:`VideoPipeline`),
or the large picture and thumbnail of an image in posts and articles (:class:`ImagePipeline`).

The handler probes the upload in a child process (``media.probe``), transcodes it
(``media.transcode``) into ``videos/<content>/<upload>`` of the blob store and hands the files
to ``content.publishing.media_ready``; a file that is not a usable video ends the content's
processing with ``media_failed`` and a message saying what to upload instead. Progress goes to
both the job and the content, never backwards. A job that is run again (its worker died)
starts the transcode over in a directory of its own: nothing half-made is ever handed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from accounts.errors import DomainError
from content.contents import Content, get_content
from content.images import (
    IMAGES,
    RESIZE,
    ImageState,
    image_failed,
    image_ready,
    images_of,
    start_image,
)
from content.publishing import image_settled, media_failed, media_progress, media_ready
from content.sensitive import ReviewPolicy
from content.uploads import UPLOADS, State, Upload
from media import images as imaging
from media.blobs import BlobStore
from media.ffmpeg import EncodeSettings
from media.jobs import JOBS, Job, JobQueue, JobState
from media.probe import ProbeError, ProbeLimits, probe
from media.transcode import TranscodeError, Transcoder
from media.worker import HandlerError, Progress
from store.port import DocumentStore

TRANSCODE = "transcode"
# Transcoding failures that another attempt may cure (a killed or timed-out ffmpeg); a
# probe verdict on the file itself never changes, so those are not retried.
RETRYABLE = frozenset({"ffmpeg_failed", "timeout", "output_missing"})


def output_key(content_id: str, job: Job) -> str:
    """Each attempt writes a directory of its own: a run whose worker was presumed dead may
    still be finishing, and a published video's files are never replaced under it."""
    return f"videos/{content_id}/{job.id}-{job.attempts}"


@dataclass
class VideoPipeline:
    store: DocumentStore
    blobs: BlobStore
    policy: ReviewPolicy
    now: Callable[[], datetime]
    limits: ProbeLimits = field(default_factory=ProbeLimits)
    encode: EncodeSettings = field(default_factory=EncodeSettings)

    async def enqueue(self, queue: JobQueue, *, content_id: str, upload_id: str) -> Job:
        return await queue.enqueue(TRANSCODE, {"content_id": content_id, "upload_id": upload_id})

    def handlers(self) -> dict[str, Any]:
        return {TRANSCODE: self.transcode}

    async def transcode(self, job: Job, progress: Progress) -> dict[str, Any]:
        """The ``transcode`` job handler."""
        content_id = str(job.payload["content_id"])
        upload_id = str(job.payload["upload_id"])
        try:
            return await self._transcode(job, progress, content_id, upload_id)
        except (HandlerError, asyncio.CancelledError):
            raise
        except DomainError as exc:
            # The content was deleted or changed kind meanwhile: nothing to retry for.
            raise HandlerError(exc.code, exc.detail) from None
        except Exception:
            if job.attempts >= job.max_attempts:
                # The last attempt: the content must not wait for a video that never comes.
                await self._fail(
                    content_id, upload_id, "processing failed; upload it again", "failed"
                )
            raise

    async def _transcode(
        self, job: Job, progress: Progress, content_id: str, upload_id: str
    ) -> dict[str, Any]:
        content = await get_content(self.store, content_id)
        upload = await self.store.collection(UPLOADS).get(upload_id)
        if (
            upload is None
            or upload.get("state") != State.COMPLETE.value
            or upload.get("account_id") != content.account_id
        ):
            await self._fail(
                content_id,
                upload_id,
                "the upload is missing or incomplete; upload the file again",
                "upload_missing",
            )
            raise HandlerError("upload_missing", f"upload {upload_id} is not a usable upload")
        source = self.blobs.path(upload["blob"])
        try:
            probed = await probe(source, limits=self.limits)
        except ProbeError as exc:
            await self._fail(content_id, upload_id, exc.message, exc.code)
            raise HandlerError(exc.code, exc.message) from None
        key = output_key(content_id, job)
        out_dir = self.blobs.path(key)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        settings = replace(self.encode, max_duration_s=self.limits.max_duration_s)
        # A generous bound that still ends a file built to make ffmpeg crawl.
        timeout_s = 120.0 + 20.0 * probed.duration_s
        transcoder = Transcoder(source, probed, out_dir, settings=settings, timeout_s=timeout_s)

        async def on_progress(fraction: float) -> None:
            await progress(fraction)
            # The content shows 1.0 only once its files are handed on (media_ready).
            await media_progress(self.store, content_id, min(fraction, 0.99), upload_id=upload_id)

        try:
            result = await transcoder.run(on_progress)
        except TranscodeError as exc:
            retry = exc.code in RETRYABLE and job.attempts < job.max_attempts
            if not retry:
                await self._fail(content_id, upload_id, exc.message, exc.code)
            raise HandlerError(exc.code, exc.message, retry=retry) from None
        except asyncio.CancelledError:
            await transcoder.stop()
            raise
        media = {
            "hls_url": self.blobs.url(f"{key}/hls/master.m3u8"),
            "mp4_url": self.blobs.url(f"{key}/video.mp4"),
            "poster_url": self.blobs.url(f"{key}/poster.jpg"),
            "duration_s": round(result.duration_s, 3),
            "renditions": [{"height": r.height, "bitrate": r.bitrate} for r in result.renditions],
        }
        await media_ready(
            self.store, content_id, media, policy=self.policy, upload_id=upload_id, now=self.now()
        )
        return {"media": media, "elapsed_s": round(result.elapsed_s, 3)}

    async def settle_failed(self) -> int:
        """Mark the content of every transcode job that ended failed outside the handler (its
        worker died on the last attempt) as failed too, so no video waits for ever; returns
        how many jobs were settled. Run by housekeeping."""
        jobs = self.store.collection(JOBS)
        settled = 0
        for doc in await jobs.find(
            {"kind": TRANSCODE, "state": JobState.FAILED.value, "settled": {"$exists": False}},
            limit=500,
        ):
            payload = doc.get("payload") or {}
            try:
                await self._fail(
                    str(payload.get("content_id")),
                    str(payload.get("upload_id")),
                    "processing failed; upload it again",
                    "failed",
                )
            except DomainError:
                pass  # the content is gone or no longer a video: nothing waits for it
            await jobs.update_one({"id": doc["id"]}, {"$set": {"settled": True}})
            settled += 1
        return settled

    async def _fail(self, content_id: str, upload_id: str, message: str, code: str) -> None:
        await media_failed(
            self.store, content_id, error=message, code=code, upload_id=upload_id, now=self.now()
        )


def image_key(upload_id: str, job: Job) -> str:
    """Like :func:`output_key`: each attempt writes a directory of its own."""
    return f"images/{upload_id}/{job.id}-{job.attempts}"


@dataclass
class ImagePipeline:
    """The ``image`` job: an image upload becomes ``large.jpg`` and ``thumb.jpg``
    (``media.images``), its record in ``images`` turns ready or failed, and the contents
    waiting for it move on (``content.publishing.image_settled``)."""

    store: DocumentStore
    blobs: BlobStore
    policy: ReviewPolicy
    now: Callable[[], datetime]
    limits: imaging.ImageLimits = field(default_factory=imaging.ImageLimits)

    def handlers(self) -> dict[str, Any]:
        return {RESIZE: self.resize}

    async def upload_complete(self, queue: JobQueue, upload: Upload) -> bool:
        """A tus upload just completed: queue its resize if its first bytes are an image's
        (only the magic bytes are read here; the job judges the rest). True when queued."""
        head = await asyncio.to_thread(_read, self.blobs, upload.blob, imaging.SNIFF_BYTES)
        try:
            imaging.sniff(head)
        except imaging.ImageError:
            return False  # a video, or nothing we show: a content naming it finds out
        return await start_image(
            self.store, queue, upload_id=upload.id, account_id=upload.account_id, now=self.now()
        )

    async def ensure(self, queue: JobQueue, contents: list[Content]) -> int:
        """Queue the resize of every image these contents name that has no record yet (one
        created before its upload completed, or before this pipeline existed); returns how
        many were queued."""
        wanted = {i: c.account_id for c in contents for i in c.image_ids}
        known = await images_of(self.store, wanted)
        started = 0
        for upload_id, account_id in wanted.items():
            if upload_id not in known:
                started += await start_image(
                    self.store, queue, upload_id=upload_id, account_id=account_id, now=self.now()
                )
        return started

    async def resize(self, job: Job, progress: Progress) -> dict[str, Any]:
        """The ``image`` job handler."""
        upload_id = str(job.payload["upload_id"])
        record = await self.store.collection(IMAGES).get(upload_id)
        if record is None or record["state"] != ImageState.PROCESSING:
            return {"skipped": "the image is not processing"}
        try:
            return await self._resize(job, upload_id, record["account_id"])
        except (HandlerError, asyncio.CancelledError):
            raise
        except Exception:
            if job.attempts >= job.max_attempts:
                # The last attempt: no content may wait for an image that never comes.
                await self._fail(upload_id, "failed", "processing failed; upload it again")
            raise

    async def _resize(self, job: Job, upload_id: str, account_id: str) -> dict[str, Any]:
        upload = await self.store.collection(UPLOADS).get(upload_id)
        if (
            upload is None
            or upload.get("state") != State.COMPLETE.value
            or upload.get("account_id") != account_id
        ):
            message = "the upload is missing or incomplete; upload the image again"
            await self._fail(upload_id, "upload_missing", message)
            raise HandlerError("upload_missing", message)
        source = self.blobs.path(upload["blob"])
        key = image_key(upload_id, job)
        out_dir = self.blobs.path(key)
        try:
            inspected = await imaging.inspect(source, self.limits)
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            resizer = imaging.ImageResizer(source, inspected, out_dir, limits=self.limits)
            try:
                result = await resizer.run()
            except asyncio.CancelledError:
                await resizer.stop()
                raise
        except imaging.ImageError as exc:
            # A timeout may be a loaded machine: tried again while attempts remain. What the
            # file is (not an image, too large, damaged) never changes.
            retry = exc.code == imaging.TIMEOUT and job.attempts < job.max_attempts
            if not retry:
                await self._fail(upload_id, exc.code, exc.message)
            raise HandlerError(exc.code, exc.message, retry=retry) from None
        done = await image_ready(
            self.store,
            upload_id,
            url=self.blobs.url(f"{key}/{imaging.LARGE_FILE}"),
            thumb_url=self.blobs.url(f"{key}/{imaging.THUMB_FILE}"),
            width=result.large.width,
            height=result.large.height,
            now=self.now(),
        )
        if done is not None:
            await image_settled(self.store, upload_id, policy=self.policy, now=self.now())
        return {
            "url": done.url if done else None,
            "source": [result.source.width, result.source.height],
            "large": [result.large.width, result.large.height],
            "thumb": [result.thumb.width, result.thumb.height],
            "elapsed_s": result.elapsed_s,
        }

    async def settle_failed(self) -> int:
        """Fail the image of every ``image`` job that ended failed outside the handler (its
        worker died on the last attempt), so no content waits for ever. Run by housekeeping."""
        jobs = self.store.collection(JOBS)
        settled = 0
        for doc in await jobs.find(
            {"kind": RESIZE, "state": JobState.FAILED.value, "settled": {"$exists": False}},
            limit=500,
        ):
            upload_id = str((doc.get("payload") or {}).get("upload_id"))
            await self._fail(upload_id, "failed", "processing failed; upload it again")
            await jobs.update_one({"id": doc["id"]}, {"$set": {"settled": True}})
            settled += 1
        return settled

    async def _fail(self, upload_id: str, code: str, message: str) -> None:
        if await image_failed(self.store, upload_id, code=code, error=message, now=self.now()):
            await image_settled(self.store, upload_id, policy=self.policy, now=self.now())


def _read(blobs: BlobStore, key: str, size: int) -> bytes:
    try:
        with blobs.open(key) as handle:
            return handle.read(size)
    except FileNotFoundError:
        return b""
