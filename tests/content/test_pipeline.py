"""An upload becomes a published video through the real job queue, worker, probe and ffmpeg."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from accounts.accounts import Account
from accounts.errors import Conflict
from content.contents import MediaState, Status, create_content, delete_content, get_content
from content.pipeline import TRANSCODE, VideoPipeline, output_key
from content.publishing import publish
from content.sensitive import ReviewPolicy
from content.uploads import Uploads
from media.blobs import BlobStore
from media.ffmpeg import EncodeSettings
from media.jobs import FINAL_STATES, Job, JobQueue, JobState
from media.jobs import INDEXES as JOB_INDEXES
from media.worker import Worker
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW
from tests.media.clips import decode_errors, make_clip


async def _upload(uploads: Uploads, account: Account, data: bytes) -> str:
    made = await uploads.create(
        account_id=account.id,
        created_by="stf_test",
        length=len(data),
        metadata={"filename": "clip.mp4"},
        now=NOW,
    )

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await uploads.append(made.id, account_id=account.id, offset=0, chunks=chunks(), now=NOW)
    return made.id


async def _run_until_final(queue: JobQueue, worker: Worker, job: Job) -> Job:
    task = asyncio.create_task(worker.run_forever())
    try:
        for _ in range(600):  # bounded: ~60 s at most on a loaded machine
            current = await queue.get(job.id)
            assert current is not None
            if current.state in FINAL_STATES:
                return current
            await asyncio.sleep(0.1)  # polling the real job state, not timing a result
        raise AssertionError(f"job {job.id} did not finish")
    finally:
        await worker.stop()
        await task


async def _waiting_video(
    store: SQLiteStore,
    blobs: BlobStore,
    policy: ReviewPolicy,
    owner: Account,
    data: bytes,
    *,
    of: Account | None = None,
) -> tuple[str, str, JobQueue]:
    """A video content of ``of`` (default: ``owner``) on an upload of ``owner``, published
    and so waiting for its media; returns (content id, upload id, a queue)."""
    uploads = Uploads(store, blobs, max_size=10 * 1024 * 1024)
    upload_id = await _upload(uploads, owner, data)
    content = await create_content(
        store,
        (of or owner).id,
        {"kind": "video", "title": "新品上市", "upload_id": upload_id},
        now=NOW,
    )
    assert (await publish(store, content.id, policy=policy, now=NOW)).status is Status.PENDING_MEDIA
    await store.ensure_indexes(JOB_INDEXES)
    return content.id, upload_id, JobQueue(store, owner="test", now=lambda: NOW)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "media", "/media")


@pytest.fixture
def pipeline(store: SQLiteStore, blobs: BlobStore, policy: ReviewPolicy) -> VideoPipeline:
    return VideoPipeline(
        store, blobs, policy, now=lambda: NOW, encode=EncodeSettings(threads=1, preset="ultrafast")
    )


async def test_an_uploaded_clip_becomes_a_published_video(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    pipeline: VideoPipeline,
    policy: ReviewPolicy,
    tmp_path: Path,
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="640x360", seconds=1.5)
    content_id, upload_id, queue = await _waiting_video(
        store, blobs, policy, account, clip.read_bytes()
    )
    job = await pipeline.enqueue(queue, content_id=content_id, upload_id=upload_id)
    done = await _run_until_final(queue, Worker(queue, pipeline.handlers()), job)
    assert done.state is JobState.DONE, done.error
    assert done.progress == 1.0
    ready = await get_content(store, content_id)
    assert ready.status is Status.PUBLISHED
    assert ready.media is not None and ready.media.state is MediaState.READY
    key = output_key(content_id, done)
    assert ready.media.hls_url == f"/media/{key}/hls/master.m3u8"
    assert [r.height for r in ready.media.renditions] == [360]
    assert decode_errors(blobs.path(f"{key}/hls/master.m3u8")) == (0, "")
    assert blobs.path(f"{key}/poster.jpg").read_bytes()[:2] == b"\xff\xd8"


async def test_random_bytes_end_in_a_clear_failure_and_nothing_published(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    pipeline: VideoPipeline,
    policy: ReviewPolicy,
) -> None:
    content_id, upload_id, queue = await _waiting_video(
        store, blobs, policy, account, bytes(range(256)) * 64
    )
    job = await pipeline.enqueue(queue, content_id=content_id, upload_id=upload_id)
    done = await _run_until_final(queue, Worker(queue, pipeline.handlers()), job)
    assert done.state is JobState.FAILED and done.attempts == 1  # a verdict is not retried
    assert done.error is not None and done.error.code == "not_a_video"
    failed = await get_content(store, content_id)
    assert failed.status is not Status.PUBLISHED
    assert failed.media is not None and failed.media.state is MediaState.FAILED
    assert failed.media.error
    assert not blobs.path(output_key(content_id, done)).exists()


async def test_another_accounts_upload_is_never_transcoded_into_this_content(
    store: SQLiteStore,
    account: Account,
    other_account: Account,
    blobs: BlobStore,
    pipeline: VideoPipeline,
    policy: ReviewPolicy,
    tmp_path: Path,
) -> None:
    clip = make_clip(tmp_path / "theirs.mp4", size="320x240", seconds=1.0)
    content_id, theirs, queue = await _waiting_video(
        store, blobs, policy, other_account, clip.read_bytes(), of=account
    )
    job = await pipeline.enqueue(queue, content_id=content_id, upload_id=theirs)
    done = await _run_until_final(queue, Worker(queue, pipeline.handlers()), job)
    assert done.state is JobState.FAILED and done.error is not None
    assert done.error.code == "upload_missing"
    after = await get_content(store, content_id)
    assert after.media is not None and after.media.state is MediaState.FAILED
    assert not blobs.path(f"videos/{content_id}").exists()


async def test_an_upload_a_content_uses_cannot_be_terminated(
    store: SQLiteStore, account: Account, blobs: BlobStore
) -> None:
    uploads = Uploads(store, blobs, max_size=1024 * 1024)
    upload_id = await _upload(uploads, account, b"\x00" * 1000)
    content = await create_content(
        store, account.id, {"kind": "video", "title": "t", "upload_id": upload_id}, now=NOW
    )
    with pytest.raises(Conflict) as err:
        await uploads.terminate(upload_id, account_id=account.id, now=NOW)
    assert err.value.code == "upload_in_use"
    assert blobs.path(f"uploads/{upload_id}").exists()
    await delete_content(store, content.id, now=NOW)
    await uploads.terminate(upload_id, account_id=account.id, now=NOW)
    assert not blobs.path(f"uploads/{upload_id}").exists()


async def test_a_job_that_died_on_its_last_attempt_fails_its_content(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    pipeline: VideoPipeline,
    policy: ReviewPolicy,
) -> None:
    content_id, upload_id, queue = await _waiting_video(
        store, blobs, policy, account, b"\x00" * 100
    )
    await pipeline.enqueue(queue, content_id=content_id, upload_id=upload_id)
    claimed = await queue.claim([TRANSCODE])
    assert claimed is not None
    # What recover() does to a job whose worker kept dying: failed, outside any handler.
    await queue.fail(claimed, "worker_lost", "the worker stopped answering", retry=False)
    before = await get_content(store, content_id)
    assert before.media is not None and before.media.state is MediaState.PROCESSING
    assert await pipeline.settle_failed() == 1
    after = await get_content(store, content_id)
    assert after.media is not None and after.media.state is MediaState.FAILED
    assert await pipeline.settle_failed() == 0  # settled once
