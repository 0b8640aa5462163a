"""The video pipeline: an uploaded file becomes the HLS ladder, MP4 fallback and poster of a
video content, as a job of the persisted media queue (``media.jobs``).

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
from content.contents import get_content
from content.publishing import media_failed, media_progress, media_ready
from content.sensitive import ReviewPolicy
from content.uploads import UPLOADS, State
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
