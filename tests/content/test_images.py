"""Images of posts and articles through the real job queue and ffmpeg: the ``image`` job,
publishing that waits for images, and a failed image that sends its post back to draft."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.accounts import Account
from accounts.errors import Conflict, NotFound
from content.contents import Status, create_content, delete_content, edit_content, get_content
from content.images import (
    CONTENT_IMAGES,
    IMAGES,
    RESIZE,
    ImageRef,
    ImageState,
    contents_showing,
    image_refs,
    images_of,
)
from content.pipeline import ImagePipeline, image_key
from content.publishing import publish
from content.sensitive import ReviewPolicy
from content.uploads import Upload, Uploads
from media.blobs import BlobStore
from media.images import Size, jpeg_size
from media.jobs import INDEXES as JOB_INDEXES
from media.jobs import JOBS, JobQueue, JobState
from media.worker import HandlerError
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW, make_upload
from tests.media.clips import cached, ffmpeg


@pytest.fixture(scope="session")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = cached(
        tmp_path_factory,
        "content-800x600.png",
        lambda p: ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=800x600", "-frames:v", "1", "-update", "1",
            "-f", "image2", str(p),
        ),
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "media", "/media")


@pytest.fixture
async def queue(store: SQLiteStore) -> JobQueue:
    await store.ensure_indexes(JOB_INDEXES)
    return JobQueue(store, owner="test", now=lambda: NOW)


@pytest.fixture
def pipeline(store: SQLiteStore, blobs: BlobStore, policy: ReviewPolicy) -> ImagePipeline:
    return ImagePipeline(store, blobs, policy, now=lambda: NOW)


async def no_progress(fraction: float) -> None:
    pass


async def run_next(queue: JobQueue, pipeline: ImagePipeline) -> tuple[str, dict[str, object]]:
    """One worker step, run directly: claim the oldest image job, run its handler, settle it
    as the worker would. Returns (the job's final state, its result or error)."""
    job = await queue.claim([RESIZE])
    assert job is not None, "no image job was queued"
    try:
        result = await pipeline.resize(job, no_progress)
    except HandlerError as exc:
        failed = await queue.fail(job, exc.code, exc.message, retry=exc.retry)
        return failed.state.value, {"code": exc.code, "message": exc.message}
    await queue.finish(job, result)
    return JobState.DONE.value, result


async def uploaded(store: SQLiteStore, blobs: BlobStore, account: Account, data: bytes) -> Upload:
    upload_id = await make_upload(store, blobs, account, data)
    found = await Uploads(store, blobs, max_size=1).find(upload_id)
    assert found is not None
    return found


async def test_an_image_upload_becomes_a_large_picture_and_a_thumbnail(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
    png: bytes,
) -> None:
    upload = await uploaded(store, blobs, account, png)
    assert await pipeline.upload_complete(queue, upload) is True
    assert await pipeline.upload_complete(queue, upload) is False  # one record, one job
    assert await store.collection(JOBS).count({"kind": RESIZE}) == 1
    assert (await images_of(store, [upload.id]))[upload.id].state is ImageState.PROCESSING

    state, result = await run_next(queue, pipeline)
    assert state == "done", result
    image = (await images_of(store, [upload.id]))[upload.id]
    assert image.state is ImageState.READY and (image.width, image.height) == (800, 600)
    job = await store.collection(JOBS).find_one({"kind": RESIZE})
    assert job is not None
    key = f"images/{upload.id}/{job['id']}-1"
    assert image.url == f"/media/{key}/large.jpg"
    assert image.thumb_url == f"/media/{key}/thumb.jpg"
    assert jpeg_size(blobs.path(f"{key}/large.jpg").read_bytes()) == Size(800, 600)
    assert jpeg_size(blobs.path(f"{key}/thumb.jpg").read_bytes()) == Size(360, 270)


async def test_bytes_that_are_no_image_are_not_queued_by_the_upload_hook(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
) -> None:
    upload = await uploaded(store, blobs, account, bytes(range(256)) * 4)
    assert await pipeline.upload_complete(queue, upload) is False
    assert await store.collection(IMAGES).get(upload.id) is None
    assert await queue.claim([RESIZE]) is None


async def test_a_post_waits_in_pending_media_until_its_last_image_is_ready(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
    policy: ReviewPolicy,
    png: bytes,
) -> None:
    first = await make_upload(store, blobs, account, png)
    second = await make_upload(store, blobs, account, png)
    post = await create_content(
        store,
        account.id,
        {"kind": "post", "text": "今日上新", "image_upload_ids": [first, second]},
        now=NOW,
    )
    assert await pipeline.ensure(queue, [post]) == 2
    assert await pipeline.ensure(queue, [post]) == 0
    assert sorted(await contents_showing(store, first)) == [post.id]

    waiting = await publish(store, post.id, policy=policy, now=NOW)
    assert waiting.status is Status.PENDING_MEDIA and waiting.published_at is None
    assert (await run_next(queue, pipeline))[0] == "done"
    assert (await get_content(store, post.id)).status is Status.PENDING_MEDIA  # one left
    assert (await run_next(queue, pipeline))[0] == "done"
    out = await get_content(store, post.id)
    assert out.status is Status.PUBLISHED and out.published_at is not None


async def test_images_ready_first_publish_at_once_and_flagged_text_still_waits_for_review(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
    policy: ReviewPolicy,
    png: bytes,
) -> None:
    image = await make_upload(store, blobs, account, png)
    article = await create_content(
        store,
        account.id,
        {
            "kind": "article",
            "title": "赌博 指南",  # a listed word: the review holds it once images are ready
            "blocks": [{"type": "image", "upload_id": image}],
        },
        now=NOW,
    )
    await pipeline.ensure(queue, [article])
    assert (await publish(store, article.id, policy=policy, now=NOW)).status is (
        Status.PENDING_MEDIA
    )
    await run_next(queue, pipeline)
    assert (await get_content(store, article.id)).status is Status.IN_REVIEW

    plain = await create_content(
        store, account.id, {"kind": "post", "image_upload_ids": [image]}, now=NOW
    )
    assert (await publish(store, plain.id, policy=policy, now=NOW)).status is Status.PUBLISHED


async def test_a_failed_image_sends_the_post_back_to_draft_and_publish_answers_409(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
    policy: ReviewPolicy,
    png: bytes,
) -> None:
    good = await make_upload(store, blobs, account, png)
    junk = await make_upload(store, blobs, account, bytes(range(256)) * 4)
    post = await create_content(
        store, account.id, {"kind": "post", "image_upload_ids": [good, junk]}, now=NOW
    )
    await pipeline.ensure(queue, [post])
    assert (await publish(store, post.id, policy=policy, now=NOW)).status is Status.PENDING_MEDIA
    outcomes = [await run_next(queue, pipeline), await run_next(queue, pipeline)]
    assert outcomes[0][0] == "done"
    assert outcomes[1][0] == "failed" and outcomes[1][1]["code"] == "not_an_image"
    back = await get_content(store, post.id)
    assert back.status is Status.DRAFT
    failed = (await images_of(store, [junk]))[junk]
    assert failed.state is ImageState.FAILED and failed.error_code == "not_an_image"
    assert failed.error and "JPEG, PNG, WebP or GIF" in failed.error
    assert not blobs.path(f"images/{junk}").exists() or not any(
        blobs.path(f"images/{junk}").iterdir()
    )

    with pytest.raises(Conflict) as refused:
        await publish(store, post.id, policy=policy, now=NOW)
    assert (refused.value.code, refused.value.field) == ("image_failed", "image_upload_ids.1")

    # Replacing the bad image lets it out.
    edited = await edit_content(
        store, post.id, {"image_upload_ids": [good]}, policy=policy, now=NOW
    )
    assert await contents_showing(store, junk) == []
    assert (await publish(store, edited.id, policy=policy, now=NOW)).status is Status.PUBLISHED


async def test_a_content_names_only_complete_uploads_of_its_own_account(
    store: SQLiteStore,
    account: Account,
    other_account: Account,
    blobs: BlobStore,
    policy: ReviewPolicy,
) -> None:
    mine = await make_upload(store, blobs, account)
    theirs = await make_upload(store, blobs, other_account)
    body = {"kind": "post", "text": "t", "image_upload_ids": [mine, theirs]}
    with pytest.raises(NotFound) as missing:
        await create_content(store, account.id, body, now=NOW)
    assert missing.value.field == "image_upload_ids.1"
    assert await store.collection("contents").count({}) == 0  # nothing half-made

    uploads = Uploads(store, blobs, max_size=1024)
    partial = await uploads.create(
        account_id=account.id, created_by="stf_test", length=10, metadata={}, now=NOW
    )
    article = {
        "kind": "article",
        "title": "t",
        "blocks": [
            {"type": "paragraph", "text": "p"},
            {"type": "image", "upload_id": partial.id},
        ],
    }
    with pytest.raises(Conflict) as incomplete:
        await create_content(store, account.id, article, now=NOW)
    assert (incomplete.value.code, incomplete.value.field) == (
        "upload_incomplete",
        "blocks.1.upload_id",
    )

    post = await create_content(
        store, account.id, {"kind": "post", "image_upload_ids": [mine]}, now=NOW
    )
    with pytest.raises(NotFound) as edited:
        await edit_content(
            store, post.id, {"image_upload_ids": [mine, theirs]}, policy=policy, now=NOW
        )
    assert edited.value.field == "image_upload_ids.1"


async def test_an_image_a_content_shows_cannot_be_terminated(
    store: SQLiteStore, account: Account, blobs: BlobStore
) -> None:
    image = await make_upload(store, blobs, account)
    post = await create_content(
        store, account.id, {"kind": "post", "image_upload_ids": [image]}, now=NOW
    )
    uploads = Uploads(store, blobs, max_size=1024)
    with pytest.raises(Conflict) as in_use:
        await uploads.terminate(image, account_id=account.id, now=NOW)
    assert in_use.value.code == "upload_in_use"
    await delete_content(store, post.id, now=NOW)
    await uploads.terminate(image, account_id=account.id, now=NOW)


async def test_an_image_job_that_died_on_its_last_attempt_fails_the_image(
    store: SQLiteStore,
    account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
    policy: ReviewPolicy,
    png: bytes,
) -> None:
    image = await make_upload(store, blobs, account, png)
    post = await create_content(
        store, account.id, {"kind": "post", "image_upload_ids": [image]}, now=NOW
    )
    await pipeline.ensure(queue, [post])
    await publish(store, post.id, policy=policy, now=NOW)
    claimed = await queue.claim([RESIZE])
    assert claimed is not None
    await queue.fail(claimed, "worker_lost", "the worker stopped answering", retry=False)
    assert await pipeline.settle_failed() == 1
    assert (await images_of(store, [image]))[image].state is ImageState.FAILED
    assert (await get_content(store, post.id)).status is Status.DRAFT
    assert await pipeline.settle_failed() == 0
    assert not blobs.path(image_key(image, claimed)).exists()


async def test_another_accounts_upload_is_never_resized_into_this_accounts_image(
    store: SQLiteStore,
    account: Account,
    other_account: Account,
    blobs: BlobStore,
    queue: JobQueue,
    pipeline: ImagePipeline,
    png: bytes,
) -> None:
    theirs = await uploaded(store, blobs, other_account, png)
    # A record claiming the upload for the wrong account (it cannot be made through the
    # API, which checks ownership first): the job still refuses it.
    await store.collection(IMAGES).insert(
        {"id": theirs.id, "account_id": account.id, "state": "processing"}
    )
    await queue.enqueue(RESIZE, {"upload_id": theirs.id})
    state, result = await run_next(queue, pipeline)
    assert state == "failed" and result["code"] == "upload_missing"


def test_image_refs_follow_the_order_of_appearance() -> None:
    doc = {
        "image_upload_ids": ["upl_a0000000", "upl_b0000000"],
        "blocks": [
            {"type": "paragraph", "text": "x"},
            {"type": "image", "upload_id": "upl_c0000000"},
            {"type": "video", "upload_id": "upl_d0000000"},
        ],
    }
    assert image_refs(doc) == [
        ImageRef("image_upload_ids.0", "upl_a0000000"),
        ImageRef("image_upload_ids.1", "upl_b0000000"),
        ImageRef("blocks.1.upload_id", "upl_c0000000"),
    ]


async def test_the_content_images_rows_follow_edits(
    store: SQLiteStore, account: Account, blobs: BlobStore, policy: ReviewPolicy
) -> None:
    a = await make_upload(store, blobs, account)
    b = await make_upload(store, blobs, account)
    post = await create_content(
        store, account.id, {"kind": "post", "image_upload_ids": [a, a]}, now=NOW
    )
    rows = store.collection(CONTENT_IMAGES)
    assert [r["upload_id"] for r in await rows.find({"content_id": post.id})] == [a]
    await edit_content(store, post.id, {"image_upload_ids": [b]}, policy=policy, now=NOW)
    assert [r["upload_id"] for r in await rows.find({"content_id": post.id})] == [b]
