from __future__ import annotations

import httpx
from starlette.applications import Starlette

from webapp.api_uploads import blob_store
from webapp.context import Services


async def test_transcoded_files_are_served_with_hls_types_and_may_be_cached(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    services: Services = app.state.services
    blobs = blob_store(services.settings)
    playlist = blobs.path("videos/cnt_x/upl_y/hls/master.m3u8")
    playlist.parent.mkdir(parents=True)
    playlist.write_text("#EXTM3U\n")
    segment = playlist.with_name("seg_000.m4s")
    segment.write_bytes(b"\x00\x00\x00\x08styp")
    r = await client.get("/media/videos/cnt_x/upl_y/hls/master.m3u8")
    assert r.status_code == 200 and r.text == "#EXTM3U\n"
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "no-store" not in r.headers.get("cache-control", "")
    seg = await client.get("/media/videos/cnt_x/upl_y/hls/seg_000.m4s")
    assert seg.headers["content-type"] == "video/iso.segment"


async def test_raw_uploads_are_never_served(app: Starlette, client: httpx.AsyncClient) -> None:
    services: Services = app.state.services
    raw = blob_store(services.settings).path("uploads/upl_secret")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_bytes(b"draft footage")
    for path in ("/media/uploads/upl_secret", "/media/videos/../uploads/upl_secret"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert b"draft footage" not in r.content
