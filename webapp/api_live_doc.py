"""The OpenAPI description of the live video routes (``webapp/api_live.py``): WHIP ingest
(RFC 9725), WHEP playback and the room's HLS files. They are plain Starlette routes, outside
the endpoint table, so they are described here by hand and merged into the document that
``webapp/app.py`` builds, as ``webapp/api_uploads_doc.py`` does for the tus routes."""

from __future__ import annotations

import copy
from typing import Any

from webapp.api_live import CORS, HLS_FILE, MAX_SDP_BYTES, ROOM_ID, SDP
from webapp.auth import CSRF_HEADER
from webapp.openapi import RETRY_AFTER

WHIP = "/whip/{room_id}"
WHIP_SESSION = "/whip/{room_id}/{session_id}"
WHEP = "/whep/{room_id}"
WHEP_SEAT = "/whep/{room_id}/{seat_id}"
HLS = "/hls/{room_id}/{file}"
TAG = "live"
PLAYLIST = "application/vnd.apple.mpegurl"
TEXT: dict[str, Any] = {"type": "string"}
# Raw bytes: in OpenAPI 3.1 the media type says it all; the empty schema takes any bytes.
BYTES: dict[str, Any] = {"schema": {}}
STREAM_KEY: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "a room's stream key (lsk_…), shown when the room is made or its key "
    "rotated (the old key then stops working, and a publisher that came in with it is let "
    "go); WHIP encoders (OBS) send it as the bearer token (RFC 9725)",
}
PUBLISHER: list[dict[str, list[str]]] = [{"streamKey": []}, {"staffSession": []}]
ANYONE: list[dict[str, list[str]]] = [{}]
CORS_HEADERS = {
    name: {"schema": {"type": "string", "const": value}} for name, value in CORS.items()
}


def _path(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


ROOM = _path("room_id", "the room's id (room_…)")
SESSION = _path("session_id", "the last segment of the Location that the POST answered")
SEAT = _path("seat_id", "the last segment of the Location that the POST answered")
CSRF = {
    "name": CSRF_HEADER,
    "in": "header",
    "required": False,
    "description": "with a staff session (the host page): the session's csrf_token; not "
    "needed with a stream key",
    "schema": TEXT,
}
OFFER = {
    "required": True,
    "description": f"the SDP offer, UTF-8, at most {MAX_SDP_BYTES // 1024} KiB",
    "content": {SDP: {"schema": TEXT}},
}


def _problem(description: str, *codes: str, **headers: Any) -> dict[str, Any]:
    """An RFC 9457 answer whose ``code`` is one of ``codes``; like every answer of these
    routes it carries the CORS headers, so a page on another origin can read it."""
    schema = {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"properties": {"code": {"enum": list(codes)}}},
        ]
    }
    return {
        "description": description,
        "headers": {**CORS_HEADERS, **headers},
        "content": {"application/problem+json": {"schema": schema}},
    }


UNAUTHORIZED = _problem(
    "No stream key and no staff session (stream_key_required), not the room's current key "
    "(stream_key_invalid), or another scheme than Bearer (unauthorized)",
    "stream_key_required",
    "stream_key_invalid",
    "unauthorized",
)
FORBIDDEN = _problem(
    "A staff session without its CSRF token (csrf_failed), or of someone who is not an owner, "
    "editor or host of the room's account (role_required)",
    "csrf_failed",
    "role_required",
)
TOO_LARGE = _problem(f"The offer is over {MAX_SDP_BYTES // 1024} KiB", "too_large")
NOT_SDP = _problem(f"The body's Content-Type is not {SDP}", "unsupported_media_type")
BAD_OFFER = _problem("The offer is not UTF-8, or not an SDP offer we can answer", "bad_offer")


def _created(what: str, location: str) -> dict[str, Any]:
    return {
        "description": f"The SDP answer, with every candidate (no trickle ICE); Location is "
        f"{what}'s URL",
        "headers": {
            "Location": {
                "description": "relative to this server; DELETE it to end",
                "schema": {"type": "string", "pattern": location},
            },
            **CORS_HEADERS,
        },
        "content": {SDP: {"schema": TEXT}},
    }


def _preflight(operation_id: str, parameters: list[Any], *, accept_post: bool) -> dict[str, Any]:
    headers = dict(CORS_HEADERS)
    if accept_post:
        headers["Accept-Post"] = {"schema": {"type": "string", "const": SDP}}
    return {
        "operationId": operation_id,
        "summary": "CORS preflight" + (" (Accept-Post names the offer's type)" * accept_post),
        "tags": [TAG],
        "parameters": parameters,
        "responses": {
            "204": {"description": "What may be sent from any origin", "headers": headers}
        },
        "security": ANYONE,
    }


def _no_patch(operation_id: str, parameters: list[Any]) -> dict[str, Any]:
    allow = {"schema": {"type": "string", "const": "DELETE, OPTIONS"}}
    return {
        "operationId": operation_id,
        "summary": "Trickle ICE and ICE restarts are not offered",
        "description": "Always 405 (RFC 9725 §4.3.1): the answer already carries every "
        "candidate. Answered before any credential is read.",
        "tags": [TAG],
        "parameters": parameters,
        "responses": {
            "405": {
                "description": "No body",
                "headers": {"Allow": allow, **CORS_HEADERS},
            }
        },
        "security": ANYONE,
    }


def _whip() -> dict[str, Any]:
    return {
        WHIP: {
            "options": _preflight("whip_options", [ROOM], accept_post=True),
            "post": {
                "operationId": "whip_publish",
                "summary": "Go live: a WHIP encoder's SDP offer in, the answer out (RFC 9725)",
                "description": "The room's stream key as 'Authorization: Bearer <stream key>' "
                "(OBS and every WHIP encoder), or, without an Authorization header, the staff "
                "session of an owner, editor or host of the room's account with its CSRF "
                "token (the host page). Checked in this order: the room (404), the credentials, "
                "whether the room has ended (409), the body's type and size, the offer. One "
                "publisher per room: a second one answers 409 publisher_busy, and a refused "
                "request never disturbs the live publisher. The room goes live with the "
                "first publish.",
                "tags": [TAG],
                "parameters": [ROOM, CSRF],
                "requestBody": OFFER,
                "responses": {
                    "201": _created("the publish session", r"^/whip/[^/]+/[^/]+$"),
                    "400": BAD_OFFER,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "404": _problem("No such room", "room_not_found"),
                    "409": _problem(
                        "The room has ended (room_ended), or already has a publisher "
                        "(publisher_busy: end it first)",
                        "publisher_busy",
                        "room_ended",
                    ),
                    "413": TOO_LARGE,
                    "415": NOT_SDP,
                    "500": _problem(
                        "The server could not start packaging the live (ffmpeg); try again "
                        "in a moment",
                        "encoder_failed",
                    ),
                },
                "security": PUBLISHER,
            },
        },
        WHIP_SESSION: {
            "options": _preflight("whip_session_options", [ROOM, SESSION], accept_post=False),
            "delete": {
                "operationId": "whip_hang_up",
                "summary": "End the publish session (the room stays live for its grace period)",
                "description": "The same credentials as the POST.",
                "tags": [TAG],
                "parameters": [ROOM, SESSION, CSRF],
                "responses": {
                    "200": {"description": "Ended; no body", "headers": CORS_HEADERS},
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "404": _problem(
                        "No such room, or the session is not the room's current one",
                        "room_not_found",
                        "whip_session_not_found",
                    ),
                },
                "security": PUBLISHER,
            },
            "patch": _no_patch("whip_session_patch", [ROOM, SESSION]),
        },
    }


def _whep() -> dict[str, Any]:
    return {
        WHEP: {
            "options": _preflight("whep_options", [ROOM], accept_post=True),
            "post": {
                "operationId": "whep_play",
                "summary": "Watch a live room over WebRTC: an SDP offer in, the answer out",
                "description": "Anyone may watch while a seat is free. Seats are few (each "
                "re-encodes, DESIGN §3): a full room answers 503 with Retry-After, and the "
                "room's HLS playlist plays for everyone.",
                "tags": [TAG],
                "parameters": [ROOM],
                "requestBody": OFFER,
                "responses": {
                    "201": _created("the seat", r"^/whep/[^/]+/[^/]+$"),
                    "400": BAD_OFFER,
                    "404": _problem("No such room", "room_not_found"),
                    "409": _problem(
                        "The room is not live (room_not_live: watch its replay), or ended "
                        "as the offer came (room_ended)",
                        "room_not_live",
                        "room_ended",
                    ),
                    "413": TOO_LARGE,
                    "415": NOT_SDP,
                    "503": _problem(
                        "Every WebRTC seat of the room is taken; watch over HLS "
                        "(/hls/{room_id}/index.m3u8) or try again after Retry-After",
                        "seats_full",
                        **RETRY_AFTER,
                    ),
                },
                "security": ANYONE,
            },
        },
        WHEP_SEAT: {
            "options": _preflight("whep_seat_options", [ROOM, SEAT], accept_post=False),
            "delete": {
                "operationId": "whep_leave",
                "summary": "Free the seat (a viewer who just goes away frees it too)",
                "tags": [TAG],
                "parameters": [ROOM, SEAT],
                "responses": {
                    "200": {"description": "Freed; no body", "headers": CORS_HEADERS},
                    "404": _problem("No such seat in this room", "whep_seat_not_found"),
                },
                "security": ANYONE,
            },
            "patch": _no_patch("whep_seat_patch", [ROOM, SEAT]),
        },
    }


def _hls() -> dict[str, Any]:
    files = {PLAYLIST: {"schema": TEXT}, "video/mp2t": BYTES, "video/mp4": BYTES}
    cache = {
        "description": "no-cache for the playlist (it changes with every segment); segments "
        "an hour (their names never repeat within a room)",
        "schema": {"type": "string", "enum": ["no-cache", "public, max-age=3600"]},
    }
    served = {
        "Cache-Control": cache,
        "Access-Control-Allow-Origin": CORS_HEADERS["Access-Control-Allow-Origin"],
        **{
            name: {"description": "segments only", "required": False, "schema": schema}
            for name, schema in (
                ("Accept-Ranges", {"type": "string", "const": "bytes"}),
                ("ETag", TEXT),
                ("Last-Modified", TEXT),
            )
        },
    }
    return {
        HLS: {
            "get": {
                "operationId": "hls_file",
                "summary": "The room's HLS playlist (index.m3u8) and the segments it lists",
                "description": "Playlist as application/vnd.apple.mpegurl, .ts segments as "
                "video/mp2t, .m4s and .mp4 as video/mp4. HEAD answers the same headers "
                "without the body; a Range header on a segment gets 206 (the playlist is "
                "read whole, as it is replaced at every segment).",
                "tags": [TAG],
                "parameters": [
                    _path(
                        "room_id", "the room's id; anything else is 404", pattern=ROOM_ID.pattern
                    ),
                    _path(
                        "file",
                        "index.m3u8, or a segment it lists; anything else is 404",
                        pattern=HLS_FILE.pattern,
                    ),
                ],
                "responses": {
                    "200": {"description": "The file", "headers": served, "content": files},
                    "206": {
                        "description": "The bytes a Range header asked for (several ranges: "
                        "multipart/byteranges)",
                        "headers": {**served, "Content-Range": {"schema": TEXT}},
                        "content": {**files, "multipart/byteranges": BYTES},
                    },
                    "400": {
                        "description": "A malformed Range header",
                        "content": {"text/plain": {"schema": TEXT}},
                    },
                    "404": _problem(
                        "No such file (yet): the room has not published, or the name is not "
                        "one it serves",
                        "hls_file_not_found",
                    ),
                    "416": {
                        "description": "The Range is past the file's end; no body",
                        "headers": {
                            "Content-Range": {
                                "description": "bytes */<the file's size>",
                                "schema": {"type": "string", "pattern": r"^bytes \*/[0-9]+$"},
                            }
                        },
                    },
                },
                "security": ANYONE,
            }
        }
    }


def openapi_paths() -> dict[str, Any]:
    """The ``paths`` entries of the live routes (they use ``#/components/schemas/Problem``
    and the ``streamKey`` and ``staffSession`` security schemes)."""
    # A copy: the operations share parameter and header objects, and a caller that edits
    # one document (a test breaking it on purpose) must not edit the next.
    return copy.deepcopy({**_whip(), **_whep(), **_hls()})


def amend_document(document: dict[str, Any]) -> None:
    """Merge the live routes, and the stream key's security scheme, into the document."""
    document["paths"].update(openapi_paths())
    document["components"]["securitySchemes"]["streamKey"] = dict(STREAM_KEY)
