"""The content API end to end in-process: tus upload → video content → the app's own media
worker transcodes it → published, playable files served under /media/videos."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Brand, bearer, mint
from tests.media.clips import make_clip

TUS = {"Tus-Resumable": "1.0.0"}


async def _upload(client: httpx.AsyncClient, brand: Brand, data: bytes) -> str:
    made = await client.post(
        "/api/v1/uploads",
        headers={**brand.key_headers, **TUS, "Upload-Length": str(len(data))},
    )
    assert made.status_code == 201, made.text
    location = made.headers["location"]
    patched = await client.patch(
        location,
        content=data,
        headers={
            **brand.key_headers,
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 204, patched.text
    return location.rsplit("/", 1)[-1]


async def _until(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any
) -> dict[str, Any]:
    for _ in range(600):  # bounded: ~60 s on a loaded machine
        body: dict[str, Any] = (await client.get(url, headers=headers)).json()
        if done(body):
            return body
        await asyncio.sleep(0.1)  # polling the real state the API shows
    raise AssertionError(f"{url} never got there: {body}")


async def test_an_uploaded_video_is_transcoded_published_and_served(
    client: httpx.AsyncClient, brand: Brand, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="480x270", seconds=1.0)
    upload_id = await _upload(client, brand, clip.read_bytes())
    created = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "video", "title": "新品上市", "caption": "试试", "upload_id": upload_id},
        headers=brand.key_headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft"
    assert created.json()["media"]["state"] == "processing"
    url = f"/api/v1/contents/{created.json()['id']}"
    published = await client.post(f"{url}/publish", json={}, headers=brand.key_headers)
    assert published.json()["status"] in ("pending_media", "published")
    ready = await _until(
        client, url, brand.key_headers, lambda b: b["media"]["state"] != "processing"
    )
    assert ready["media"]["state"] == "ready", ready["media"]
    assert ready["status"] == "published" and ready["media"]["progress"] == 1.0
    assert [r["height"] for r in ready["media"]["renditions"]] == [270]
    for name in ("hls_url", "mp4_url", "poster_url"):
        served = await client.get(ready["media"][name])
        assert served.status_code == 200, (name, ready["media"][name])
    playlist = await client.get(ready["media"]["hls_url"])
    assert playlist.text.startswith("#EXTM3U")
    # Anyone can now read it, and it leads the account's feed.
    assert (await client.get(url)).status_code == 200
    fan = await mint(client, brand)
    feed = await client.get(
        f"/api/v1/accounts/{brand.account_id}/contents", headers=bearer(fan["token"])
    )
    assert [c["id"] for c in feed.json()["items"]] == [created.json()["id"]]


async def test_a_video_needs_a_complete_upload_of_its_own_account(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    partial = await client.post(
        "/api/v1/uploads", headers={**brand.key_headers, **TUS, "Upload-Length": "100"}
    )
    upload_id = partial.headers["location"].rsplit("/", 1)[-1]
    url = f"/api/v1/accounts/{brand.account_id}/contents"
    body = {"kind": "video", "title": "t", "upload_id": upload_id}
    r = await client.post(url, json=body, headers=brand.key_headers)
    assert r.status_code == 409 and r.json()["code"] == "upload_incomplete"
    assert r.json()["field"] == "upload_id"
    missing = {**body, "upload_id": "upl_01m8aaaaaaaaaaaaaaaaaaaaaa"}
    r = await client.post(url, json=missing, headers=brand.key_headers)
    assert r.status_code == 404 and r.json()["field"] == "upload_id"
    feed = await client.get(url)
    assert feed.json()["items"] == []  # nothing half-made was published


async def test_drafts_are_the_accounts_own(client: httpx.AsyncClient, brand: Brand) -> None:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": "今天的新品"},
        headers=brand.key_headers,
    )
    assert made.status_code == 201, made.text
    url = f"/api/v1/contents/{made.json()['id']}"
    fan = await mint(client, brand)
    assert (await client.get(url, headers=bearer(fan["token"]))).status_code == 404
    r = await client.post(f"{url}/publish", json={}, headers=bearer(fan["token"]))
    assert r.status_code == 403  # a fan token is no way to publish
    assert (await client.get(url, headers=brand.key_headers)).json()["status"] == "draft"
