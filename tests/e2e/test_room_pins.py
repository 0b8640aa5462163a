"""Pinned cards in real Chromium against the real server: the host pins a service link, a
coupon and a content from the host page's form; a fan and a guest see the cards at once; a
tap on a card follows a click id of the viewer's own (counted once, shown on the host page),
and the coupon is claimed in place up to its per-fan limit."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.live_support import create_room
from tests.e2e.support import (
    Owner,
    make_coupon,
    mint_fan,
    publish_post,
    screenshot,
)

TIMEOUT_MS = 15_000


def test_the_host_pins_cards_that_viewers_click_and_claim(
    api: httpx.Client, owner: Owner, page: Page, host_page: Page, context: BrowserContext
) -> None:
    key = owner.key_headers
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
    made = make_coupon(api, owner, description="直播间专享", stock=2)
    content_id = publish_post(api, owner, "秋冬新茶上架")
    fan = mint_fan(api, owner.account_id, owner.api_key, "pin-1")
    expect.set_options(timeout=TIMEOUT_MS)

    page.goto(f"/r/{room['id']}#token={fan['token']}")
    expect(page.locator("#chat")).to_have_attribute("data-connected", "true")
    guest = context.new_page()
    guest.goto(f"/r/{room['id']}")
    expect(guest.locator("#chat")).to_have_attribute("data-connected", "true")

    # The host pins each kind from the form: the fields follow the kind chosen.
    host_page.goto(f"/console/rooms/{room['id']}/host")
    expect(host_page.locator("#chat")).to_have_attribute("data-connected", "true")
    form = host_page.locator("#pin-form")
    form.locator("select[name=kind]").select_option("service")
    expect(form.locator("input[name=text]")).to_be_hidden()
    form.locator("input[name=title]").fill("下单新茶")
    form.locator("input[name=app_id]").fill("wx_shop")
    form.locator("input[name=page]").fill("pages/goods")
    form.locator("input[name=query]").fill("sku=A1&from=live")
    form.locator("button[type=submit]").click()
    service = guest.locator("#chat .pin-service")
    expect(service).to_contain_text("下单新茶")
    form.locator("select[name=kind]").select_option("coupon")
    expect(form.locator("select[name=coupon_id] option")).to_have_count(1)
    form.locator("button[type=submit]").click()
    expect(page.locator("#chat .pin-coupon .pin-stock")).to_have_text("2 left")
    form.locator("select[name=kind]").select_option("content")
    expect(form.locator("select[name=content_id] option")).to_have_count(1)
    form.locator("button[type=submit]").click()
    expect(guest.locator("#chat .pin-content")).to_contain_text("秋冬新茶上架")

    # The fan's tap opens a tab on the page that hands the mini-program over, with the
    # fan's own click id; the host's record counts it.
    with context.expect_page() as opened:
        page.locator("#chat .pin-service .pin-go").click()
    tab = opened.value
    tab.wait_for_url("**/open/ck_*")  # about:blank first, opened within the tap
    expect(tab.locator("body")).to_contain_text("wx_shop")
    click_id = tab.url.rsplit("/", 1)[-1]
    expect(tab.locator("body")).to_contain_text(f"la_click={click_id}")
    tab.close()
    expect(host_page.locator("#pin-clicks")).to_have_text("1")
    expect(host_page.locator("#pin-list")).to_contain_text("下单新茶: 1 click")

    # A guest's tap on the content card reads the content, counted too.
    with context.expect_page() as opened:
        guest.locator("#chat .pin-content .pin-go").click()
    read = opened.value
    read.wait_for_url(f"**/c/{content_id}")
    read.close()
    expect(host_page.locator("#pin-clicks")).to_have_text("2")

    # The coupon: one per fan; a guest is told to sign in.
    coupon_card = page.locator("#chat .pin-coupon")
    coupon_card.locator(".pin-claim").click()
    expect(coupon_card).to_have_attribute("data-last-answer", "claimed")
    expect(coupon_card.locator(".pin-stock")).to_have_text("1 left")
    coupon_card.locator(".pin-claim").click()
    expect(coupon_card).to_have_attribute("data-last-answer", "coupon_limit_reached")
    expect(coupon_card.locator(".pin-claim")).to_be_disabled()
    guest_card = guest.locator("#chat .pin-coupon")
    guest_card.locator(".pin-claim").click()
    expect(guest_card).to_have_attribute("data-last-answer", "read_only")
    expect(host_page.locator("#pin-list")).to_contain_text("满100减20: 1 of 2 claimed")
    screenshot(page, "room-pins-fan")
    screenshot(host_page, "room-pins-host")
    guest.close()
    mine = api.get("/api/v1/me/coupons", headers={"Authorization": f"Bearer {fan['token']}"})
    assert [c["coupon_id"] for c in mine.json()["items"]] == [made["id"]]


def test_the_host_asks_a_poll_that_viewers_answer_live(
    api: httpx.Client, owner: Owner, page: Page, host_page: Page, context: BrowserContext
) -> None:
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=owner.key_headers).is_success
    fan = mint_fan(api, owner.account_id, owner.api_key, "poll-1")
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(f"/r/{room['id']}#token={fan['token']}")
    expect(page.locator("#chat")).to_have_attribute("data-connected", "true")
    guest = context.new_page()
    guest.goto(f"/r/{room['id']}")
    expect(guest.locator("#chat")).to_have_attribute("data-connected", "true")
    host_page.goto(f"/console/rooms/{room['id']}/host")
    expect(host_page.locator("#chat")).to_have_attribute("data-connected", "true")
    form = host_page.locator("#poll-form")
    form.locator("input[name=question]").fill("下一款泡什么？")
    form.locator("textarea[name=options]").fill("乌龙\n红茶\n白茶")
    form.locator("button[type=submit]").click()
    expect(host_page.locator("#panel-note")).to_contain_text("Poll asked")
    poll = page.locator("#economy .poll")
    expect(poll).to_contain_text("下一款泡什么？")
    expect(guest.locator("#economy .poll")).to_contain_text("0 votes")
    expect(guest.locator("#economy .poll button")).to_have_count(0)  # guests read
    poll.locator("button", has_text="红茶").click()
    expect(page.locator("#economy")).to_have_attribute("data-last-answer", "voted")
    expect(poll).to_contain_text("红茶 ✓ · 1 (100%)")
    # The others see the results with the next round (about a second), not at each vote.
    expect(guest.locator("#economy .poll")).to_contain_text("红茶 · 1 (100%)")
    [asked] = api.get(f"/api/v1/accounts/{owner.account_id}/polls").json()["items"]
    assert (asked["room_id"], asked["counts"]) == (room["id"], [0, 1, 0])
    guest.close()
