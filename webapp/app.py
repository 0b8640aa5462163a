"""The composition root: every engine, service and route is wired here, once, in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from accounts.passwords import Passwords
from accounts.schema import INDEXES as ACCOUNT_INDEXES
from content import clicks, conversions, indexing
from content.pipeline import ImagePipeline, VideoPipeline
from content.schema import INDEXES as CONTENT_INDEXES
from content.sensitive import ReviewPolicy
from live.channel import Channel
from live.schema import INDEXES as LIVE_INDEXES
from media import jobs
from media.tools import check_ffmpeg, usable
from media.worker import Worker
from store.clock import utc_now
from store.engines import open_broker, open_search, open_store
from store.port import DocumentStore, Index
from webapp import (
    api_accounts,
    api_channel,
    api_commerce,
    api_contents,
    api_discover,
    api_drops,
    api_editorial,
    api_live,
    api_live_doc,
    api_moderation,
    api_points,
    api_polls,
    api_props,
    api_red_packets,
    api_rooms,
    api_search,
    api_sessions,
    api_staff,
    api_uploads,
    demo,
    embed_pages,
    gallery,
    housekeeping,
    idempotency,
    openapi,
    pages,
    scheduler,
    sdk,
)
from webapp.api import Endpoint, routes
from webapp.context import Services
from webapp.embedding import EmbedCors
from webapp.gateway import Gateway
from webapp.headers import SecurityHeaders
from webapp.idempotency import IdempotencyKeys
from webapp.live import LiveRooms
from webapp.problems import bad_request, problem_response
from webapp.schemas import HealthOut
from webapp.sdk import Bundle
from webapp.settings import Settings
from webapp.throttle import FailureThrottle
from webapp.vendor import Vendor

log = logging.getLogger("lifeaccount")
VERSION = "0.1.0"
ENDPOINTS: list[Endpoint] = [
    *api_sessions.ENDPOINTS,
    *api_accounts.ENDPOINTS,
    *api_points.ENDPOINTS,
    *api_staff.ENDPOINTS,
    *api_contents.ENDPOINTS,
    *api_commerce.ENDPOINTS,
    *api_editorial.ENDPOINTS,
    *api_moderation.ENDPOINTS,
    *api_search.ENDPOINTS,
    *api_discover.ENDPOINTS,
    *api_rooms.ENDPOINTS,
    *api_channel.ENDPOINTS,
    *api_props.ENDPOINTS,
    *api_red_packets.ENDPOINTS,
    *api_drops.ENDPOINTS,
    *api_polls.ENDPOINTS,
]
STATIC = Path(__file__).parent / "static"


def video_pipeline(
    store: DocumentStore, settings: Settings, now: Callable[[], datetime]
) -> VideoPipeline:
    """The transcode job handler's parts; `serve` and `lifeaccount worker` both use it."""
    return VideoPipeline(store, api_uploads.blob_store(settings), ReviewPolicy(store), now)


def image_pipeline(
    store: DocumentStore, settings: Settings, now: Callable[[], datetime]
) -> ImagePipeline:
    """The image job handler's parts; `serve` and `lifeaccount worker` both use it."""
    return ImagePipeline(store, api_uploads.blob_store(settings), ReviewPolicy(store), now)


def media_handlers(services: Services) -> dict[str, Any]:
    """Every media job kind this process runs, by kind."""
    return {**services.pipeline.handlers(), **services.images.handlers()}


def all_indexes() -> list[Index]:
    """Every index of every collection: `serve` and `lifeaccount worker` both create them
    (whichever starts first on a fresh data dir), so no query ever runs unindexed."""
    return [
        *ACCOUNT_INDEXES,
        *CONTENT_INDEXES,
        *LIVE_INDEXES,
        *clicks.INDEXES,
        *conversions.INDEXES,
        *indexing.INDEXES,
        *jobs.INDEXES,
        *idempotency.INDEXES,
    ]


async def open_services(settings: Settings, now: Callable[[], datetime] = utc_now) -> Services:
    """Open the engines named by the settings and create every index (start-up work)."""
    settings = settings.with_secret()
    store = open_store(
        settings.store,
        settings.data_dir,
        synchronous=settings.sqlite_synchronous,
        threaded=settings.sqlite_threads or None,
    )
    await store.ensure_indexes(all_indexes())
    search = open_search(store)
    await search.ensure()
    broker = open_broker(settings.broker)
    jobs_queue = jobs.JobQueue(store, owner=jobs.default_owner(), now=now)
    pipeline = video_pipeline(store, settings, now)
    services = Services(
        settings=settings,
        store=store,
        broker=broker,
        passwords=Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        secret=settings.secret.encode(),
        now=now,
        signup_throttle=FailureThrottle(settings.signups_per_hour, 3600),
        idempotency=IdempotencyKeys(store, now),
        jobs=jobs_queue,
        pipeline=pipeline,
        images=image_pipeline(store, settings, now),
        search=search,
        live=LiveRooms(
            store,
            api_uploads.blob_store(settings),
            jobs_queue,
            pipeline,
            now,
            max_seats=settings.live_seats,
            ice=settings.ice(),
        ),
    )
    try:
        services.ffmpeg = await check_ffmpeg()
    except (RuntimeError, OSError) as exc:
        services.ffmpeg_error = str(exc)
        log.warning("media tools unusable: %s", exc)
    return services


async def health(request: Request) -> Response:
    services: Services = request.app.state.services
    parts: dict[str, str] = {}
    # The details of a failure go to the log (and `lifeaccount check`), not to anonymous
    # callers: an engine's error text can name hosts, paths and users.
    try:
        await services.store.ping()
        parts["store"] = "ok"
    except Exception:  # any engine failure means "not usable"
        log.exception("health: the store is not usable")
        parts["store"] = "error"
    try:
        await services.broker.ping()
        parts["broker"] = "ok"
    except Exception:
        log.exception("health: the broker is not usable")
        parts["broker"] = "error"
    if services.ffmpeg is not None and usable(services.ffmpeg):
        parts["media"] = "ok"
    else:
        log.error("health: media tools: %s", services.ffmpeg_error or "ffmpeg missing")
        parts["media"] = "error"
    ok = all(v == "ok" for v in parts.values())
    out = HealthOut(status="ok" if ok else "degraded", **parts)
    return Response(
        orjson.dumps(out.model_dump()),
        status_code=200 if ok else 503,
        media_type="application/json",
    )


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document: the endpoint table plus the tus upload and live routes."""
    document = openapi.build(ENDPOINTS, title="lifeaccount API", version=VERSION)
    document["paths"].update(api_uploads.openapi_paths())
    api_live_doc.amend_document(document)
    api_commerce.amend_document(document)
    api_polls.amend_document(document)
    return document


def create_app(
    settings: Settings | None = None,
    *,
    now: Callable[[], datetime] = utc_now,
    channel_socket: socket.socket | None = None,
) -> Starlette:
    """Build the ASGI app; engines open when the lifespan starts. The room channel's gateway
    listens on ``channel_socket`` when given (``lifeaccount serve`` binds it), else on the
    settings' host at ``channel_port`` (any free port when it is not set)."""
    settings = settings or Settings.load()
    document = openapi_document()
    videos = api_uploads.blob_store(settings).path("videos")
    images = api_uploads.blob_store(settings).path("images")
    vendor = Vendor()
    bundle = Bundle()  # the widget SDK's build (webapp/sdk.py), read again when rebuilt

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await open_services(settings, now)
        await services.live.recover()
        services.channel = Channel(
            services.store, services.broker, services.secret, now, services.pipeline.policy
        )
        services.live.told = services.channel.room_changed
        try:
            await services.broker.ping()
        except Exception as exc:  # a Redis not up yet: say so now, /healthz says 503 meanwhile
            log.warning("the broker is not usable (%s); room channels fail until it is", exc)
        gateway = Gateway(services.channel, services.broker, base_url=settings.base_url)
        services.channel_port = await gateway.start(
            settings.host, max(settings.channel_port, 0), sock=channel_socket
        )
        videos.mkdir(parents=True, exist_ok=True)
        images.mkdir(parents=True, exist_ok=True)
        # HLS playlists and fMP4 segments need their own types for players (RFC 8216 §4).
        mimetypes.add_type("application/vnd.apple.mpegurl", ".m3u8")
        mimetypes.add_type("video/iso.segment", ".m4s")
        app.state.services = services
        if settings.demo:
            seeded = await demo.seed(services)
            log.info("the demo brand: /@%s; the widget gallery: /developers/widgets", demo.HANDLE)
            log.debug("demo ids: %s", seeded)
        app.state.templates = pages.environment()
        app.state.sdk = bundle
        app.state.templates.globals["vendor"] = vendor.urls()
        sweeper = asyncio.create_task(housekeeping.run_forever(services))
        # The in-process media worker; `lifeaccount worker` processes add more hands.
        worker = Worker(
            services.jobs,
            media_handlers(services),
            concurrency=services.settings.media_concurrency,
        )
        working = asyncio.create_task(worker.run_forever())
        unscheduled = asyncio.Event()  # set: the scheduling loop ends after its current pass
        scheduling = asyncio.create_task(
            scheduler.run_forever(
                services.store,
                now,
                every_s=settings.schedule_every_s,
                stop=unscheduled,
                live_grace_s=settings.live_grace_s,
                # Rooms ended by the grace period (or another process) let their media go.
                after_tick=services.live.settle,
            )
        )
        try:
            yield
        finally:
            await gateway.stop()
            await services.live.shutdown()  # publishers go; their rooms start the grace period
            await worker.stop()  # running jobs go back to the queue before the store closes
            await working
            unscheduled.set()
            await scheduling
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await services.broker.close()
            await services.search.close()  # the index before its store
            await services.store.close()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    app = Starlette(
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Route("/api/openapi.json", openapi_json, methods=["GET"]),
            *routes(ENDPOINTS),
            *api_uploads.routes(),
            *pages.routes(),
            *api_commerce.routes(),
            *api_live.routes(),
            *vendor.routes(),
            *sdk.routes(bundle),
            *embed_pages.routes(),
            *gallery.routes(),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            # Only the transcoded outputs are public; raw uploads under the same root are not.
            Mount("/media/videos", StaticFiles(directory=videos, check_dir=False), name="videos"),
            Mount("/media/images", StaticFiles(directory=images, check_dir=False), name="images"),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                EmbedCors,
                store=lambda scope: scope["app"].state.services.store,
                base_url=lambda scope: settings.base_url,
            ),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        problem = bad_request("not_found", f"nothing is served at {request.url.path}", status=404)
    elif exc.status_code == 405:
        problem = bad_request(
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}",
            status=405,
        )
        problem.headers.update(exc.headers or {})
    else:
        problem = bad_request("http_error", str(exc.detail), status=exc.status_code)
    return problem_response(problem, request.url.path)


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    problem = bad_request(
        "internal_error",
        "the server failed on this request; it was logged, please retry",
        status=500,
    )
    problem.title = "Internal server error"
    return problem_response(problem, request.url.path)
