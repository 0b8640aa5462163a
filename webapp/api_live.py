"""Live video routes: WHIP ingest (RFC 9725), WHEP playback, and the room's HLS files.

WHIP (``POST /whip/{room_id}``): an SDP offer (``application/sdp``) with the room's stream key
as the bearer token, as OBS and every WHIP encoder send it, or, for the host page, the staff
session of an owner, editor or host with its CSRF token. ``201`` carries the answer and a
``Location`` whose ``DELETE`` ends the session; trickle ICE is not offered, so ``PATCH``
answers 405 (RFC 9725 §4.3.1: the answer carries every candidate, and offers without
candidates, as OBS sends them, work since the encoder then learns ours). One publisher per
room (409); a bad key 401; garbage SDP 400; none of them touches a live publisher.

WHEP (``POST /whep/{room_id}``): anyone may watch a live room over WebRTC while a seat is free;
seats are few (each re-encodes, DESIGN §3), so a full room answers 503 with ``Retry-After``
and the page falls back to HLS.

HLS (``GET /hls/{room_id}/{file}``): the playlist with ``no-cache`` (it changes every
segment), segments cached for an hour (their names never repeat within a room).
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from accounts.errors import DomainError, Forbidden, NotFound, Unauthorized
from live import rooms
from media.webrtc import BadOffer
from media.whip import EncoderError, IngestClosed, PublisherBusy, SeatsFull
from webapp.api import csrf_ok
from webapp.api_rooms import runs_rooms, told
from webapp.auth import Kind, identify
from webapp.context import Services
from webapp.problems import Problem, problem_response

log = logging.getLogger("lifeaccount.live")
SDP = "application/sdp"
MAX_SDP_BYTES = 64 * 1024
HLS_FILE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(m3u8|ts|m4s|mp4)$")
ROOM_ID = re.compile(r"^room_[0-9a-z]{10,40}$")
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Retry-After",
}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _problem(request: Request, error: DomainError | Problem, **headers: str) -> Response:
    problem = error if isinstance(error, Problem) else Problem.from_domain(error)
    answer = problem_response(problem, request.url.path)
    answer.headers.update({**CORS, **headers})
    return answer


async def _offer(request: Request) -> str:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != SDP:
        raise Problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            f"send the SDP offer as {SDP}",
            field="Content-Type",
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SDP_BYTES:
            raise Problem(413, "too_large", "Body too large", "an SDP offer is at most 64 KiB")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "bad_offer", "Bad offer", "the offer is not UTF-8 text") from None


async def _publisher(request: Request, room_id: str) -> tuple[rooms.Room, str | None]:
    """The room, when the request may publish to it, and the stream key it came with (None
    for a session of the account's owner, editor or host with its CSRF token: the host
    page)."""
    services = _services(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized("use 'Authorization: Bearer <stream key>'", field="Authorization")
        key = token.strip()
        return await rooms.check_stream_key(services.store, room_id, key), key
    room = await rooms.get_room(services.store, room_id)
    caller = await identify(request, services)
    if caller.kind is not Kind.STAFF:
        raise Unauthorized(
            "send the room's stream key as 'Authorization: Bearer <stream key>'",
            code="stream_key_required",
            field="Authorization",
        )
    if not csrf_ok(request, caller):
        raise Forbidden(
            "send the session's csrf_token in the X-CSRF-Token header", code="csrf_failed"
        )
    if not await runs_rooms(services.store, caller, room.account_id):
        raise Forbidden(
            "only the account's owners, editors and hosts go live", code="role_required"
        )
    return room, None


def _preflight(request: Request, *, creates: bool) -> Response | None:
    """The answer to OPTIONS (CORS; ``Accept-Post`` on the routes that take offers) and, on a
    session's URL, to PATCH: no trickle ICE, no ICE restart (RFC 9725 §4.3.1); else None."""
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={**CORS, "Accept-Post": SDP} if creates else CORS)
    if request.method == "PATCH":
        return Response(status_code=405, headers={**CORS, "Allow": "DELETE, OPTIONS"})
    return None


def _refused(exc: BadOffer | IngestClosed) -> Problem:
    """An offer the engine turned down: unusable SDP (400) or the room ended meanwhile (409)."""
    if isinstance(exc, BadOffer):
        return Problem(400, "bad_offer", "Bad offer", str(exc), field="body")
    return Problem(409, "room_ended", "Conflict", str(exc))


def _created(answer: str, location: str) -> Response:
    return Response(answer, status_code=201, media_type=SDP, headers={**CORS, "Location": location})


async def whip(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    if (early := _preflight(request, creates=True)) is not None:
        return early
    services = _services(request)
    try:
        room, key = await _publisher(request, room_id)
        if room.state is rooms.State.ENDED:
            raise rooms.room_ended(room.id)
        offer = await _offer(request)
        engine = services.live.open(room.id)
        try:
            answer, session_id = await engine.accept(offer)
        except (BadOffer, IngestClosed) as exc:
            raise _refused(exc) from None
        except PublisherBusy as exc:
            raise Problem(409, "publisher_busy", "Conflict", f"{exc}; end it first") from None
        except EncoderError as exc:
            log.error("room %s: ffmpeg could not start: %s", room.id, exc)
            raise Problem(
                500,
                "encoder_failed",
                "Internal server error",
                "the server could not start packaging this live; try again in a moment",
            ) from None
        if key is not None:
            # Noted, then the key checked again: a rotation while this offer was answered
            # either finds the session to let go, or is seen here.
            services.live.keyed(room.id, session_id)
            try:
                await rooms.check_stream_key(services.store, room.id, key)
            except Unauthorized:
                await engine.hang_up(session_id)
                raise
        live = await rooms.go_live(services.store, room.id, now=services.now())
        if live.state is not room.state:
            await told(services, live)
        await rooms.publisher_back(services.store, room.id)
        if engine.publisher_gone.is_set():  # it left while it was being counted in
            await rooms.publisher_gone(services.store, room.id, at=services.now())
    except (DomainError, Problem) as error:
        return _problem(request, error)
    return _created(answer, f"/whip/{room.id}/{session_id}")


async def whip_session(request: Request) -> Response:
    room_id, session_id = request.path_params["room_id"], request.path_params["session_id"]
    if (early := _preflight(request, creates=False)) is not None:
        return early
    services = _services(request)
    try:
        await _publisher(request, room_id)
        engine = services.live.engine(room_id)
        if engine is None or not await engine.hang_up(session_id):
            raise NotFound("whip_session", session_id)
    except (DomainError, Problem) as error:
        return _problem(request, error)
    return Response(status_code=200, headers=CORS)


async def whep(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    if (early := _preflight(request, creates=True)) is not None:
        return early
    services = _services(request)
    try:
        room = await rooms.get_room(services.store, room_id)
        engine = services.live.engine(room.id)
        if room.state is not rooms.State.LIVE or engine is None:
            raise Problem(
                409, "room_not_live", "Conflict", "the room is not live; watch its replay"
            )
        offer = await _offer(request)
        try:
            answer, seat_id = await engine.play(offer)
        except (BadOffer, IngestClosed) as exc:
            raise _refused(exc) from None
        except SeatsFull as exc:
            problem = Problem(
                503,
                "seats_full",
                "Service unavailable",
                f"every WebRTC seat of this room is taken; watch over HLS at "
                f"/hls/{room.id}/index.m3u8, or try again later ({exc})",
            )
            return _problem(request, problem, **{"Retry-After": str(exc.retry_after_s)})
        await rooms.record_viewers(services.store, room.id, len(engine.seats))
    except (DomainError, Problem) as error:
        return _problem(request, error)
    return _created(answer, f"/whep/{room.id}/{seat_id}")


async def whep_seat(request: Request) -> Response:
    room_id, seat_id = request.path_params["room_id"], request.path_params["seat_id"]
    if (early := _preflight(request, creates=False)) is not None:
        return early
    engine = _services(request).live.engine(room_id)
    if engine is None or not await engine.leave(seat_id):
        return _problem(request, NotFound("whep_seat", seat_id))
    return Response(status_code=200, headers=CORS)


async def hls(request: Request) -> Response:
    room_id, name = request.path_params["room_id"], request.path_params["file"]
    services = _services(request)
    if not HLS_FILE.fullmatch(name) or not ROOM_ID.fullmatch(room_id):
        return _problem(request, NotFound("hls_file", name))
    path = services.live.blobs.path(f"live/{room_id}/hls/{name}")
    if not path.is_file():
        return _problem(request, NotFound("hls_file", name))
    if name.endswith(".m3u8"):
        # Read whole, not streamed: ffmpeg renames a new playlist into place every segment,
        # and a file response would send the new one's bytes under the old one's length.
        headers = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
        try:
            listed = path.read_bytes()
        except FileNotFoundError:
            return _problem(request, NotFound("hls_file", name))
        return Response(listed, media_type="application/vnd.apple.mpegurl", headers=headers)
    media = "video/mp2t" if name.endswith(".ts") else "video/mp4"
    headers = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}
    return FileResponse(path, media_type=media, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/whip/{room_id}", whip, methods=["POST", "OPTIONS"]),
        Route("/whip/{room_id}/{session_id}", whip_session, methods=["DELETE", "PATCH", "OPTIONS"]),
        Route("/whep/{room_id}", whep, methods=["POST", "OPTIONS"]),
        Route("/whep/{room_id}/{seat_id}", whep_seat, methods=["DELETE", "PATCH", "OPTIONS"]),
        Route("/hls/{room_id}/{file}", hls, methods=["GET", "HEAD"]),
    ]
