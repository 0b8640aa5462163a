"""Resumable uploads over tus 1.0 (DESIGN §8): ``/api/v1/uploads``.

Core protocol plus the creation, creation-with-upload, termination, checksum and expiration
extensions. tus speaks in headers and raw octet-stream bodies, which the JSON endpoint table
cannot describe, so these are plain routes; they reuse its caller rules (``authorize``: who
may call, the CSRF token for staff), and every refusal is RFC 9457 problem+json that names the
header or field at fault. Every answer carries ``Tus-Resumable``.

Callers: a staff session of any role but moderator (the account named in the metadata's
``account_id``), or an API key (its own account). An upload is only ever visible to its own
account: anyone else gets 404, as for an id that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

import orjson
from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from accounts.errors import DomainError, NotFound
from accounts.staff import Role, role_of
from content.uploads import (
    CHECKSUM_ALGORITHMS,
    Checksum,
    Interrupted,
    State,
    Upload,
    Uploads,
    purge_expired,
)
from media.blobs import BlobStore
from store.clock import parse_rfc3339
from webapp import tus
from webapp.api import STAFF_OR_KEY, Call, Endpoint, authorize, base_url
from webapp.api_uploads_doc import COLLECTION, ITEM
from webapp.api_uploads_doc import openapi_paths as openapi_paths
from webapp.auth import Caller, Kind, identify
from webapp.context import Services
from webapp.problems import Problem, bad_request, problem_response
from webapp.settings import Settings

log = logging.getLogger("lifeaccount.uploads")
MEDIA_BASE_URL = "/media"
WRITER_ROLES = frozenset({Role.OWNER, Role.EDITOR, Role.HOST})
ACCOUNT_KEY = "account_id"  # the metadata key in which staff name the account
ACCOUNT_FIELD = f"{tus.UPLOAD_METADATA}.{ACCOUNT_KEY}"


async def _not_a_handler(call: Call) -> BaseModel:
    raise AssertionError("the tus routes serve themselves")


# Only the caller rules of this endpoint are used (by ``authorize``): staff or an API key;
# staff need one of the writer roles on the account and, on unsafe methods, the CSRF token.
RULES = Endpoint(
    "POST",
    COLLECTION,
    _not_a_handler,
    "tus uploads",
    "uploads",
    allow=STAFF_OR_KEY,
    roles=WRITER_ROLES,
)


def blob_store(settings: Settings) -> BlobStore:
    """Where blobs live: ``<data_dir>/media``, served under ``MEDIA_BASE_URL``."""
    return BlobStore(settings.data_dir / "media", MEDIA_BASE_URL)


def open_uploads(services: Services) -> Uploads:
    return Uploads(
        services.store,
        blob_store(services.settings),
        max_size=services.settings.max_upload_bytes,
        min_free=services.settings.min_free_bytes,
    )


async def purge(services: Services) -> int:
    """Housekeeping: expire incomplete uploads past their 24 h and free their bytes."""
    return await purge_expired(services.store, blob_store(services.settings), now=services.now())


Work = Callable[[], Awaitable[Response]]


class _UploadRoutes:
    """The route handlers, sharing one :class:`Uploads` (and so its write locks) per app."""

    def __init__(self) -> None:
        self._uploads: Uploads | None = None

    def uploads(self, services: Services) -> Uploads:
        # Bound on first use, from the services the app's lifespan opened; building it is
        # plain object construction (no I/O, no await), so two first requests cannot race.
        if self._uploads is None:
            self._uploads = open_uploads(services)
        return self._uploads

    async def collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _discovery(request.app.state.services)
        return await _answer(request, lambda: self._create(request))

    async def item(self, request: Request) -> Response:
        method = request.method
        if method == "POST":
            # tus core: X-HTTP-Method-Override stands in for PATCH and DELETE where a client
            # or proxy can only send POST.
            method = request.headers.get(tus.METHOD_OVERRIDE, "").strip().upper()
        work: dict[str, Work] = {
            "HEAD": lambda: self._head(request),
            "PATCH": lambda: self._patch(request),
            "DELETE": lambda: self._delete(request),
        }
        if method not in work or (request.method == "POST" and method == "HEAD"):
            return await _answer(request, lambda: _no_method(request))
        return await _answer(request, work[method])

    async def _caller(self, request: Request) -> tuple[Services, Caller]:
        services: Services = request.app.state.services
        tus.check_version(request.headers.get(tus.RESUMABLE))
        try:
            caller = await identify(request, services)
        except DomainError as exc:
            problem = Problem.from_domain(exc)
            problem.field = problem.field or "Authorization"
            raise problem from None
        return services, await authorize(RULES, request, services, caller, {})

    async def _create(self, request: Request) -> Response:
        services, caller = await self._caller(request)
        length = tus.parse_count(request.headers.get(tus.UPLOAD_LENGTH), tus.UPLOAD_LENGTH)
        if length is None:
            raise bad_request(
                "upload_length_required",
                "send Upload-Length, the size of the whole file in bytes (deferred lengths "
                "are not supported)",
                field=tus.UPLOAD_LENGTH,
            )
        metadata = tus.parse_metadata(request.headers.get(tus.UPLOAD_METADATA))
        account_id = await _creation_account(request, services, caller, metadata)
        declared = _declared_length(request)
        has_body = bool(declared) or "chunked" in request.headers.get("transfer-encoding", "")
        checksum = tus.parse_checksum(request.headers.get(tus.UPLOAD_CHECKSUM))
        if has_body and not tus.is_offset_stream(request.headers.get("content-type")):
            raise _not_offset_stream()
        if declared is not None and declared > length:
            raise bad_request(
                "too_large",
                f"the body has {declared} bytes, more than Upload-Length {length}",
                field="body",
                status=413,
            )
        uploads = self.uploads(services)
        upload = await uploads.create(
            account_id=account_id,
            created_by=caller.id,
            length=length,
            metadata=metadata,
            now=services.now(),
        )
        if has_body:
            try:
                upload = await _append(uploads, request, upload, 0, checksum, declared, services)
            except BaseException:
                # creation-with-upload: the client learns the upload's URL only from this
                # answer, so an upload whose first chunk failed is of no use: remove it whole.
                await uploads.terminate(upload.id, account_id=account_id, now=services.now())
                raise
            await _completed(services, upload)
        location = f"{base_url(request, services.settings.base_url)}{COLLECTION}/{upload.id}"
        body = {
            "id": upload.id,
            "url": location,
            "length": upload.length,
            "offset": upload.offset,
            "state": upload.state.value,
            "expires_at": upload.expires_at,
        }
        headers = {"Location": location, **_progress_headers(upload)}
        return Response(orjson.dumps(body), 201, headers, media_type="application/json")

    async def _owned(self, request: Request) -> tuple[Services, Upload]:
        """The upload at this URL, if the caller's account owns it and the caller may write."""
        services, caller = await self._caller(request)
        upload_id = request.path_params["upload_id"]
        upload = await self.uploads(services).find(upload_id)
        if upload is None or (
            caller.kind is Kind.API_KEY and caller.account_id != upload.account_id
        ):
            raise NotFound("upload", upload_id, field="upload_id")
        if caller.kind is Kind.STAFF:
            role = await role_of(services.store, upload.account_id, caller.id)
            if role is None:
                raise NotFound("upload", upload_id, field="upload_id")
            if role not in WRITER_ROLES:
                raise Problem(
                    403,
                    "role_required",
                    "Not allowed",
                    f"uploads need the host, editor or owner role; you are {role.value}",
                )
        return services, upload

    async def _head(self, request: Request) -> Response:
        services, found = await self._owned(request)
        upload = await self.uploads(services).get(
            found.id, account_id=found.account_id, now=services.now()
        )
        headers = {tus.UPLOAD_LENGTH: str(upload.length), **_progress_headers(upload)}
        if upload.metadata:
            headers[tus.UPLOAD_METADATA] = tus.encode_metadata(upload.metadata)
        # tus core: the offset must never come from a cache.
        headers["Cache-Control"] = "no-store"
        return Response(status_code=200, headers=headers)

    async def _patch(self, request: Request) -> Response:
        services, upload = await self._owned(request)
        if not tus.is_offset_stream(request.headers.get("content-type")):
            raise _not_offset_stream()
        offset = tus.parse_count(request.headers.get(tus.UPLOAD_OFFSET), tus.UPLOAD_OFFSET)
        if offset is None:
            raise bad_request(
                "upload_offset_required",
                "send Upload-Offset, the byte this chunk starts at (HEAD tells the current one)",
                field=tus.UPLOAD_OFFSET,
            )
        checksum = tus.parse_checksum(request.headers.get(tus.UPLOAD_CHECKSUM))
        declared = _declared_length(request)
        uploads = self.uploads(services)
        upload = await _append(uploads, request, upload, offset, checksum, declared, services)
        await _completed(services, upload)
        return Response(status_code=204, headers=_progress_headers(upload))

    async def _delete(self, request: Request) -> Response:
        services, upload = await self._owned(request)
        await self.uploads(services).terminate(
            upload.id, account_id=upload.account_id, now=services.now()
        )
        return Response(status_code=204)


def routes() -> list[Route]:
    """The tus routes; add them to the app's route list."""
    handlers = _UploadRoutes()
    return [
        Route(COLLECTION, handlers.collection, methods=["OPTIONS", "POST"], name="uploads"),
        Route(ITEM, handlers.item, methods=["HEAD", "PATCH", "DELETE", "POST"], name="upload"),
    ]


async def _answer(request: Request, work: Work) -> Response:
    try:
        response = await work()
    except DomainError as exc:
        response = problem_response(Problem.from_domain(exc), request.url.path)
    except Problem as exc:
        response = problem_response(exc, request.url.path)
    except Interrupted:
        # The client went away mid-body; what arrived was kept (or not) by the domain, and
        # nobody is left to read an answer.
        response = Response(status_code=400)
    response.headers[tus.RESUMABLE] = tus.VERSION
    return response


def _discovery(services: Services) -> Response:
    headers = {
        tus.RESUMABLE: tus.VERSION,
        tus.TUS_VERSION: tus.VERSION,
        tus.TUS_EXTENSION: ",".join(tus.EXTENSIONS),
        tus.TUS_MAX_SIZE: str(services.settings.max_upload_bytes),
        tus.TUS_CHECKSUM_ALGORITHM: ",".join(CHECKSUM_ALGORITHMS),
    }
    return Response(status_code=204, headers=headers)


async def _no_method(request: Request) -> Response:
    problem = bad_request(
        "method_not_allowed",
        f"{request.method} is not allowed here; a POST needs {tus.METHOD_OVERRIDE}: "
        "PATCH or DELETE",
        field=tus.METHOD_OVERRIDE if request.method == "POST" else None,
        status=405,
    )
    problem.headers["Allow"] = "HEAD, PATCH, DELETE, POST"
    raise problem


async def _creation_account(
    request: Request, services: Services, caller: Caller, metadata: dict[str, str]
) -> str:
    """The account a new upload belongs to: an API key's own, or the one staff name in the
    metadata, where they must hold a writer role."""
    named = metadata.get(ACCOUNT_KEY)
    if caller.kind is Kind.STAFF and not named:
        raise Problem(
            422,
            "invalid_field",
            "A field is not valid",
            f"staff name the upload's account in {tus.UPLOAD_METADATA}: "
            f"'{ACCOUNT_KEY} <base64 of the account id>'",
            field=ACCOUNT_FIELD,
        )
    account_id = named or caller.account_id or ""
    try:
        await authorize(RULES, request, services, caller, {"account_id": account_id})
    except (DomainError, Problem) as exc:
        if named:  # the caller itself passed; what is refused is the account it named
            exc.field = ACCOUNT_FIELD
        raise
    return account_id


def _declared_length(request: Request) -> int | None:
    return tus.parse_count(request.headers.get("content-length"), "Content-Length")


def _not_offset_stream() -> Problem:
    return bad_request(
        "unsupported_media_type",
        f"send the bytes with 'Content-Type: {tus.OFFSET_STREAM}'",
        field="Content-Type",
        status=415,
    )


async def _append(
    uploads: Uploads,
    request: Request,
    upload: Upload,
    offset: int,
    checksum: Checksum | None,
    declared: int | None,
    services: Services,
) -> Upload:
    # The body streams to disk as it arrives (uvicorn's flow control holds back the rest),
    # so a chunk of any size costs a few buffers of memory.
    async with aclosing(_body(request)) as chunks:
        return await uploads.append(
            upload.id,
            account_id=upload.account_id,
            offset=offset,
            chunks=chunks,
            checksum=checksum,
            declared=declared,
            now=services.now(),
        )


async def _body(request: Request) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise Interrupted() from None


async def _completed(services: Services, upload: Upload) -> None:
    """The moment an upload completes, one that starts like an image gets its resize queued
    (only its magic bytes are read here), so it is ready by the time a post names it."""
    if upload.state is not State.COMPLETE:
        return
    try:
        await services.images.upload_complete(services.jobs, upload)
    except Exception:
        # The upload itself is complete and answered as such; the content that names the
        # image queues its resize then (ImagePipeline.ensure).
        log.exception("queueing the resize of upload %s failed", upload.id)


def _progress_headers(upload: Upload) -> dict[str, str]:
    headers = {tus.UPLOAD_OFFSET: str(upload.offset)}
    if upload.state is State.RECEIVING:
        # tus expiration: every answer about an incomplete upload says when it expires.
        headers[tus.UPLOAD_EXPIRES] = tus.http_date(parse_rfc3339(upload.expires_at))
    return headers
