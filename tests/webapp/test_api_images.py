"""Images end to end in-process: tus upload → the upload hook queues the resize → a post
names the images → the app's own media worker resizes them → the post goes out with served
JPEGs; bad files end in a clear error, and another account's upload is refused."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from content.images import ImageState, images_of
from media.images import jpeg_size as read_jpeg_size
from tests.conftest import Brand, bearer, mint, sign_up
from tests.media.clips import cached, ffmpeg
from webapp import api_contents
from webapp.context import Services

TUS = {"Tus-Resumable": "1.0.0"}
DEADLINE_S = 60.0  # generous for a loaded 2-core machine; a resize takes well under 1 s


def _picture(factory: pytest.TempPathFactory, name: str, size: str) -> bytes:
    path = cached(
        factory,
        name,
        lambda p: ffmpeg(
            "-f", "lavfi", "-i", f"testsrc2=size={size}", "-frames:v", "1", "-update", "1",
            "-f", "image2", str(p),
        ),
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture(scope="session")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _picture(tmp_path_factory, "api-1600x1200.png", "1600x1200")


@pytest.fixture(scope="session")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _picture(tmp_path_factory, "api-600x900.jpg", "600x900")


async def upload(client: httpx.AsyncClient, brand: Brand, data: bytes) -> str:
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


def tiny_png(width: int = 64, height: int = 48) -> bytes:
    """A grey PNG made here (PNG spec: signature, IHDR, one zlib IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))  # filter 0, grey 128
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def ready_image(app: Starlette, client: httpx.AsyncClient, brand: Brand) -> str:
    """The id of a tus upload of a small PNG, already resized: a content naming it publishes
    at once (for tests about something else that need an image)."""
    services: Services = app.state.services
    image = await upload(client, brand, tiny_png())
    deadline = time.monotonic() + DEADLINE_S
    while (await images_of(services.store, [image]))[image].state is ImageState.PROCESSING:
        assert time.monotonic() < deadline, "the upload hook's resize never finished"
        await asyncio.sleep(0.05)  # polling the real record
    assert (await images_of(services.store, [image]))[image].state is ImageState.READY
    return image


async def until(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], done: Any
) -> dict[str, Any]:
    """Poll what the API shows until ``done`` holds, or fail at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        body: dict[str, Any] = (await client.get(url, headers=headers)).json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never got there: {body}")
        await asyncio.sleep(0.05)  # polling the real state, not timing a result


def jpeg_size(data: bytes) -> tuple[int, int]:
    size = read_jpeg_size(data)
    return size.width, size.height


async def test_a_post_with_two_images_is_published_with_served_jpegs(
    client: httpx.AsyncClient, brand: Brand, landscape: bytes, portrait: bytes
) -> None:
    first = await upload(client, brand, landscape)
    second = await upload(client, brand, portrait)
    created = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": "今日上新", "image_upload_ids": [first, second]},
        headers=brand.key_headers,
    )
    assert created.status_code == 201, created.text
    assert [i["upload_id"] for i in created.json()["images"]] == [first, second]
    url = f"/api/v1/contents/{created.json()['id']}"
    published = await client.post(f"{url}/publish", json={}, headers=brand.key_headers)
    assert published.status_code == 200, published.text
    assert published.json()["status"] in ("pending_media", "published")

    out = await until(client, url, brand.key_headers, lambda b: b["status"] == "published")
    images = out["images"]
    assert [i["state"] for i in images] == ["ready", "ready"]
    assert [(i["width"], i["height"]) for i in images] == [(1440, 1080), (600, 900)]
    expected = {
        first: {"url": (1440, 1080), "thumb_url": (360, 270)},
        second: {"url": (600, 900), "thumb_url": (240, 360)},
    }
    for image in images:
        assert image["error_code"] is None
        for name, size in expected[image["upload_id"]].items():
            assert image[name].startswith(f"/media/images/{image['upload_id']}/")
            served = await client.get(image[name])  # anonymous: published pictures are public
            assert served.status_code == 200, image[name]
            assert served.headers["content-type"] == "image/jpeg"
            assert jpeg_size(served.content) == size

    # Fans see the same images in the account's feed.
    fan = await mint(client, brand)
    feed = await client.get(
        f"/api/v1/accounts/{brand.account_id}/contents", headers=bearer(fan["token"])
    )
    assert feed.json()["items"][0]["images"] == images


async def test_random_bytes_named_as_an_image_end_in_a_clear_error(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    junk = await upload(client, brand, bytes(range(256)) * 16)
    created = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": "看图", "image_upload_ids": [junk]},
        headers=brand.key_headers,
    )
    assert created.status_code == 201, created.text
    url = f"/api/v1/contents/{created.json()['id']}"
    published = await client.post(f"{url}/publish", json={}, headers=brand.key_headers)
    assert published.json()["status"] == "pending_media"

    out = await until(
        client, url, brand.key_headers, lambda b: b["images"][0]["state"] != "processing"
    )
    image = out["images"][0]
    assert image["state"] == "failed" and image["error_code"] == "not_an_image"
    assert "JPEG, PNG, WebP or GIF" in image["error"] and image["url"] is None
    assert out["status"] == "draft"
    again = await client.post(f"{url}/publish", json={}, headers=brand.key_headers)
    assert again.status_code == 409, again.text
    assert (again.json()["code"], again.json()["field"]) == ("image_failed", "image_upload_ids.0")
    assert (await client.get(url)).status_code == 404  # never out to fans


async def test_another_accounts_upload_is_refused_naming_the_field(
    client: httpx.AsyncClient, brand: Brand, portrait: bytes
) -> None:
    other = await sign_up(client)
    theirs = await upload(client, other, portrait)
    mine = await upload(client, brand, portrait)
    contents = f"/api/v1/accounts/{brand.account_id}/contents"
    r = await client.post(
        contents,
        json={"kind": "post", "image_upload_ids": [mine, theirs]},
        headers=brand.key_headers,
    )
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "image_upload_ids.1"
    article = {
        "kind": "article",
        "title": "图文",
        "blocks": [
            {"type": "paragraph", "text": "看这里"},
            {"type": "image", "upload_id": theirs, "caption": "别人的"},
        ],
    }
    r = await client.post(contents, json=article, headers=brand.key_headers)
    assert r.status_code == 404 and r.json()["field"] == "blocks.1.upload_id", r.text
    # The same refusal on an edit.
    post = await client.post(
        contents, json={"kind": "post", "image_upload_ids": [mine]}, headers=brand.key_headers
    )
    assert post.status_code == 201, post.text
    r = await client.patch(
        f"/api/v1/contents/{post.json()['id']}",
        json={"image_upload_ids": [theirs]},
        headers=brand.key_headers,
    )
    assert r.status_code == 404 and r.json()["field"] == "image_upload_ids.0", r.text


async def test_a_feed_page_looks_its_images_up_in_one_query(
    client: httpx.AsyncClient, brand: Brand, portrait: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = await upload(client, brand, portrait)
    contents = f"/api/v1/accounts/{brand.account_id}/contents"
    for n in range(3):
        made = await client.post(
            contents,
            json={"kind": "post", "text": f"第{n}条", "image_upload_ids": [image]},
            headers=brand.key_headers,
        )
        url = f"/api/v1/contents/{made.json()['id']}"
        await client.post(f"{url}/publish", json={}, headers=brand.key_headers)
        await until(client, url, brand.key_headers, lambda b: b["status"] == "published")
    calls: list[list[str]] = []
    real = api_contents.images_of

    async def counted(store: Any, ids: Any) -> Any:
        calls.append(list(ids))
        return await real(store, ids)

    monkeypatch.setattr(api_contents, "images_of", counted)
    feed = await client.get(contents)
    assert len(feed.json()["items"]) == 3
    assert len(calls) == 1 and calls[0] == [image] * 3
    assert {i["images"][0]["state"] for i in feed.json()["items"]} == {"ready"}


async def test_a_completed_image_upload_is_resized_before_any_content_names_it(
    app: Starlette, client: httpx.AsyncClient, brand: Brand
) -> None:
    services: Services = app.state.services
    image = await ready_image(app, client, brand)  # no content names it: the hook queued it
    assert (await images_of(services.store, [image]))[image].width == 64
    junk = await upload(client, brand, b"not an image at all")
    assert await images_of(services.store, [junk]) == {}  # only image bytes are queued


async def test_only_resized_images_are_served(client: httpx.AsyncClient, brand: Brand) -> None:
    raw = await upload(client, brand, b"\x89PNG\r\n\x1a\n secret draft bytes")
    for path in (f"/media/images/../uploads/{raw}", f"/media/uploads/{raw}"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert b"secret draft" not in r.content
