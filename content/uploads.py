"""Uploads: resumable file uploads (the tus 1.0 protocol of DESIGN §8), and the references
from content to them.

An upload is a record in ``uploads`` plus one blob, ``uploads/<id>``, written in place: the
record's ``offset`` is the truth of how many bytes are kept, so bytes past it in the file
(a crash between writing and recording) are cut off by the next write. A chunk is kept whole
or not at all: it is streamed to disk under a per-upload lock, checked (size, optional
checksum), made durable, and only then is the offset moved, by a compare-and-set on the old
offset. Incomplete uploads expire after ``TTL``; :func:`purge_expired` frees them.

Content holds only the upload's id, an opaque URL-safe token (the last path segment of the tus
``Location``). Its shape is checked here; that the upload exists and is the right kind of file
is the media side's to say, so the caller checks it where both are wired.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from accounts.errors import Conflict, DomainError, Invalid, NotFound
from media.blobs import BlobBusy, BlobStore
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # a ULID, a UUID or token_urlsafe all fit
MAX_URL = 2048


def check_upload_id(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or not UPLOAD_ID.fullmatch(value):
        raise Invalid("an upload id is the id POST /api/v1/uploads answered", field=field)
    return value


def check_http_url(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise Invalid(f"an http(s) URL of at most {MAX_URL} characters", field=field)
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise Invalid("a URL has no spaces or control characters", field=field)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid("an http(s) URL with a host", field=field)
    return value


def check_image(value: Any, *, field: str) -> str:
    """An image is an http(s) URL or the id of an upload."""
    if isinstance(value, str) and "://" in value:
        return check_http_url(value, field=field)
    if isinstance(value, str) and UPLOAD_ID.fullmatch(value):
        return value
    raise Invalid("an image is an http(s) URL or an upload id", field=field)


UPLOADS = "uploads"
INDEXES = [
    Index(UPLOADS, ("account_id", "state", "expires_at")),
    Index(UPLOADS, ("state", "expires_at")),
]
TTL = timedelta(hours=24)
MAX_INCOMPLETE = 10  # per account: an abandoned upload holds its space until it expires
# Chunk checksums guard against corruption in transit, not against an attacker, so the
# fast legacy digests that tus clients send (tus-js-client and tuspy: sha1) are accepted.
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
CHECKSUM = "Upload-Checksum"
PURGE_BATCH = 200


class State(StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    EXPIRED = "expired"
    DELETED = "deleted"


@dataclass(frozen=True)
class Upload:
    id: str
    account_id: str
    created_by: str
    length: int
    offset: int
    metadata: dict[str, str]
    state: State
    blob: str
    created_at: str
    expires_at: str
    verified_bytes: int  # bytes whose chunk checksum the client sent and the server checked
    sha256: str | None  # of the whole file, once complete
    completed_at: str | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Upload:
        plain = {f: doc.get(f) for f in cls.__dataclass_fields__}
        # Metadata is stored as pairs: its keys are the client's, and a document store's
        # keys cannot hold every string (MongoDB refuses '.' and a leading '$').
        return cls(**plain | {"metadata": dict(doc["metadata"]), "state": State(doc["state"])})

    def expired(self, now: datetime) -> bool:
        return self.state is State.EXPIRED or (
            self.state is State.RECEIVING and parse_rfc3339(self.expires_at) <= now
        )


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


class UploadGone(DomainError):
    status = 410
    code = "upload_gone"
    title = "Gone"


class TooLarge(DomainError):
    status = 413
    code = "too_large"
    title = "Request body too large"


class ChecksumMismatch(DomainError):
    status = 460  # tus checksum extension: "460 Checksum Mismatch"
    code = "checksum_mismatch"
    title = "Checksum mismatch"


class QuotaExceeded(DomainError):
    status = 429
    code = "upload_quota_exceeded"
    title = "Too many incomplete uploads"


class UploadLocked(DomainError):
    status = 423  # as tusd answers a PATCH to an upload another request is writing
    code = "upload_locked"
    title = "Locked"


class InsufficientStorage(DomainError):
    status = 507  # RFC 4918 §11.5: the server cannot store what the request needs
    code = "insufficient_storage"
    title = "Insufficient storage"


class Interrupted(Exception):
    """Raised by a chunk stream whose sender went away before the end of the body."""


@dataclass
class _Slot:
    lock: asyncio.Lock
    users: int = 0


class Uploads:
    """The upload service: one per process, as it holds the per-upload write locks."""

    def __init__(
        self,
        store: DocumentStore,
        blobs: BlobStore,
        *,
        max_size: int,
        min_free: int = 0,
        max_incomplete: int = MAX_INCOMPLETE,
        ttl: timedelta = TTL,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.max_size = max_size
        self.min_free = min_free
        self.max_incomplete = max_incomplete
        self.ttl = ttl
        self._slots: dict[str, _Slot] = {}

    async def create(
        self,
        *,
        account_id: str,
        created_by: str,
        length: int,
        metadata: dict[str, str],
        now: datetime,
    ) -> Upload:
        """Start an upload of ``length`` bytes; an empty one is complete at once."""
        if length < 0:
            raise Invalid("Upload-Length is a whole number of bytes", field="Upload-Length")
        if length > self.max_size:
            raise TooLarge(
                f"an upload has at most {self.max_size} bytes (Tus-Max-Size); this is {length}",
                field="Upload-Length",
            )
        if self.min_free and length:
            free = await asyncio.to_thread(self.blobs.free_bytes)
            if free - length < self.min_free:
                raise InsufficientStorage(
                    f"the server has {free} bytes free and keeps {self.min_free} in reserve, "
                    f"too little for {length} more; try again later (the operator frees disk "
                    "space or lowers LIFEACCOUNT_MIN_FREE_BYTES)",
                    field="Upload-Length",
                )
        upload_id = new_id("upl")
        blob = f"uploads/{upload_id}"
        doc: dict[str, Any] = {
            "id": upload_id,
            "account_id": account_id,
            "created_by": created_by,
            "length": length,
            "offset": 0,
            "metadata": [[k, v] for k, v in metadata.items()],
            "state": State.RECEIVING.value,
            "blob": blob,
            "verified_bytes": 0,
            "created_at": rfc3339(now),
            "expires_at": rfc3339(now + self.ttl),
        }
        if length == 0:
            empty = hashlib.sha256(b"").hexdigest()
            doc |= {"state": State.COMPLETE.value, "sha256": empty, "completed_at": rfc3339(now)}
        uploads = self.store.collection(UPLOADS)
        live = {"account_id": account_id, "state": "receiving", "expires_at": {"$gt": rfc3339(now)}}
        await self.blobs.create(blob)
        try:
            # Counted and inserted in one transaction, so that two creations at once cannot
            # both take the last place.
            async with self.store.transaction():
                if length and await uploads.count(live) >= self.max_incomplete:
                    raise QuotaExceeded(
                        f"an account has at most {self.max_incomplete} incomplete uploads; "
                        "finish or DELETE one first"
                    )
                await uploads.insert(doc)
        except BaseException:
            await self.blobs.delete(blob)
            raise
        return Upload.from_doc(doc)

    async def find(self, upload_id: str) -> Upload | None:
        """The upload, whatever its account or state (the caller checks who may see it)."""
        doc = await self.store.collection(UPLOADS).get(upload_id)
        return Upload.from_doc(doc) if doc else None

    async def get(self, upload_id: str, *, account_id: str, now: datetime) -> Upload:
        """The account's upload; ``NotFound`` for another account's, ``UploadGone`` once it
        has expired or been terminated."""
        upload = await self.find(upload_id)
        if upload is None or upload.account_id != account_id:
            raise NotFound("upload", upload_id)
        if upload.state is State.DELETED:
            raise UploadGone(f"upload {upload_id} was terminated; start a new one")
        if upload.expired(now):
            raise UploadGone(f"upload {upload_id} expired at {upload.expires_at}; start again")
        return upload

    async def append(
        self,
        upload_id: str,
        *,
        account_id: str,
        offset: int,
        chunks: AsyncIterable[bytes],
        checksum: Checksum | None = None,
        declared: int | None = None,
        now: datetime,
    ) -> Upload:
        """Write the chunk in ``chunks`` at ``offset`` and return the upload after it.

        Refused, keeping nothing: a wrong offset (409), bytes past the length (413), a
        checksum mismatch (460). When the stream raises :class:`Interrupted` the bytes that
        arrived are kept (tus asks servers to keep what they can) unless a checksum was sent,
        which they cannot match; then ``Interrupted`` is raised again.
        """
        upload = await self.get(upload_id, account_id=account_id, now=now)
        _check_offset(upload, offset)  # cheap refusals first: no waiting, no body read
        remaining = upload.length - offset
        if declared is not None and declared > remaining:
            raise _past_end(upload, offset)
        async with self._locked(upload_id):
            upload = await self.get(upload_id, account_id=account_id, now=now)
            _check_offset(upload, offset)
            return await self._write(upload, chunks, checksum, now)

    async def _write(
        self,
        upload: Upload,
        chunks: AsyncIterable[bytes],
        checksum: Checksum | None,
        now: datetime,
    ) -> Upload:
        remaining = upload.length - upload.offset
        hasher = hashlib.new(checksum.algorithm) if checksum else None
        interrupted = False
        try:
            async with self.blobs.appender(upload.blob, at=upload.offset) as out:
                try:
                    async for chunk in chunks:
                        if out.written + len(chunk) > remaining:
                            raise _past_end(upload, upload.offset)
                        if hasher is not None:
                            hasher.update(chunk)
                        await out.write(chunk)
                except Interrupted:
                    if hasher is not None:
                        raise  # a partial chunk cannot match its checksum: keep nothing
                    interrupted = True
                if checksum is not None and hasher is not None:
                    if hasher.digest() != checksum.digest:
                        raise ChecksumMismatch(
                            f"the chunk's {checksum.algorithm} is not the one in "
                            f"{CHECKSUM}; nothing was kept, send it again",
                            field=CHECKSUM,
                        )
                if out.written == 0:
                    end = upload.offset
                else:
                    end = await out.commit()
        except FileNotFoundError:
            raise UploadGone(f"upload {upload.id} was terminated meanwhile") from None
        except BlobBusy:
            raise UploadLocked(
                f"another request is writing upload {upload.id}; send HEAD for its offset "
                "and retry from there",
                field="upload_id",
            ) from None
        if end != upload.offset:
            upload = await self._advance(upload, end, verified=checksum is not None, now=now)
        if interrupted:
            raise Interrupted()
        return upload

    async def _advance(self, upload: Upload, end: int, *, verified: bool, now: datetime) -> Upload:
        changes: dict[str, Any] = {"offset": end, "updated_at": rfc3339(now)}
        if verified:
            changes["verified_bytes"] = upload.verified_bytes + end - upload.offset
        if end == upload.length:
            changes |= {
                "state": State.COMPLETE.value,
                "sha256": await self.blobs.digest(upload.blob),
                "completed_at": rfc3339(now),
            }
        # Compare-and-set on the offset the chunk was written at: whatever else happened
        # meanwhile (termination, expiry, another process), the record never moves twice.
        doc = await self.store.collection(UPLOADS).update_one(
            {"id": upload.id, "offset": upload.offset, "state": State.RECEIVING.value},
            {"$set": changes},
        )
        if doc is None:
            raise UploadGone(f"upload {upload.id} was terminated or expired meanwhile")
        return Upload.from_doc(doc)

    async def terminate(self, upload_id: str, *, account_id: str, now: datetime) -> None:
        """Delete the upload and its bytes (tus termination); later calls answer 410."""
        upload = await self.get(upload_id, account_id=account_id, now=now)
        # A finished upload that a content uses is its video's source (a retried transcode
        # reads it again): deleting it would break that content. ("contents" is the
        # collection of content.contents, named here because that module imports this one.)
        contents = self.store.collection("contents")
        in_use = await contents.find_one({"upload_id": upload.id, "status": {"$ne": "deleted"}})
        # ...and so is an image's (its rows in "content_images", of content.images).
        for row in await self.store.collection("content_images").find({"upload_id": upload.id}):
            if in_use is None:
                in_use = await contents.find_one(
                    {"id": row["content_id"], "status": {"$ne": "deleted"}}
                )
        if in_use is not None:
            raise Conflict(
                f"content {in_use['id']} uses this upload; delete that content first",
                code="upload_in_use",
                field="upload_id",
            )
        # No lock: a chunk being written now fails its compare-and-set and keeps nothing.
        doc = await self.store.collection(UPLOADS).update_one(
            {"id": upload.id, "state": {"$in": [State.RECEIVING.value, State.COMPLETE.value]}},
            {"$set": {"state": State.DELETED.value, "deleted_at": rfc3339(now)}},
        )
        if doc is None:
            raise UploadGone(f"upload {upload_id} is already gone")
        await self.blobs.delete(upload.blob)

    @asynccontextmanager
    async def _locked(self, upload_id: str) -> AsyncIterator[None]:
        # One lock per upload being written, dropped when its last user leaves, so the
        # table holds only uploads in flight.
        slot = self._slots.setdefault(upload_id, _Slot(asyncio.Lock()))
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[upload_id]


def _check_offset(upload: Upload, offset: int) -> None:
    if offset != upload.offset:
        raise Conflict(
            f"the upload is at byte {upload.offset}, not {offset}: HEAD it and resume there",
            code="offset_mismatch",
            field="Upload-Offset",
        )


def _past_end(upload: Upload, offset: int) -> TooLarge:
    return TooLarge(
        f"the upload has {upload.length - offset} bytes left after byte {offset}; "
        "the body is longer",
        field="body",
    )


async def purge_expired(store: DocumentStore, blobs: BlobStore, *, now: datetime) -> int:
    """Mark incomplete uploads past their expiry as expired and delete their bytes; returns
    how many (housekeeping). Complete uploads stay: content refers to them."""
    uploads = store.collection(UPLOADS)
    purged = 0
    while True:
        due = await uploads.find(
            {"state": State.RECEIVING.value, "expires_at": {"$lte": rfc3339(now)}},
            limit=PURGE_BATCH,
        )
        for doc in due:
            # Compare-and-set on the state: a chunk completing the upload right now either
            # wins (the upload stays) or loses (its sender gets 410), never both.
            marked = await uploads.update_one(
                {"id": doc["id"], "state": State.RECEIVING.value},
                {"$set": {"state": State.EXPIRED.value, "expired_at": rfc3339(now)}},
            )
            if marked is not None:
                await blobs.delete(doc["blob"])
                purged += 1
        if len(due) < PURGE_BATCH:
            return purged


async def usable_upload(store: DocumentStore, upload_id: str, *, account_id: str) -> Upload:
    """An upload a content of ``account_id`` may use: the account's own, and complete."""
    doc = await store.collection(UPLOADS).get(upload_id)
    if doc is None or doc.get("account_id") != account_id:
        raise NotFound("upload", upload_id, field="upload_id")
    if doc.get("state") != State.COMPLETE.value:
        raise Conflict(
            f"upload {upload_id} is not complete; finish it (tus PATCH) first",
            code="upload_incomplete",
            field="upload_id",
        )
    return Upload.from_doc(doc)


async def adopt_file(
    store: DocumentStore,
    blobs: BlobStore,
    source_key: str,
    *,
    account_id: str,
    created_by: str,
    filename: str,
    now: datetime,
) -> Upload:
    """Make a finished blob of the platform's own (a live's recording) a complete upload of
    ``account_id``, as if it had been sent through tus, so the content pipeline takes it like
    any upload: probed in a child process, transcoded, published."""
    upload_id = new_id("upl")
    blob = f"uploads/{upload_id}"
    await blobs.move(source_key, blob)
    size = await asyncio.to_thread(lambda: blobs.path(blob).stat().st_size)
    doc: dict[str, Any] = {
        "id": upload_id,
        "account_id": account_id,
        "created_by": created_by,
        "length": size,
        "offset": size,
        "metadata": [["filename", filename]],
        "state": State.COMPLETE.value,
        "blob": blob,
        "verified_bytes": 0,
        "sha256": await blobs.digest(blob),
        "created_at": rfc3339(now),
        "completed_at": rfc3339(now),
        "expires_at": rfc3339(now + TTL),
    }
    try:
        await store.collection(UPLOADS).insert(doc)
    except BaseException:
        await blobs.move(blob, source_key)  # leave the recording where it was found
        raise
    return Upload.from_doc(doc)
