"""The host and viewer pages in real Chromium against the real server: a host goes live from a
fake camera through the host page (getUserMedia + WHIP with the staff session), a viewer's page
plays the live over WebRTC (WHEP) and another over HLS, both advancing, and the host ends it;
the viewer's page then links the replay, which plays."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.support import Server, screenshot, sign_up_api

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
LIVE_TIMEOUT_MS = 45_000
REPLAY_TIMEOUT_MS = 120_000  # the room page polls every 5 s; the replay is transcoded first


@pytest.fixture(scope="module")
def camera_browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *FAKE_MEDIA]
    )
    yield launched
    launched.close()


def advancing(page: Page, player: str) -> None:
    page.wait_for_function(
        f"() => {{ const v = document.getElementById('live-player');"
        f" return v && v.dataset.player === '{player}' && v.currentTime > 1.5; }}",
        timeout=LIVE_TIMEOUT_MS,
    )


def test_a_host_goes_live_from_the_page_and_viewers_watch_over_webrtc_and_hls(
    server: Server, api: httpx.Client, camera_browser: Browser
) -> None:
    owner = sign_up_api(api)
    made = api.post(
        f"/api/v1/accounts/{owner.account_id}/rooms",
        json={"title": "直播间"},
        headers=owner.key_headers,
    )
    room = made.json()
    host_context = camera_browser.new_context(base_url=server.base_url)
    host_context.add_cookies(
        [{"name": "la_session", "value": owner.session, "url": server.base_url}]
    )
    viewers = camera_browser.new_context(base_url=server.base_url)
    try:
        host = host_context.new_page()
        host.goto(f"/console/rooms/{room['id']}/host")
        host.wait_for_function(
            "() => document.getElementById('host').dataset.state === 'ready'", timeout=20_000
        )
        assert host.locator("#camera option").count() >= 1  # the fake camera is listed
        host.click("#go-live")
        host.wait_for_function(
            "() => document.getElementById('host').dataset.state === 'live'",
            timeout=LIVE_TIMEOUT_MS,
        )
        assert api.get(f"/api/v1/rooms/{room['id']}").json()["state"] == "live"
        screenshot(host, "live-host")

        webrtc = viewers.new_page()
        webrtc.goto(f"/r/{room['id']}")
        advancing(webrtc, "whep")
        screenshot(webrtc, "live-viewer-webrtc")
        # The host sees what it sends and what the server receives and serves.
        host.wait_for_function(
            "() => { const h = document.getElementById('live-health');"
            " return h.dataset.publishing === 'true' && h.dataset.seats === '1'"
            " && h.textContent.includes('HLS on air'); }",
            timeout=LIVE_TIMEOUT_MS,
        )
        assert "sending " in host.text_content("#live-health")
        screenshot(host, "live-host-health")
        # The HLS viewer arrives before the first segment may exist: the page keeps asking.
        hls = viewers.new_page()
        hls.goto(f"/r/{room['id']}?player=hls")
        advancing(hls, "hls")
        screenshot(hls, "live-viewer-hls")

        host.click("#end-live")
        host.wait_for_function(
            "() => document.getElementById('host').dataset.state === 'ended'", timeout=20_000
        )
        assert api.get(f"/api/v1/rooms/{room['id']}").json()["state"] == "ended"
        # The viewer's page follows: ended, then the replay link once the recording went
        # through the content pipeline, and the replay plays.
        webrtc.wait_for_selector("a.replay", timeout=REPLAY_TIMEOUT_MS)
        webrtc.click("a.replay")
        webrtc.wait_for_selector("#player")
        webrtc.evaluate(
            "() => { const v = document.getElementById('player'); v.muted = true; v.play(); }"
        )
        webrtc.wait_for_function(
            "() => document.getElementById('player').currentTime > 1.0",
            timeout=LIVE_TIMEOUT_MS,
        )
        screenshot(webrtc, "live-replay")
    finally:
        viewers.close()
        host_context.close()
