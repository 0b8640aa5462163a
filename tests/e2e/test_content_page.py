"""The content page's player and the console's upload page in a real Chromium against the real
server, with real ffmpeg transcodes: a clip sent by tus becomes a video that plays through
hls.js on ``/c/{id}``; a file chosen on ``/console/upload`` goes up with tus-js-client in 5 MB
chunks, resumes after a reload, is processed and published from the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.e2e.support import Owner, Server, screenshot, sign_up_api
from tests.e2e.test_video_journey import create_video, tus_upload, until
from tests.media.clips import make_clip

pytestmark = pytest.mark.e2e

# Processing a few seconds of small video takes a few seconds; the UI waits on the API's
# own progress, polled by the page, within this bound.
PROCESSING_TIMEOUT_MS = 120_000
CHUNK = 5 * 1024 * 1024


def noisy_clip(path: Path) -> Path:
    """A 2 s clip of about 10 MB (near-lossless noise does not compress): two 5 MB chunks."""
    clip = make_clip(
        path,
        size="480x270",
        seconds=2.0,
        extra=("-vf", "noise=alls=20:allf=t", "-qp", "1", "-f", "mp4"),
    )
    assert clip.stat().st_size > CHUNK + 1024 * 1024, clip.stat().st_size
    return clip


def log_in(context: BrowserContext, server: Server, owner: Owner) -> None:
    context.add_cookies([{"name": "la_session", "value": owner.session, "url": server.base_url}])


def test_a_published_video_plays_through_hls_js(
    server: Server, api: httpx.Client, page: Page, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "tea.mp4", size="640x360", seconds=4.0)
    owner = sign_up_api(api)
    upload_id, _ = tus_upload(server, owner, clip)
    made = create_video(api, owner, upload_id, "秋季新品试饮")
    url = f"/api/v1/contents/{made['id']}"
    went = api.post(f"{url}/publish", json={}, headers=owner.key_headers)
    assert went.json()["status"] in ("pending_media", "published"), went.text
    content: dict[str, Any] = until(
        lambda: api.get(url, headers=owner.key_headers).json(),
        lambda b: b["status"] == "published",
    )
    assert content["url"] == f"{server.base_url}/c/{made['id']}"

    page.goto(f"/c/{made['id']}")
    screenshot(page, "content-video")
    expect(page.get_by_role("heading", level=1)).to_have_text("秋季新品试饮")
    # What this Chromium can decode, recorded for the report: H.264 + AAC in MP4, and MSE.
    codecs = page.evaluate(
        """() => ({
            mp4: document.createElement('video').canPlayType('video/mp4; codecs="avc1.42E01E"'),
            mse: MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E, mp4a.40.2"'),
        })"""
    )
    assert codecs == {"mp4": "probably", "mse": True}, codecs

    video = page.locator("video#player")
    expect(video).to_have_attribute("poster", content["media"]["poster_url"])
    expect(video).to_have_attribute("data-player", "hls.js")
    # Autoplay needs a gesture unless muted; a muted play() is what a test may start.
    page.evaluate(
        "() => { const v = document.getElementById('player'); v.muted = true; v.play(); }"
    )
    page.wait_for_function(
        "() => document.getElementById('player').currentTime > 1.0", timeout=20_000
    )
    state = page.evaluate(
        """() => {
            const v = document.getElementById('player');
            const fetched = performance.getEntriesByType('resource').map((e) => e.name);
            return {
                src: v.currentSrc,
                error: v.error && v.error.code,
                levels: window.laPlayer.levels.map((l) => l.height),
                playlists: fetched.filter((n) => n.endsWith('.m3u8')).length,
                segments: fetched.filter((n) => n.endsWith('.m4s')).length,
                mp4: fetched.filter((n) => n.endsWith('/video.mp4')).length,
            };
        }"""
    )
    # hls.js played it: the element plays a MediaSource (a blob: URL) fed with the fMP4
    # segments it fetched, never the MP4 fallback.
    assert state["src"].startswith("blob:"), state
    assert state["error"] is None
    assert state["levels"] == [r["height"] for r in content["media"]["renditions"]]
    assert state["playlists"] >= 2 and state["segments"] >= 1 and state["mp4"] == 0, state
    screenshot(page, "content-video-playing")

    # The player reported what happened: a view, a play, and once it ended, a completion.
    page.wait_for_function(
        "() => document.getElementById('player').dataset.reported === 'ended'", timeout=20_000
    )
    counters = api.get(url).json()["counters"]
    assert (counters["views"], counters["plays"], counters["play_completions"]) == (1, 1, 1)
    assert counters["completion_rate"] == 1.0


def test_a_video_uploaded_from_the_console_page_resumes_processes_and_publishes(
    server: Server, api: httpx.Client, context: BrowserContext, tmp_path: Path
) -> None:
    clip = noisy_clip(tmp_path / "launch-day.mp4")
    owner = sign_up_api(api)
    log_in(context, server, owner)
    page = context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"{error.name}: {error.message}"))
    tus_calls: list[str] = []

    def on_request(request: Request) -> None:
        if "/api/v1/uploads" in request.url:
            tus_calls.append(request.method)

    page.on("request", on_request)
    page.goto("/console")
    page.get_by_role("link", name="Upload a video").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Upload a video")

    # The first chunk gets through; every later PATCH fails as a dropped connection would.
    patches = 0

    def drop_after_the_first_chunk(route: Any) -> None:
        nonlocal patches
        if route.request.method == "PATCH":
            patches += 1
            if patches > 1:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route("**/api/v1/uploads/**", drop_after_the_first_chunk)
    page.locator("#file").set_input_files(clip)
    expect(page.locator("#title")).to_have_value("launch-day")

    sent: list[str] = []

    def second_patch(request: Request) -> bool:
        # A second PATCH is sent only once the first one's answer came: 5 MB are kept.
        if request.method == "PATCH":
            sent.append(request.url)
        return len(sent) >= 2

    with page.expect_request(second_patch):
        page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-bytes")).to_contain_text("5.0 MB of")
    assert tus_calls[:2] == ["POST", "PATCH"], tus_calls

    # The page is closed mid-way; the same file chosen again carries on from 5 MB. The route
    # goes only after the reload: a retry the old page had queued must not finish the upload.
    page.reload()
    page.unroute("**/api/v1/uploads/**")
    tus_calls.clear()
    page.locator("#file").set_input_files(clip)
    page.get_by_label("Caption").fill("新品发布会")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-status")).to_have_text(re.compile("Resuming|Uploaded"))
    expect(page.locator("#upload-percent")).to_have_text("100%")
    expect(page.locator("#upload-status")).to_have_text("Uploaded.")
    assert "POST" not in tus_calls and tus_calls[0] == "HEAD", tus_calls
    assert tus_calls.count("PATCH") == 1, tus_calls  # only the rest, in one chunk
    content_id = page.locator("#upload").get_attribute("data-content-id")
    assert content_id

    expect(page.locator("#media-status")).to_contain_text("Ready", timeout=PROCESSING_TIMEOUT_MS)
    expect(page.locator("#media-percent")).to_have_text("100%")
    screenshot(page, "upload-ready")
    page.get_by_role("button", name="Publish").click()
    link = page.locator("#view-link")
    expect(link).to_have_attribute("href", f"/c/{content_id}")
    screenshot(page, "upload-published")

    # The server holds the whole file once, as one video, published with this title.
    content = api.get(f"/api/v1/contents/{content_id}").json()
    assert content["status"] == "published" and content["title"] == "launch-day"
    assert content["caption"] == "新品发布会"
    link.click()
    expect(page.locator("video#player")).to_have_attribute("data-player", "hls.js")
    page.goto(f"/@{owner.handle}")
    expect(page.locator(f'li.content-card[data-content-id="{content_id}"]')).to_contain_text(
        "launch-day"
    )
    assert not failures, failures
    page.close()
