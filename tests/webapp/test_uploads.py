"""The tus 1.0 upload routes in-process: the protocol, every refusal as problem+json naming
its header or field, who may touch an upload, and nothing kept from a refused chunk."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import Brand, bearer, make_settings, mint, sign_up
from tests.webapp.uploads_support import (
    COLLECTION,
    MAX_UPLOAD,
    OCTET,
    TUS,
    as_staff,
    assert_problem,
    blob_path,
    checksum,
    create,
    head,
    meta,
    new_upload,
    patch,
    upload_settings,
)
from webapp.app import create_app
from webapp.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return upload_settings(tmp_path / "data")


async def test_discovery_needs_no_credentials_nor_version(client: httpx.AsyncClient) -> None:
    r = await client.options(COLLECTION)
    assert r.status_code == 204
    assert r.headers["tus-resumable"] == r.headers["tus-version"] == "1.0.0"
    assert r.headers["tus-max-size"] == str(MAX_UPLOAD)
    assert set(r.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert r.headers["tus-checksum-algorithm"] == "sha1,sha256,md5"


async def test_an_upload_in_two_chunks(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    data = os.urandom(300_000)
    r = await create(client, brand.key_headers, len(data), meta(filename="猫.mp4", filetype="v"))
    assert r.status_code == 201 and r.headers["tus-resumable"] == "1.0.0"
    upload_id = r.json()["id"]
    assert r.headers["location"] == f"http://testserver{COLLECTION}/{upload_id}"
    assert r.json() | {"expires_at": ""} == {
        "id": upload_id,
        "url": r.headers["location"],
        "length": len(data),
        "offset": 0,
        "state": "receiving",
        "expires_at": "",
    }
    assert r.headers["upload-offset"] == "0" and r.headers["upload-expires"].endswith(" GMT")
    r = await head(client, upload_id, brand.key_headers)
    assert r.status_code == 200 and r.content == b""
    assert (r.headers["upload-offset"], r.headers["upload-length"]) == ("0", str(len(data)))
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["upload-metadata"] == meta(filename="猫.mp4", filetype="v")
    r = await patch(client, upload_id, brand.key_headers, 0, data[:100_000])
    assert r.status_code == 204 and r.headers["upload-offset"] == "100000"
    assert "upload-expires" in r.headers
    r = await patch(client, upload_id, brand.key_headers, 100_000, data[100_000:])
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
    assert "upload-expires" not in r.headers  # complete: it no longer expires
    r = await head(client, upload_id, brand.key_headers)
    assert r.headers["upload-offset"] == r.headers["upload-length"] == str(len(data))
    assert blob_path(settings, upload_id).read_bytes() == data
    # An empty PATCH at the end changes nothing; a byte more is past the end.
    r = await patch(client, upload_id, brand.key_headers, len(data), b"")
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
    r = await patch(client, upload_id, brand.key_headers, len(data), b"x")
    assert_problem(r, 413, "body")
    assert blob_path(settings, upload_id).read_bytes() == data


async def test_an_empty_file_is_complete_at_creation(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    r = await create(client, brand.key_headers, 0)
    assert r.status_code == 201 and r.json()["state"] == "complete"
    r = await head(client, r.json()["id"], brand.key_headers)
    assert r.headers["upload-offset"] == r.headers["upload-length"] == "0"


async def test_every_request_but_options_names_tus_1_0_0(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    upload_id = await new_upload(client, brand.key_headers, 10)
    item = f"{COLLECTION}/{upload_id}"
    for version in (None, "0.2.2", "1.0"):
        sent = {**brand.key_headers, **OCTET, "Upload-Length": "10", "Upload-Offset": "0"}
        if version is not None:
            sent["Tus-Resumable"] = version
        for method, url in (("POST", COLLECTION), ("PATCH", item), ("DELETE", item)):
            r = await client.request(method, url, headers=sent, content=b"abc")
            assert_problem(r, 412, "Tus-Resumable", "tus_version_unsupported")
            assert r.headers["tus-version"] == "1.0.0"
        r = await client.head(item, headers=sent)
        assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
    r = await head(client, upload_id, brand.key_headers)
    assert r.headers["upload-offset"] == "0"  # none of them did anything


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        ({}, 400, "Upload-Length"),
        ({"Upload-Length": "ten"}, 400, "Upload-Length"),
        ({"Upload-Length": "-1"}, 400, "Upload-Length"),
        ({"Upload-Length": "1e3"}, 400, "Upload-Length"),
        ({"Upload-Length": str(MAX_UPLOAD + 1)}, 413, "Upload-Length"),
        ({"Upload-Length": "5", "Upload-Metadata": "filename !!!"}, 400, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "a YQ==,a Yg=="}, 400, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "a YQ== b"}, 400, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "a /w=="}, 400, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": ",a YQ=="}, 400, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Checksum": "crc32 AAAA"}, 400, "Upload-Checksum"),
    ],
)
async def test_bad_creation_headers(
    app: Starlette,
    client: httpx.AsyncClient,
    brand: Brand,
    settings: Settings,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    r = await client.post(COLLECTION, headers={**TUS, **brand.key_headers, **headers})
    assert_problem(r, status, field)
    # Refused before anything was made: no file, no record.
    assert not (settings.data_dir / "media" / "uploads").exists()
    assert await app.state.services.store.collection("uploads").count({}) == 0


async def test_creation_with_upload(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    data = b"first bytes of the file"
    sent = {**brand.key_headers, **OCTET, "Upload-Checksum": checksum("sha256", data)}
    r = await create(client, sent, 100, content=data)
    assert r.status_code == 201 and r.headers["upload-offset"] == str(len(data))
    first = r.json()["id"]
    assert blob_path(settings, first).read_bytes() == data
    # A refused first chunk leaves no upload behind: its URL was never given out.
    bad = {**sent, "Upload-Checksum": checksum("sha256", b"other")}
    assert_problem(await create(client, bad, 100, content=data), 460, "Upload-Checksum")
    r = await create(client, {**brand.key_headers, "Content-Type": "text/plain"}, 9, content=b"x")
    assert_problem(r, 415, "Content-Type")
    assert_problem(await create(client, sent, 5, content=data), 413, "body")
    assert os.listdir(settings.data_dir / "media" / "uploads") == [first]


async def test_patch_refusals_keep_nothing(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    upload_id = await new_upload(client, brand.key_headers, 1000)
    key = brand.key_headers
    assert (await patch(client, upload_id, key, 0, b"a" * 100)).status_code == 204
    url = f"{COLLECTION}/{upload_id}"
    r = await client.patch(url, headers={**TUS, **key, "Upload-Offset": "100"}, content=b"b")
    assert_problem(r, 415, "Content-Type", "unsupported_media_type")
    r = await client.patch(url, headers={**TUS, **key, **OCTET}, content=b"b")
    assert_problem(r, 400, "Upload-Offset")
    assert_problem(await patch(client, upload_id, key, -5, b"b"), 400, "Upload-Offset")
    r = await patch(client, upload_id, key, 0, b"b")
    assert_problem(r, 409, "Upload-Offset", "offset_mismatch")
    assert_problem(await patch(client, upload_id, key, 101, b"b"), 409, "Upload-Offset")
    assert_problem(await patch(client, upload_id, key, 100, b"c" * 901), 413, "body")

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: caught while streaming
        for _ in range(10):
            yield b"d" * 100

    r = await client.patch(
        url, headers={**TUS, **OCTET, **key, "Upload-Offset": "100"}, content=streamed()
    )
    assert_problem(r, 413, "body")
    for value, code in (("md4 AAAA", "checksum_algorithm_unsupported"), ("sha1", "")):
        r = await patch(client, upload_id, key, 100, b"e", **{"Upload-Checksum": value})
        assert_problem(r, 400, "Upload-Checksum", code)
    wrong = checksum("sha1", b"something else")
    r = await patch(client, upload_id, key, 100, b"f" * 500, **{"Upload-Checksum": wrong})
    assert_problem(r, 460, "Upload-Checksum", "checksum_mismatch")
    assert (await head(client, upload_id, key)).headers["upload-offset"] == "100"
    assert blob_path(settings, upload_id).read_bytes() == b"a" * 100
    for algorithm in ("sha1", "sha256", "md5"):
        chunk = algorithm.encode() * 10
        offset = int((await head(client, upload_id, key)).headers["upload-offset"])
        good = checksum(algorithm, chunk)
        r = await patch(client, upload_id, key, offset, chunk, **{"Upload-Checksum": good})
        assert r.status_code == 204 and int(r.headers["upload-offset"]) == offset + len(chunk)
    assert blob_path(settings, upload_id).read_bytes() == b"a" * 100 + b"sha1" * 10 + (
        b"sha256" * 10 + b"md5" * 10
    )


async def test_concurrent_patches_at_one_offset_one_wins(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    upload_id = await new_upload(client, brand.key_headers, 1 << 20)
    chunks = [bytes([i]) * 200_000 for i in range(6)]
    answers = await asyncio.gather(
        *(patch(client, upload_id, brand.key_headers, 0, c) for c in chunks)
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [204, 409, 409, 409, 409, 409], statuses
    winner = chunks[[r.status_code for r in answers].index(204)]
    for r in answers:
        if r.status_code == 409:
            assert_problem(r, 409, "Upload-Offset", "offset_mismatch")
    assert blob_path(settings, upload_id).read_bytes() == winner
    assert (await head(client, upload_id, brand.key_headers)).headers["upload-offset"] == "200000"


async def test_only_the_uploads_own_account_may_touch_it(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    upload_id = await new_upload(client, brand.key_headers, 10)
    other = await sign_up(client)
    url = f"{COLLECTION}/{upload_id}"
    r = await head(client, upload_id, other.key_headers)
    assert r.status_code == 404 and r.headers["tus-resumable"] == "1.0.0"
    assert_problem(await patch(client, upload_id, other.key_headers, 0, b"x"), 404, "upload_id")
    r = await client.delete(url, headers={**TUS, **other.key_headers})
    assert_problem(r, 404, "upload_id", "upload_not_found")
    csrf = as_staff(client, other)
    assert_problem(await patch(client, upload_id, csrf, 0, b"x"), 404, "upload_id")
    client.cookies.clear()
    assert_problem(await patch(client, "upl_nope", brand.key_headers, 0, b"x"), 404, "upload_id")
    assert blob_path(settings, upload_id).read_bytes() == b""


async def test_credentials(client: httpx.AsyncClient, brand: Brand) -> None:
    assert_problem(await create(client, {}, 5), 401, "Authorization", "authentication_required")
    r = await create(client, {"Authorization": "Bearer lak_forged"}, 5)
    assert_problem(r, 401, "Authorization")
    fan = await mint(client, brand)
    assert_problem(await create(client, bearer(fan["token"]), 5), 403, "Authorization")
    mine = meta(account_id=brand.account_id)
    csrf = as_staff(client, brand)
    assert_problem(await create(client, {}, 5, mine), 403, "X-CSRF-Token", "csrf_failed")
    r = await create(client, csrf, 5, meta(filename="x"))
    assert_problem(r, 422, "Upload-Metadata.account_id")
    other = await sign_up(client)
    client.cookies = brand.cookies
    r = await create(client, csrf, 5, meta(account_id=other.account_id))
    assert_problem(r, 403, "Upload-Metadata.account_id", "not_staff")
    r = await create(client, csrf, 5, meta(account_id="acc_missing"))
    assert_problem(r, 404, "Upload-Metadata.account_id")
    r = await create(client, csrf, 5, mine)
    assert r.status_code == 201
    staff_upload = r.json()["id"]
    assert (await patch(client, staff_upload, csrf, 0, b"12")).status_code == 204
    assert_problem(await patch(client, staff_upload, {}, 2, b"3"), 403, "X-CSRF-Token")
    assert (await head(client, staff_upload, {})).status_code == 200  # HEAD is safe
    client.cookies.clear()
    # The brand's key reaches the upload its staff made, and names its own account freely.
    assert (await patch(client, staff_upload, brand.key_headers, 2, b"345")).status_code == 204
    assert (await create(client, brand.key_headers, 5, mine)).status_code == 201
    r = await create(client, brand.key_headers, 5, meta(account_id=other.account_id))
    assert_problem(r, 403, "Upload-Metadata.account_id", "wrong_account")


async def test_a_moderator_may_not_upload(client: httpx.AsyncClient, brand: Brand) -> None:
    upload_id = await new_upload(client, brand.key_headers, 5)
    csrf = as_staff(client, brand)
    inv = await client.post(
        f"/api/v1/accounts/{brand.account_id}/invitations",
        json={"email": "mod@x.example", "role": "moderator"},
        headers=csrf,
    )
    client.cookies.clear()
    accepted = await client.post(
        "/api/v1/invitations/accept", json={"token": inv.json()["token"], "password": "modpass12"}
    )
    assert accepted.status_code == 201
    mod = {"X-CSRF-Token": (await client.get("/api/v1/session")).json()["csrf_token"]}
    r = await create(client, mod, 5, meta(account_id=brand.account_id))
    assert_problem(r, 403, "Upload-Metadata.account_id", "role_required")
    assert_problem(await patch(client, upload_id, mod, 0, b"x"), 403, None, "role_required")


async def test_termination(client: httpx.AsyncClient, brand: Brand, settings: Settings) -> None:
    key = brand.key_headers
    upload_id = await new_upload(client, key, 10)
    assert (await patch(client, upload_id, key, 0, b"12345")).status_code == 204
    url = f"{COLLECTION}/{upload_id}"
    r = await client.delete(url, headers={**TUS, **key})
    assert r.status_code == 204 and r.headers["tus-resumable"] == "1.0.0"
    assert not blob_path(settings, upload_id).exists()
    assert (await head(client, upload_id, key)).status_code == 410
    assert_problem(await patch(client, upload_id, key, 5, b"6"), 410, None, "upload_gone")
    assert_problem(await client.delete(url, headers={**TUS, **key}), 410, None)
    # X-HTTP-Method-Override, for clients that can only POST.
    other = await new_upload(client, key, 4)
    post = {**TUS, **OCTET, **key, "Upload-Offset": "0"}
    item = f"{COLLECTION}/{other}"
    r = await client.post(item, headers={**post, "X-HTTP-Method-Override": "PATCH"}, content=b"ab")
    assert r.status_code == 204 and r.headers["upload-offset"] == "2"
    assert_problem(await client.post(item, headers=post), 405, "X-HTTP-Method-Override")
    r = await client.post(item, headers={**post, "X-HTTP-Method-Override": "HEAD"})
    assert_problem(r, 405, "X-HTTP-Method-Override")
    r = await client.post(item, headers={**post, "X-HTTP-Method-Override": "DELETE"})
    assert r.status_code == 204 and not blob_path(settings, other).exists()


async def test_an_account_has_a_bounded_number_of_incomplete_uploads(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = [await new_upload(client, brand.key_headers, 10) for _ in range(10)]
    r = await create(client, brand.key_headers, 10)
    assert_problem(r, 429, None, "upload_quota_exceeded")
    assert (await create(client, brand.key_headers, 0)).status_code == 201  # complete at once
    await patch(client, made[0], brand.key_headers, 0, b"0123456789")  # one completes
    assert (await create(client, brand.key_headers, 10)).status_code == 201


async def test_the_bytes_that_arrived_before_a_disconnect_are_kept(
    app: Starlette, client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    """tus asks servers to keep what arrived; with a checksum nothing can be kept."""
    upload_id = await new_upload(client, brand.key_headers, 100)

    async def drop_after(part: bytes, offset: int, **extra: str) -> None:
        headers = {**TUS, **OCTET, **brand.key_headers, "Upload-Offset": str(offset), **extra}
        messages = [
            {"type": "http.request", "body": part, "more_body": True},
            {"type": "http.disconnect"},
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "PATCH",
            "scheme": "http",
            "path": f"{COLLECTION}/{upload_id}",
            "raw_path": f"{COLLECTION}/{upload_id}".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", b"50"), (b"host", b"testserver")],
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
            "state": {},
        }

        async def receive() -> dict[str, object]:
            return messages.pop(0)

        async def send(message: object) -> None:
            pass

        await app(scope, receive, send)

    await drop_after(b"x" * 20, 0)
    assert (await head(client, upload_id, brand.key_headers)).headers["upload-offset"] == "20"
    await drop_after(b"y" * 20, 20, **{"Upload-Checksum": checksum("sha1", b"y" * 50)})
    assert (await head(client, upload_id, brand.key_headers)).headers["upload-offset"] == "20"
    assert blob_path(settings, upload_id).read_bytes() == b"x" * 20


async def test_a_chunk_another_process_is_writing_answers_423(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    upload_id = await new_upload(client, brand.key_headers, 10)
    holder = subprocess.Popen(  # another `serve` process in the middle of a chunk
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(blob_path(settings, upload_id)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        r = await patch(client, upload_id, brand.key_headers, 0, b"x" * 10)
        assert_problem(r, 423, "upload_id", "upload_locked")
        assert "HEAD" in r.json()["detail"]
    finally:
        holder.communicate("", timeout=10)
    assert (await head(client, upload_id, brand.key_headers)).headers["upload-offset"] == "0"
    assert (await patch(client, upload_id, brand.key_headers, 0, b"x" * 10)).status_code == 204


async def test_an_upload_that_would_eat_the_disk_reserve_is_refused_at_creation(
    tmp_path: Path,
) -> None:
    free = shutil.disk_usage(tmp_path).free
    # The reserve leaves room for small uploads (and whatever else writes to this disk
    # meanwhile), not for a large one.
    settings = make_settings(
        tmp_path / "data", min_free_bytes=free - (256 << 20), max_upload_bytes=8 << 30
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            brand = await sign_up(client)
            small = await new_upload(client, brand.key_headers, 10)  # fits beside the reserve
            assert small.startswith("upl_")
            r = await client.post(
                COLLECTION,
                headers={**TUS, **brand.key_headers, "Upload-Length": str(4 << 30)},
            )
            assert_problem(r, 507, "Upload-Length", "insufficient_storage")
            assert "try again later" in r.json()["detail"]
            stored = sorted(p.name for p in (settings.data_dir / "media" / "uploads").iterdir())
            assert stored == [small]
