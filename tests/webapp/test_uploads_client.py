"""A real tus client (tuspy) against a real server (uvicorn on 127.0.0.1, port 0): an upload
stopped after some chunks, a connection dropped in the middle of a chunk, and a new client
that resumes from HEAD's offset; the assembled file must be the original, byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from tusclient.client import TusClient

from tests.conftest import Brand
from tests.webapp.uploads_support import (
    COLLECTION,
    OCTET,
    TUS,
    blob_path,
    upload_settings,
)
from webapp.settings import Settings

CHUNK = 512 << 10
SIZE = 3 * (1 << 20) + 12_345  # ~3 MiB, not a whole number of chunks


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return upload_settings(tmp_path / "data")


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """uvicorn in this event loop, on a socket bound before it starts (so the port is known
    and the first connection waits in the backlog rather than failing)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def drop_mid_chunk(base_url: str, upload_url: str, api_key: str, offset: int, part: bytes) -> None:
    """PATCH a chunk, wait until the server reads its body (100 Continue), send only the
    first bytes of it, then cut the connection, as a phone going into a tunnel would."""
    host, port = base_url.removeprefix("http://").split(":")
    path = upload_url.removeprefix(base_url)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {host}:{port}\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {CHUNK}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.encode())
        assert conn.recv(64).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(part)


async def test_tuspy_stops_drops_and_resumes_to_the_exact_file(
    app: Starlette, client: httpx.AsyncClient, brand: Brand, settings: Settings, tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    source = tmp_path / "clip.mp4"
    source.write_bytes(data)
    key = {"Authorization": f"Bearer {brand.api_key}"}
    async with serving(app) as base_url:
        endpoint = f"{base_url}{COLLECTION}"

        def first_session() -> tuple[str, int]:
            # A stream of our own: given a path, tuspy opens the file again and again and
            # leaves the handles to the garbage collector.
            with source.open("rb") as stream:
                uploader = TusClient(endpoint, headers=key).uploader(
                    file_stream=stream, chunk_size=CHUNK, metadata={"filename": "clip.mp4"}
                )
                for _ in range(3):  # then the app is closed
                    uploader.upload_chunk()
            return str(uploader.url), int(uploader.offset)

        upload_url, stopped_at = await asyncio.to_thread(first_session)
        assert stopped_at == 3 * CHUNK
        upload_id = upload_url.rsplit("/", 1)[1]
        part = data[stopped_at : stopped_at + 200_000]
        await asyncio.to_thread(
            drop_mid_chunk, base_url, upload_url, brand.api_key, 3 * CHUNK, part
        )

        async with httpx.AsyncClient(base_url=base_url) as real:
            # An empty PATCH at the old offset queues behind the dropped one's write lock, so
            # once it answers, the dropped chunk has been dealt with.
            barrier = await real.patch(
                upload_url, headers={**TUS, **OCTET, **key, "Upload-Offset": str(stopped_at)}
            )
            assert barrier.status_code in (204, 409), barrier.text
            offset = int(
                (await real.head(upload_url, headers={**TUS, **key})).headers["upload-offset"]
            )
        # What the server kept of the dropped chunk is whatever arrived, and it is right.
        assert stopped_at <= offset <= stopped_at + len(part)
        assert blob_path(settings, upload_id).read_bytes() == data[:offset]

        def second_session() -> tuple[int, int]:
            with source.open("rb") as stream:
                uploader = TusClient(endpoint, headers=key).uploader(
                    file_stream=stream, url=upload_url, chunk_size=CHUNK, upload_checksum=True
                )
                resumed_at = int(uploader.offset)  # from HEAD
                uploader.upload()
            return resumed_at, int(uploader.offset)

        resumed_at, finished_at = await asyncio.to_thread(second_session)
    assert (resumed_at, finished_at) == (offset, SIZE)
    assembled = blob_path(settings, upload_id).read_bytes()
    assert hashlib.sha256(assembled).hexdigest() == hashlib.sha256(data).hexdigest()
    r = await client.head(f"{COLLECTION}/{upload_id}", headers={**TUS, **key})
    assert r.headers["upload-offset"] == r.headers["upload-length"] == str(SIZE)
    upload = await app.state.services.store.collection("uploads").get(upload_id)
    assert upload["state"] == "complete" and upload["sha256"] == hashlib.sha256(data).hexdigest()
    # The second client sent a sha1 of every chunk: all it sent was checked.
    assert upload["verified_bytes"] == SIZE - offset
