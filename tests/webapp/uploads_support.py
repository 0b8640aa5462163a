"""Helpers for the tus upload tests: the app with the upload routes, and tus requests."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Brand, make_settings
from webapp.settings import Settings

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
MAX_UPLOAD = 8 << 20
COLLECTION = "/api/v1/uploads"


def upload_settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, max_upload_bytes=MAX_UPLOAD)


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def as_staff(client: httpx.AsyncClient, brand: Brand) -> dict[str, str]:
    """Log the client in as the brand's owner; returns the CSRF header for unsafe methods."""
    client.cookies = brand.cookies
    return brand.staff_headers


async def create(
    client: httpx.AsyncClient,
    headers: Mapping[str, str],
    length: int,
    metadata: str | None = None,
    **kw: Any,
) -> httpx.Response:
    sent = {**TUS, **headers, "Upload-Length": str(length)}
    if metadata is not None:
        sent["Upload-Metadata"] = metadata
    return await client.post(COLLECTION, headers=sent, **kw)


async def new_upload(client: httpx.AsyncClient, headers: Mapping[str, str], length: int) -> str:
    r = await create(client, headers, length, meta(filename="a.mp4", filetype="video/mp4"))
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    assert location.rsplit("/", 1)[1] == r.json()["id"]
    return str(r.json()["id"])


async def patch(
    client: httpx.AsyncClient,
    upload_id: str,
    headers: Mapping[str, str],
    offset: int,
    data: bytes,
    **extra: str,
) -> httpx.Response:
    sent = {**TUS, **OCTET, **headers, "Upload-Offset": str(offset), **extra}
    return await client.patch(f"{COLLECTION}/{upload_id}", headers=sent, content=data)


async def head(
    client: httpx.AsyncClient, upload_id: str, headers: Mapping[str, str]
) -> httpx.Response:
    return await client.head(f"{COLLECTION}/{upload_id}", headers={**TUS, **headers})


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def blob_path(settings: Settings, upload_id: str) -> Path:
    return settings.data_dir / "media" / "uploads" / upload_id


def assert_problem(r: httpx.Response, status: int, field: str | None, code: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body.get("field") == field, body
    if code:
        assert body["code"] == code, body
