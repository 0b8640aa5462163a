"""The upload domain on the embedded store and real files: expiry and its purge, the quota
under racing creations, the per-upload lock, and chunks that are kept whole or not at all."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from accounts.errors import Conflict, NotFound
from content.uploads import (
    UPLOADS,
    Checksum,
    ChecksumMismatch,
    Interrupted,
    QuotaExceeded,
    State,
    TooLarge,
    Upload,
    UploadGone,
    Uploads,
    purge_expired,
)
from media.blobs import BlobStore
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW

ACCOUNT = "acc_1"


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "media", "/media")


@pytest.fixture
def uploads(store: SQLiteStore, blobs: BlobStore) -> Uploads:
    return Uploads(store, blobs, max_size=1 << 20, max_incomplete=3)


async def chunks(*parts: bytes, then: BaseException | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if then is not None:
        raise then


async def start(uploads: Uploads, length: int = 100, **extra: str) -> Upload:
    return await uploads.create(
        account_id=extra.get("account_id", ACCOUNT),
        created_by="key_1",
        length=length,
        metadata={"filename": "a.mp4", "weird.key$": "ok"},
        now=NOW,
    )


async def append(uploads: Uploads, upload: Upload, offset: int, *parts: bytes) -> Upload:
    return await uploads.append(
        upload.id, account_id=ACCOUNT, offset=offset, chunks=chunks(*parts), now=NOW
    )


async def test_an_upload_completes_with_its_sha256(uploads: Uploads, blobs: BlobStore) -> None:
    upload = await start(uploads, 10)
    assert upload.metadata == {"filename": "a.mp4", "weird.key$": "ok"}
    assert upload.state is State.RECEIVING and upload.expires_at == "2026-11-27T08:00:00.000Z"
    upload = await append(uploads, upload, 0, b"01234", b"56")
    assert (upload.offset, upload.state, upload.sha256) == (7, State.RECEIVING, None)
    upload = await append(uploads, upload, 7, b"789")
    assert upload.state is State.COMPLETE and upload.completed_at is not None
    assert upload.sha256 == hashlib.sha256(b"0123456789").hexdigest()
    assert await blobs.digest(upload.blob) == upload.sha256
    assert uploads._slots == {}  # no lock outlives its writers


async def test_refused_chunks_keep_nothing(uploads: Uploads, blobs: BlobStore) -> None:
    upload = await append(uploads, await start(uploads, 10), 0, b"abc")
    with pytest.raises(Conflict):
        await append(uploads, upload, 0, b"x")
    with pytest.raises(TooLarge):
        await append(uploads, upload, 3, b"defg", b"hijk")  # only 7 bytes are left
    with pytest.raises(TooLarge):
        await uploads.append(
            upload.id, account_id=ACCOUNT, offset=3, chunks=chunks(), declared=8, now=NOW
        )
    bad = Checksum("sha256", hashlib.sha256(b"other").digest())
    with pytest.raises(ChecksumMismatch):
        await uploads.append(
            upload.id, account_id=ACCOUNT, offset=3, chunks=chunks(b"def"), checksum=bad, now=NOW
        )
    with pytest.raises(Interrupted):  # cut short with a checksum: it cannot match
        good = Checksum("md5", hashlib.md5(b"defg").digest())
        await uploads.append(
            upload.id,
            account_id=ACCOUNT,
            offset=3,
            chunks=chunks(b"de", then=Interrupted()),
            checksum=good,
            now=NOW,
        )
    assert blobs.path(upload.blob).read_bytes() == b"abc"
    with pytest.raises(Interrupted):  # cut short without one: what arrived is kept
        await uploads.append(
            upload.id,
            account_id=ACCOUNT,
            offset=3,
            chunks=chunks(b"de", then=Interrupted()),
            now=NOW,
        )
    kept = await uploads.get(upload.id, account_id=ACCOUNT, now=NOW)
    assert kept.offset == 5 and blobs.path(upload.blob).read_bytes() == b"abcde"
    assert kept.verified_bytes == 0


async def test_unacknowledged_bytes_in_the_file_are_overwritten(
    uploads: Uploads, blobs: BlobStore
) -> None:
    upload = await append(uploads, await start(uploads, 6), 0, b"ab")
    # A crash after writing but before moving the offset leaves bytes nobody acknowledged.
    with blobs.path(upload.blob).open("ab") as f:
        f.write(b"ZZZZ")
    upload = await append(uploads, upload, 2, b"cdef")
    assert blobs.path(upload.blob).read_bytes() == b"abcdef"
    assert upload.sha256 == hashlib.sha256(b"abcdef").hexdigest()


async def test_another_account_sees_no_upload(uploads: Uploads) -> None:
    upload = await start(uploads)
    with pytest.raises(NotFound):
        await uploads.get(upload.id, account_id="acc_2", now=NOW)
    with pytest.raises(NotFound):
        await uploads.terminate(upload.id, account_id="acc_2", now=NOW)
    assert (await uploads.get(upload.id, account_id=ACCOUNT, now=NOW)).offset == 0


async def test_expiry_and_the_purge(uploads: Uploads, store: SQLiteStore, blobs: BlobStore) -> None:
    stale = await append(uploads, await start(uploads), 0, b"half")
    done = await append(uploads, await start(uploads, 2), 0, b"ok")
    empty = await start(uploads, 0)
    later = NOW + timedelta(hours=24)
    with pytest.raises(UploadGone):  # gone by the clock even before the purge runs
        await uploads.get(stale.id, account_id=ACCOUNT, now=later)
    assert await purge_expired(store, blobs, now=later - timedelta(seconds=1)) == 0
    assert await purge_expired(store, blobs, now=later) == 1
    assert await purge_expired(store, blobs, now=later) == 0
    assert (await store.collection(UPLOADS).get(stale.id) or {})["state"] == "expired"
    assert not blobs.path(stale.blob).exists()
    with pytest.raises(UploadGone):
        await uploads.get(stale.id, account_id=ACCOUNT, now=NOW)
    for kept in (done, empty):  # complete uploads never expire: content refers to them
        assert (await uploads.get(kept.id, account_id=ACCOUNT, now=later)).state is State.COMPLETE
        assert blobs.path(kept.blob).exists()


async def test_the_purge_works_through_more_than_one_batch(
    store: SQLiteStore, blobs: BlobStore
) -> None:
    many = Uploads(store, blobs, max_size=10, max_incomplete=1000)
    made = [await start(many, 5) for _ in range(205)]
    assert await purge_expired(store, blobs, now=NOW + timedelta(days=2)) == len(made)
    assert not list((blobs.root / "uploads").iterdir())


async def test_the_quota_holds_under_racing_creations(
    threaded_store: SQLiteStore, blobs: BlobStore
) -> None:
    racing = Uploads(threaded_store, blobs, max_size=100, max_incomplete=3)
    results = await asyncio.gather(*(start(racing, 10) for _ in range(8)), return_exceptions=True)
    made = [r for r in results if isinstance(r, Upload)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert (len(made), len(refused)) == (3, 5), results
    # A refused creation leaves no file behind.
    assert sorted(p.name for p in (blobs.root / "uploads").iterdir()) == sorted(m.id for m in made)
    # Another account has its own allowance; an expired upload frees a place.
    assert isinstance(await start(racing, 10, account_id="acc_2"), Upload)
    await racing.create(
        account_id=ACCOUNT, created_by="k", length=1, metadata={}, now=NOW + timedelta(days=1)
    )


async def test_termination_wins_over_a_chunk_in_flight(uploads: Uploads, blobs: BlobStore) -> None:
    upload = await start(uploads, 10)
    terminated = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"abc"
        await uploads.terminate(upload.id, account_id=ACCOUNT, now=NOW)
        terminated.set()
        yield b"def"

    with pytest.raises(UploadGone):
        await uploads.append(upload.id, account_id=ACCOUNT, offset=0, chunks=slow(), now=NOW)
    assert terminated.is_set() and not blobs.path(upload.blob).exists()
    with pytest.raises(UploadGone):
        await uploads.get(upload.id, account_id=ACCOUNT, now=NOW)
    with pytest.raises(UploadGone):
        await uploads.terminate(upload.id, account_id=ACCOUNT, now=NOW)
