"""The embed pages in real Chromium, framed by a brand's page on another origin: a fan follows
through one (its token in the frame's fragment) and claims a coupon through another (its token
handed over by postMessage once the frame says it is ready); the host page hears ready,
resize, followed and claimed from our origin. A page on an origin the account does not list
cannot frame them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.host_origin import Origin, serve_origin
from tests.e2e.support import Server, bearer, mint_fan, sign_up_api

TIMEOUT_MS = 15_000


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Origin]:
    with serve_origin(tmp_path / "shop") as origin:
        origin.url = origin.url.replace("127.0.0.1", "localhost")
        yield origin


def framing_page(server: Server, frames: dict[str, str], token: str) -> str:
    iframes = "".join(
        f'<iframe id="{name}" title="{name}" src="{server.base_url}{src}" '
        'style="border:0;width:420px;height:120px" onload="window.loaded.push(this.id)"></iframe>'
        for name, src in frames.items()
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script>
  window.loaded = [];
  window.got = [];
  window.addEventListener("message", (event) => {{
    const m = event.data;
    if (!m || m.source !== "lifeaccount") return;
    window.got.push([event.origin, m.type, m.widget]);
    if (m.type === "ready" && m.widget === "coupon") {{
      const frame = document.getElementById("coupon").contentWindow;
      const hand = {{ source: "lifeaccount", type: "token", token: {json.dumps(token)} }};
      frame.postMessage(hand, event.origin);
    }}
  }});
</script></head><body><main>{iframes}</main></body></html>"""


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_a_brand_page_frames_widgets_hands_a_token_over_and_hears_what_happens(
    api: httpx.Client, server: Server, page: Page, context: BrowserContext, shop: Origin
) -> None:
    owner = sign_up_api(api)
    key = owner.key_headers
    account = f"/api/v1/accounts/{owner.account_id}"
    assert api.patch(account, json={"embed_origins": [shop.url]}, headers=key).is_success
    now = datetime.now(UTC)
    coupon = api.post(
        f"{account}/coupons",
        json={
            "title": "满100减20",
            "stock": 5,
            "per_fan_limit": 1,
            "valid_from": stamp(now - timedelta(hours=1)),
            "valid_until": stamp(now + timedelta(days=1)),
        },
        headers=key,
    ).json()
    fan = mint_fan(api, owner.account_id, owner.api_key, "f-1")
    frames = {
        "follow": f"/embed/follow?account={owner.account_id}#token={fan['token']}",
        "coupon": f"/embed/coupon?coupon={coupon['id']}",
    }
    url = shop.page("framed.html", framing_page(server, frames, fan["token"]))
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(url)

    follow = page.frame_locator("#follow").locator("la-follow button")
    expect(follow).to_be_enabled()  # the token from the fragment
    follow.click()
    expect(follow).to_have_text("Following")  # at once: optimistic; then the server answers
    page.wait_for_function("window.got.some(([, type]) => type === 'followed')")
    me = bearer(fan["token"])
    assert api.get(account, headers=me).json()["following"] is True
    claim = page.frame_locator("#coupon").locator("la-coupon button")
    expect(claim).to_be_enabled()  # the token from the host's postMessage
    claim.click()
    expect(page.frame_locator("#coupon").locator("la-coupon")).to_contain_text("Claimed: №1")
    assert [c["coupon_id"] for c in api.get("/api/v1/me/coupons", headers=me).json()["items"]] == [
        coupon["id"]
    ]
    page.wait_for_function("window.got.some(([, type]) => type === 'claimed')")
    got = page.evaluate("window.got")
    assert {origin for origin, _, _ in got} == {server.base_url}
    heard = {(kind, widget) for _, kind, widget in got}
    assert {("ready", "follow"), ("ready", "coupon"), ("followed", "follow")} <= heard
    assert {("claimed", "coupon"), ("resize", "follow")} <= heard
    # The fragment's token left the frame's address.
    assert "token" not in page.frame_locator("#follow").locator("body").evaluate(
        "() => location.href"
    )


def test_a_page_on_an_unlisted_origin_cannot_frame_an_embed_page(
    api: httpx.Client, server: Server, context: BrowserContext, tmp_path: Path
) -> None:
    owner = sign_up_api(api)
    account = f"/api/v1/accounts/{owner.account_id}"
    listed = {"embed_origins": ["https://shop.example"]}
    assert api.patch(account, json=listed, headers=owner.key_headers).is_success
    fan = mint_fan(api, owner.account_id, owner.api_key, "f-2")
    with serve_origin(tmp_path / "stranger") as stranger:
        stranger.url = stranger.url.replace("127.0.0.1", "localhost")
        frames = {"follow": f"/embed/follow?account={owner.account_id}#token={fan['token']}"}
        url = stranger.page("framed.html", framing_page(server, frames, fan["token"]))
        page = context.new_page()  # its console holds the browser's CSP refusal
        page.goto(url)
        page.wait_for_function("window.loaded.includes('follow')", timeout=TIMEOUT_MS)
        expect(page.frame_locator("#follow").locator("la-follow")).to_have_count(0)
        assert page.evaluate("window.got") == []
        page.close()
