"""The OpenAPI description of the tus upload routes (``webapp/api_uploads.py``), merged into
the document that ``webapp/openapi.py`` builds from the endpoint table."""

from __future__ import annotations

import copy
from typing import Any

from webapp import tus
from webapp.auth import CSRF_HEADER

COLLECTION = "/api/v1/uploads"
ITEM = "/api/v1/uploads/{upload_id}"
TAG = "uploads"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
TEXT: dict[str, Any] = {"type": "string"}
REASONS = {
    400: "A malformed tus header (named in 'field')",
    401: "No credentials, or bad ones",
    403: "A fan token, a missing CSRF token, another account or a moderator",
    404: "No such upload for this account (or no such account)",
    405: "POST without X-HTTP-Method-Override: PATCH or DELETE",
    409: "Upload-Offset is not the upload's offset; HEAD it and resume there",
    410: "The upload expired or was terminated; start a new one",
    412: "Tus-Resumable is missing or not 1.0.0 (the answer's Tus-Version lists ours)",
    413: "Upload-Length above Tus-Max-Size, or a body past the upload's length",
    415: "A body without Content-Type: application/offset+octet-stream",
    422: "Staff did not name the account in Upload-Metadata (account_id)",
    423: "Another request (maybe on another server process) is writing this upload; HEAD it "
    "and retry from its offset",
    429: "The account has too many incomplete uploads",
    460: "Checksum mismatch: the chunk does not match Upload-Checksum; nothing was kept",
    507: "Too little disk left for this upload beside the server's reserve; try again later",
}
SECURITY: list[dict[str, list[str]]] = [{"staffSession": []}, {"apiKey": []}]
UPLOAD_OUT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "url", "length", "offset", "state", "expires_at"],
    "properties": {
        "id": {"type": "string", "description": "the last path segment of url"},
        "url": {"type": "string", "description": "the upload's URL, as in Location"},
        "length": COUNT,
        "offset": COUNT,
        "state": {"type": "string", "enum": ["receiving", "complete"]},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}


def _header(name: str, schema: dict[str, Any], description: str, required: bool = False) -> Any:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    }


RESUMABLE = _header(
    tus.RESUMABLE, {"type": "string", "const": tus.VERSION}, "the tus version", required=True
)
CSRF = _header(CSRF_HEADER, TEXT, "with a session cookie: the session's csrf_token")
UPLOAD_ID = {
    "name": "upload_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 200},
}
CHECKSUM = _header(
    tus.UPLOAD_CHECKSUM,
    TEXT,
    "'<algorithm> <base64 digest>' of this request's bytes; algorithms: sha1, sha256, md5",
)
# Raw bytes: in OpenAPI 3.1 the media type says it all; the empty schema takes any bytes.
OFFSET_STREAM: dict[str, Any] = {tus.OFFSET_STREAM: {"schema": {}}}


def _answers(
    success: str, description: str, headers: dict[str, Any], *errors: int, bodies: bool = True
) -> dict[str, Any]:
    """The success answer and the problem answers (a HEAD answer has no body at all)."""
    out: dict[str, Any] = {
        success: {
            "description": description,
            "headers": {tus.RESUMABLE: {"schema": TEXT}, **headers},
        }
    }
    for status in sorted({401, 412, *errors}):
        out[str(status)] = {
            "description": REASONS[status],
            "headers": {tus.RESUMABLE: {"schema": TEXT}},
        }
        if bodies:
            out[str(status)]["content"] = PROBLEM
    return out


def _progress(*, length: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {
        tus.UPLOAD_OFFSET: {"schema": COUNT, "description": "bytes received so far"},
        tus.UPLOAD_EXPIRES: {
            "schema": TEXT,
            "description": "while incomplete: when the upload expires (an HTTP date)",
        },
    }
    if length:
        headers[tus.UPLOAD_LENGTH] = {"schema": COUNT}
        headers[tus.UPLOAD_METADATA] = {"schema": TEXT, "description": "as sent at creation"}
        headers["Cache-Control"] = {"schema": {"type": "string", "const": "no-store"}}
    return headers


def _patch(operation_id: str, summary: str, *, override: bool = False) -> dict[str, Any]:
    """PATCH, or a POST standing in for PATCH or DELETE (then Upload-Offset and the body
    come with PATCH only)."""
    offset = _header(
        tus.UPLOAD_OFFSET, COUNT, "the byte this chunk starts at", required=not override
    )
    method = _header(
        tus.METHOD_OVERRIDE,
        {"type": "string", "enum": ["PATCH", "DELETE"]},
        "the method this POST stands for",
        required=True,
    )
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [TAG],
        "parameters": [UPLOAD_ID, RESUMABLE, offset, CHECKSUM, CSRF, *([method] * override)],
        "requestBody": {"required": not override, "content": OFFSET_STREAM},
        "responses": _answers(
            "204",
            "Kept; Upload-Offset is the new offset",
            _progress(),
            400,
            403,
            404,
            409,
            410,
            413,
            415,
            423,
            460,
        ),
        "security": SECURITY,
    }


def openapi_paths() -> dict[str, Any]:
    """The ``paths`` entries of the tus routes (they use ``#/components/schemas/Problem``).

    A copy each time: the operations share parameter and header objects, and a caller that
    edits one document (a test breaking it on purpose) must not edit the next."""
    return copy.deepcopy(_paths())


def _paths() -> dict[str, Any]:
    post_item = _patch(
        "override_upload",
        "PATCH or DELETE for clients that can only POST (X-HTTP-Method-Override)",
        override=True,
    )
    post_item["responses"] |= _answers("204", "Done", _progress(), 405)
    created = _answers(
        "201",
        "Created; Location is the upload's URL",
        {"Location": {"schema": TEXT}, **_progress()},
        *(400, 403, 404, 413, 415, 422, 429, 460, 507),
    )
    created["201"]["content"] = {"application/json": {"schema": UPLOAD_OUT}}
    return {
        COLLECTION: {
            "options": {
                "operationId": "discover_uploads",
                "summary": "tus discovery: version, extensions, maximum size, checksums",
                "tags": [TAG],
                "responses": {
                    "204": {
                        "description": "What this server supports",
                        "headers": {
                            name: {"schema": TEXT}
                            for name in (
                                tus.RESUMABLE,
                                tus.TUS_VERSION,
                                tus.TUS_EXTENSION,
                                tus.TUS_CHECKSUM_ALGORITHM,
                            )
                        }
                        | {tus.TUS_MAX_SIZE: {"schema": COUNT}},
                    }
                },
                "security": [{}],
            },
            "post": {
                "operationId": "create_upload",
                "summary": "Create an upload (tus creation; creation-with-upload with a body)",
                "description": "Staff name the account in Upload-Metadata as "
                "'account_id <base64 id>'; an API key uploads for its own account. The upload "
                "id is the last path segment of Location.",
                "tags": [TAG],
                "parameters": [
                    RESUMABLE,
                    _header(tus.UPLOAD_LENGTH, COUNT, "the whole file's size", required=True),
                    _header(
                        tus.UPLOAD_METADATA,
                        TEXT,
                        "'key base64value' pairs, comma separated: filename, filetype, "
                        "account_id (staff)",
                    ),
                    CHECKSUM,
                    CSRF,
                ],
                "requestBody": {"required": False, "content": OFFSET_STREAM},
                "responses": created,
                "security": SECURITY,
            },
        },
        ITEM: {
            "head": {
                "operationId": "upload_offset",
                "summary": "The upload's offset and length (tus core), to resume from",
                "tags": [TAG],
                "parameters": [UPLOAD_ID, RESUMABLE],
                "responses": _answers(
                    "200",
                    "No body; the headers say",
                    _progress(length=True),
                    403,
                    404,
                    410,
                    bodies=False,
                ),
                "security": SECURITY,
            },
            "patch": _patch("append_upload", "Send bytes at Upload-Offset (tus core)"),
            "delete": {
                "operationId": "terminate_upload",
                "summary": "Terminate the upload and delete its bytes (tus termination)",
                "tags": [TAG],
                "parameters": [UPLOAD_ID, RESUMABLE, CSRF],
                "responses": _answers("204", "Terminated", {}, 403, 404, 410),
                "security": SECURITY,
            },
            "post": post_item,
        },
    }
