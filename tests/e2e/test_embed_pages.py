"""The embed pages in real Chromium, framed by a brand's page on another origin: a fan follows
through one (its token in the frame's fragment) and claims a coupon through another (its token
handed over by postMessage once the frame says it is ready); the host page hears ready,
resize, followed and claimed from our origin. A page on an origin the account does not list
cannot frame them."""

from __future__ import annotations

import json

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.host_origin import Origin
from tests.e2e.live_support import create_room
from tests.e2e.support import (
    Server,
    bearer,
    fund_budget,
    make_coupon,
    mint_fan,
    publish_post,
    sign_up_api,
)

TIMEOUT_MS = 15_000


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
    if (m.type === "ready" && m.widget !== "follow") {{
      const frame = document.getElementById(m.widget).contentWindow;
      const hand = {{ source: "lifeaccount", type: "token", token: {json.dumps(token)} }};
      frame.postMessage(hand, event.origin);
    }}
  }});
</script></head><body><main>{iframes}</main></body></html>"""


def heard(page: Page, kind: str) -> None:
    page.wait_for_function(f"window.got.some(([, type]) => type === {kind!r})", timeout=TIMEOUT_MS)


def test_a_brand_page_frames_widgets_hands_a_token_over_and_hears_what_happens(
    api: httpx.Client, server: Server, page: Page, context: BrowserContext, shop: Origin
) -> None:
    owner = sign_up_api(api)
    key = owner.key_headers
    account = f"/api/v1/accounts/{owner.account_id}"
    assert api.patch(account, json={"embed_origins": [shop.url]}, headers=key).is_success
    content_id = publish_post(api, owner, "框里")
    poll = api.post(
        f"{account}/polls",
        json={"question": "框？", "options": ["是", "否"], "closes_in_s": 600},
        headers=key,
    ).json()
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
    fund_budget(api, owner, 100)
    coupon = make_coupon(api, owner)
    fan = mint_fan(api, owner.account_id, owner.api_key, "f-1")
    frames = {
        "follow": f"/embed/follow?account={owner.account_id}#token={fan['token']}",
        "coupon": f"/embed/coupon?coupon={coupon['id']}",
        "like": f"/embed/like?content={content_id}",
        "comments": f"/embed/comments?content={content_id}",
        "poll": f"/embed/poll?poll={poll['id']}",
        "red-packet": f"/embed/red-packet?room={room['id']}",
    }
    url = shop.page("framed.html", framing_page(server, frames, fan["token"]))
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(url)

    follow = page.frame_locator("#follow").locator("la-follow button")
    expect(follow).to_be_enabled()  # the token from the fragment
    follow.click()
    expect(follow).to_have_text("Following")  # at once: optimistic; then the server answers
    heard(page, "followed")
    me = bearer(fan["token"])
    assert api.get(account, headers=me).json()["following"] is True
    claim = page.frame_locator("#coupon").locator("la-coupon button")
    expect(claim).to_be_enabled()  # the token from the host's postMessage
    claim.click()
    expect(page.frame_locator("#coupon").locator("la-coupon")).to_contain_text("Claimed: №1")
    assert [c["coupon_id"] for c in api.get("/api/v1/me/coupons", headers=me).json()["items"]] == [
        coupon["id"]
    ]
    heard(page, "claimed")
    like = page.frame_locator("#like").locator("la-like button")
    expect(like).to_be_enabled()
    like.click()
    heard(page, "liked")
    assert api.get(f"/api/v1/contents/{content_id}").json()["counters"]["likes"] == 1
    comments = page.frame_locator("#comments")
    expect(comments.locator("la-comments input")).to_be_enabled()
    comments.locator("la-comments input").fill("框里写的")
    comments.locator("la-comments button").click()
    heard(page, "commented")
    said = api.get(f"/api/v1/contents/{content_id}/comments").json()["items"]
    assert [c["text"] for c in said] == ["框里写的"]
    answer = page.frame_locator("#poll").locator("la-poll button", has_text="否")
    expect(answer).to_be_enabled()
    answer.click()
    heard(page, "voted")
    assert api.get(f"/api/v1/polls/{poll['id']}").json()["counts"] == [0, 1]
    packet = {"total": 30, "count": 3, "mode": "equal"}
    assert api.post(f"/api/v1/rooms/{room['id']}/red-packets", json=packet, headers=key).is_success
    grab = page.frame_locator("#red-packet").locator("la-red-packet button")
    expect(grab).to_have_text("Grab")
    grab.click()
    heard(page, "grabbed")
    wallets = api.get("/api/v1/me/wallets", headers=me).json()["items"]
    assert [w["balance"] for w in wallets] == [10]
    got = page.evaluate("window.got")
    assert {origin for origin, _, _ in got} == {server.base_url}
    told = {(kind, widget) for _, kind, widget in got}
    assert {("ready", name) for name in frames} <= told
    assert {("resize", name) for name in frames} <= told
    assert {
        ("followed", "follow"),
        ("claimed", "coupon"),
        ("liked", "like"),
        ("commented", "comments"),
        ("voted", "poll"),
        ("grabbed", "red-packet"),
    } <= told
    # The fragment's token left the frame's address.
    assert "token" not in page.frame_locator("#follow").locator("body").evaluate(
        "() => location.href"
    )


def test_a_page_on_an_unlisted_origin_cannot_frame_an_embed_page(
    api: httpx.Client, server: Server, context: BrowserContext, stranger: Origin
) -> None:
    owner = sign_up_api(api)
    account = f"/api/v1/accounts/{owner.account_id}"
    listed = {"embed_origins": ["https://shop.example"]}
    assert api.patch(account, json=listed, headers=owner.key_headers).is_success
    fan = mint_fan(api, owner.account_id, owner.api_key, "f-2")
    frames = {"follow": f"/embed/follow?account={owner.account_id}#token={fan['token']}"}
    url = stranger.page("framed.html", framing_page(server, frames, fan["token"]))
    page = context.new_page()  # its console holds the browser's CSP refusal
    page.goto(url)
    page.wait_for_function("window.loaded.includes('follow')", timeout=TIMEOUT_MS)
    expect(page.frame_locator("#follow").locator("la-follow")).to_have_count(0)
    assert page.evaluate("window.got") == []
    page.close()


BRIDGE = """
window.bridged = [];
window.wx = { miniProgram: {
  postMessage: (message) => window.bridged.push(["postMessage", message.data.type]),
  navigateTo: (options) => window.bridged.push(["navigateTo", options.url]),
} };
"""


def test_inside_a_mini_program_the_embed_page_uses_its_bridge(
    api: httpx.Client, context: BrowserContext
) -> None:
    """A web-view is a page of its own, not a frame: the host's bridge (wx.miniProgram, which
    the mini-program injects; stood in for here by an object with its two calls) hears the
    events, and a service link opens the mini-program page with the click id in its query."""
    owner = sign_up_api(api)
    key = owner.key_headers
    shop = {"app_id": "wx_shop", "page": "pages/goods", "query": {"sku": "A1"}, "title": "买茶"}
    article = {
        "kind": "article",
        "title": "新茶",
        "blocks": [{"type": "paragraph", "text": "新茶上市"}],
        "service_links": [shop],
    }
    made = api.post(f"/api/v1/accounts/{owner.account_id}/contents", json=article, headers=key)
    content_id = made.json()["id"]
    assert api.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=key).is_success
    page = context.new_page()
    page.add_init_script(BRIDGE)
    page.goto(f"/embed/content-card?content={content_id}")
    link = page.locator("la-content-card a[part=service]")
    expect(link).to_have_text("买茶", timeout=TIMEOUT_MS)
    with page.expect_response(lambda answer: "/go/ck_" in answer.url) as went:
        link.click()
    assert went.value.status == 302  # recorded; the redirect is not followed
    page.wait_for_function("window.bridged.some(([call]) => call === 'navigateTo')")
    bridged = page.evaluate("window.bridged")
    [url] = [target for call, target in bridged if call == "navigateTo"]
    assert url.startswith("/pages/goods?sku=A1&la_click=ck_")
    assert ["postMessage", "navigate"] in bridged and ["postMessage", "ready"] in bridged
    assert page.url.endswith(f"/embed/content-card?content={content_id}")  # it stayed
    page.close()
    # The click was recorded, so the brand's report of the order it led to finds it.
    order = {"click_id": url.split("la_click=")[1], "order_id": "mp-1", "amount": 1200}
    reported = api.post("/api/v1/conversions", json=order, headers=key)
    assert reported.status_code == 201, reported.text
