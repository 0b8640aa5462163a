"""The widget SDK in real Chromium against the real server, embedded in a brand's own page on
another origin (listed in the account's embed_origins): a fan follows, likes, comments, votes,
claims a coupon and grabs a red packet through the widgets, each effect read back from the
server and each event heard by the page; a guest's widgets are read-only; a page on an
origin the account does not list gets nothing."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.host_origin import Origin
from tests.e2e.live_support import create_room
from tests.e2e.support import (
    Owner,
    Server,
    bearer,
    fund_budget,
    make_coupon,
    mint_fan,
    publish_post,
    screenshot,
    sign_up_api,
)

TIMEOUT_MS = 15_000
EVENTS = ["followed", "unfollowed", "liked", "commented", "voted", "claimed", "grabbed"]


def brand_page(server: Server, widgets: str) -> str:
    listen = ", ".join(f'"{e}"' for e in EVENTS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tea shop</title></head>
<body><main><h1>Tea shop</h1>{widgets}</main>
<script type="module">
  import {{ configure }} from "{server.base_url}/sdk/lifeaccount.js";
  window.seen = [];
  for (const type of [{listen}]) {{
    document.addEventListener(`la-${{type}}`, (event) => window.seen.push(type));
  }}
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) configure({{ token }});
  window.ready = true;
</script></body></html>"""


def heard(page: Page, event: str) -> None:
    """Wait for the widget's event: sent once the server answered (the change shows before)."""
    page.wait_for_function(f"window.seen.includes({event!r})", timeout=TIMEOUT_MS)


def test_a_fan_takes_part_through_widgets_on_the_brands_own_origin(
    api: httpx.Client, server: Server, page: Page, context: BrowserContext, shop: Origin
) -> None:
    owner: Owner = sign_up_api(api)
    key = owner.key_headers
    account = f"/api/v1/accounts/{owner.account_id}"
    assert api.patch(account, json={"embed_origins": [shop.url]}, headers=key).is_success
    content_id = publish_post(api, owner, "秋冬新茶")
    coupon = make_coupon(api, owner)
    poll = api.post(
        f"{account}/polls",
        json={"question": "下一款？", "options": ["乌龙", "红茶"], "closes_in_s": 600},
        headers=key,
    ).json()
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
    fund_budget(api, owner, 100)
    fan = mint_fan(api, owner.account_id, owner.api_key, "w-1")
    widgets = f"""
      <la-follow account="{owner.account_id}"></la-follow>
      <la-like content="{content_id}"></la-like>
      <la-comments content="{content_id}"></la-comments>
      <la-poll poll="{poll["id"]}"></la-poll>
      <la-coupon coupon="{coupon["id"]}"></la-coupon>
      <la-live room="{room["id"]}"></la-live>
      <la-red-packet room="{room["id"]}"></la-red-packet>
      <la-content-card content="{content_id}"></la-content-card>"""
    url = shop.page("shop.html", brand_page(server, widgets))
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(f"{url}#token={fan['token']}")

    follow = page.locator("la-follow button")
    expect(follow).to_have_text("Follow")
    follow.click()
    expect(follow).to_have_text("Following")  # at once: optimistic
    heard(page, "followed")  # and then the server's answer
    me = bearer(fan["token"])
    assert api.get(account, headers=me).json()["following"] is True

    page.locator("la-like button").click()
    expect(page.locator("la-like button")).to_have_attribute("aria-pressed", "true")
    heard(page, "liked")
    assert api.get(f"/api/v1/contents/{content_id}").json()["counters"]["likes"] == 1

    page.locator("la-comments input").fill("好喝！")
    page.locator("la-comments button").click()
    expect(page.locator("la-comments li").first).to_contain_text("好喝！")
    heard(page, "commented")
    comments = api.get(f"/api/v1/contents/{content_id}/comments").json()["items"]
    assert [c["text"] for c in comments] == ["好喝！"]

    page.locator("la-poll button", has_text="红茶").click()
    expect(page.locator("la-poll")).to_contain_text("红茶 ✓")
    heard(page, "voted")
    assert api.get(f"/api/v1/polls/{poll['id']}").json()["counts"] == [0, 1]

    page.locator("la-coupon button").click()
    expect(page.locator("la-coupon")).to_contain_text("Claimed: №1")
    heard(page, "claimed")
    mine = api.get("/api/v1/me/coupons", headers=me).json()["items"]
    assert [c["coupon_id"] for c in mine] == [coupon["id"]]

    expect(page.locator("la-live")).to_contain_text("LIVE")
    # la-live and la-red-packet share the page's one connection to the room.
    expect(page.locator("la-live")).to_contain_text("1 watching")
    packet = {"total": 30, "count": 3, "mode": "equal"}
    dropped = api.post(f"/api/v1/rooms/{room['id']}/red-packets", json=packet, headers=key)
    assert dropped.status_code == 201, dropped.text
    grab = page.locator("la-red-packet button")
    expect(grab).to_have_text("Grab")
    grab.click()
    expect(grab).to_have_text("Got 10")
    heard(page, "grabbed")
    wallets = api.get("/api/v1/me/wallets", headers=me).json()["items"]
    assert [(w["account_id"], w["balance"]) for w in wallets] == [(owner.account_id, 10)]

    expect(page.locator("la-content-card")).to_contain_text("秋冬新茶")
    seen = page.evaluate("window.seen")
    assert seen == ["followed", "liked", "commented", "voted", "claimed", "grabbed"]
    screenshot(page, "widgets-host-page")

    # A guest on the same page: every widget shows, none acts.
    guest = context.new_page()
    guest.goto(url)
    expect(guest.locator("la-follow")).to_have_attribute("data-state", "anonymous")
    expect(guest.locator("la-follow button")).to_be_disabled()
    expect(guest.locator("la-follow")).to_contain_text("watching as a guest")
    expect(guest.locator("la-coupon button")).to_be_disabled()
    expect(guest.locator("la-poll")).to_contain_text("1 vote")
    guest.close()


def test_a_page_on_an_unlisted_origin_gets_no_answers(
    api: httpx.Client, server: Server, context: BrowserContext, stranger: Origin
) -> None:
    owner = sign_up_api(api)
    key = owner.key_headers
    account = f"/api/v1/accounts/{owner.account_id}"
    assert api.patch(
        account, json={"embed_origins": ["https://shop.example"]}, headers=key
    ).is_success
    fan = mint_fan(api, owner.account_id, owner.api_key, "w-2")
    url = stranger.page(
        "page.html", brand_page(server, f'<la-follow account="{owner.account_id}"></la-follow>')
    )
    page = context.new_page()  # its console will hold the browser's CORS refusals
    page.goto(f"{url}#token={fan['token']}")
    expect(page.locator("la-follow")).to_have_attribute("data-state", "error", timeout=TIMEOUT_MS)
    expect(page.locator("la-follow")).to_contain_text("No connection")
    assert api.get(account, headers=bearer(fan["token"])).json()["following"] is False
    page.close()


DEEP_FOCUS = """() => {
  let at = document.activeElement;
  const path = [];
  while (at && at.shadowRoot && at.shadowRoot.activeElement) {
    path.push(at.localName);
    at = at.shadowRoot.activeElement;
  }
  if (at) path.push(at.localName);
  return path.join(">");
}"""


def tab_to(page: Page, target: str, most: int = 40) -> list[str]:
    """Press Tab until the focus (inside shadow roots) is ``target``; the stops passed."""
    stops: list[str] = []
    for _ in range(most):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(DEEP_FOCUS))
        if stops[-1] == target:
            return stops
    raise AssertionError(f"Tab never reached {target}: {stops}")


def test_a_fan_uses_every_widget_by_keyboard(
    api: httpx.Client, server: Server, page: Page, shop: Origin
) -> None:
    owner = sign_up_api(api)
    key = owner.key_headers
    account = f"/api/v1/accounts/{owner.account_id}"
    assert api.patch(account, json={"embed_origins": [shop.url]}, headers=key).is_success
    content_id = publish_post(api, owner, "键盘")
    poll = api.post(
        f"{account}/polls",
        json={"question": "键盘？", "options": ["是", "否"], "closes_in_s": 600},
        headers=key,
    ).json()
    coupon = make_coupon(api, owner, title="键盘券")
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
    fund_budget(api, owner, 100)
    packet = {"total": 20, "count": 2, "mode": "equal"}
    assert api.post(f"/api/v1/rooms/{room['id']}/red-packets", json=packet, headers=key).is_success
    fan = mint_fan(api, owner.account_id, owner.api_key, "k-1")
    widgets = f"""
      <la-follow account="{owner.account_id}"></la-follow>
      <la-like content="{content_id}"></la-like>
      <la-poll poll="{poll["id"]}"></la-poll>
      <la-comments content="{content_id}"></la-comments>
      <la-coupon coupon="{coupon["id"]}"></la-coupon>
      <la-red-packet room="{room["id"]}"></la-red-packet>
      <la-content-card content="{content_id}"></la-content-card>"""
    url = shop.page("keys.html", brand_page(server, widgets))
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(f"{url}#token={fan['token']}")
    expect(page.locator("la-follow button")).to_be_enabled()
    expect(page.locator("la-comments input")).to_be_enabled()
    tab_to(page, "la-follow>button")
    page.keyboard.press("Enter")
    expect(page.locator("la-follow button")).to_have_text("Following")
    tab_to(page, "la-like>button")
    page.keyboard.press("Space")
    expect(page.locator("la-like button")).to_have_attribute("aria-pressed", "true")
    tab_to(page, "la-poll>button")  # the first answer
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the second
    expect(page.locator("la-poll")).to_contain_text("否 ✓")
    tab_to(page, "la-comments>input")
    page.keyboard.type("用键盘写的")
    page.keyboard.press("Enter")
    expect(page.locator("la-comments li").first).to_contain_text("用键盘写的")
    tab_to(page, "la-coupon>button")
    page.keyboard.press("Enter")
    expect(page.locator("la-coupon")).to_contain_text("Claimed: №1")
    tab_to(page, "la-red-packet>button")
    page.keyboard.press("Enter")
    expect(page.locator("la-red-packet button")).to_have_text("Got 10")
    tab_to(page, "la-content-card>a")  # its title: a link to the content's page
    for event in ("followed", "liked", "voted", "commented", "claimed", "grabbed"):
        heard(page, event)
    me = bearer(fan["token"])
    assert api.get(account, headers=me).json()["following"] is True
    assert api.get(f"/api/v1/contents/{content_id}").json()["counters"]["likes"] == 1
    assert api.get(f"/api/v1/polls/{poll['id']}").json()["counts"] == [0, 1]
    comments = api.get(f"/api/v1/contents/{content_id}/comments").json()["items"]
    assert [c["text"] for c in comments] == ["用键盘写的"]
    assert [c["coupon_id"] for c in api.get("/api/v1/me/coupons", headers=me).json()["items"]] == [
        coupon["id"]
    ]
    assert [w["balance"] for w in api.get("/api/v1/me/wallets", headers=me).json()["items"]] == [10]
