"""The room's economy in real Chromium against the real server: a fan's props bar (with the
tier lock), a prop seen by another viewer, a red packet grabbed and a collectible claimed
from the viewer page — each through the room channel."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.live_support import create_room
from tests.e2e.support import mint_fan, screenshot, sign_up_api

TIMEOUT_MS = 15_000


def test_a_fan_sends_a_prop_grabs_a_red_packet_and_claims_a_collectible(
    api: httpx.Client, page: Page, context: BrowserContext
) -> None:
    owner = sign_up_api(api)
    key = owner.key_headers
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
    account = f"/api/v1/accounts/{owner.account_id}"
    ladder = {"tiers": [{"rank": 0, "name": "粉丝"}, {"rank": 2, "name": "金卡"}]}
    assert api.put(f"{account}/tiers", json=ladder, headers=key).is_success
    catalog = {
        "props": [
            {"name": "奶茶", "price": 10, "effect": "tea"},
            {"name": "火箭", "price": 50, "min_tier": 2, "effect": "rocket"},
        ]
    }
    assert api.put(f"{account}/props", json=catalog, headers=key).is_success
    fan = mint_fan(api, owner.account_id, owner.api_key, "eco-1")
    credit = {"points": 100, "reason": "welcome"}
    wallet = f"{account}/wallets/{fan['fan_id']}/credits"
    assert api.post(wallet, json=credit, headers={**key, "Idempotency-Key": "w1"}).is_success
    budget = {"points": 500, "reason": "packets"}
    assert api.post(
        f"{account}/budget/credits", json=budget, headers={**key, "Idempotency-Key": "b1"}
    ).is_success
    expect.set_options(timeout=TIMEOUT_MS)

    page.goto(f"/r/{room['id']}#token={fan['token']}")
    expect(page.locator("#chat")).to_have_attribute("data-connected", "true")
    guest = context.new_page()
    guest.goto(f"/r/{room['id']}")
    expect(guest.locator("#chat")).to_have_attribute("data-connected", "true")
    props = page.locator("#economy .prop")
    expect(props).to_have_count(2)
    expect(props.nth(1)).to_be_disabled()  # the rocket is for tier 2: locked
    expect(props.nth(1)).to_contain_text("🔒")
    props.nth(0).click()
    expect(page.locator("#economy")).to_have_attribute("data-last-answer", "sent")
    expect(page.locator("#economy .economy-note")).to_contain_text("90 points left")
    expect(guest.locator("#chat .chat-prop")).to_contain_text("sent 奶茶 ×1")
    expect(guest.locator("#economy .supporters")).to_contain_text("fan eco-1 · 10")

    packet = {"total": 30, "count": 3, "mode": "equal"}
    assert api.post(f"/api/v1/rooms/{room['id']}/red-packets", json=packet, headers=key).is_success
    grab = page.locator("#economy .red-packet .grab")
    expect(grab).to_be_enabled()
    grab.click()
    expect(page.locator("#economy .red-packet")).to_have_attribute("data-mine", "10")
    expect(guest.locator("#economy .red-packet .grab")).to_be_disabled()  # guests read

    drop = {"name": "秋季限定杯", "editions": 5}
    assert api.post(f"/api/v1/rooms/{room['id']}/drops", json=drop, headers=key).is_success
    page.locator("#economy .drop .claim").click()
    expect(page.locator("#economy .drop")).to_have_attribute("data-edition", "1")
    expect(guest.locator("#economy .drop")).to_contain_text("1 / 5 claimed")
    screenshot(page, "room-economy-fan")
    guest.close()
    wallets = api.get("/api/v1/me/wallets", headers={"Authorization": f"Bearer {fan['token']}"})
    assert wallets.is_success


def test_the_browser_checks_a_finished_red_packet_and_catches_a_tampered_one(
    api: httpx.Client, page: Page
) -> None:
    owner = sign_up_api(api)
    key = owner.key_headers
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
    account = f"/api/v1/accounts/{owner.account_id}"
    budget = {"points": 500, "reason": "packets"}
    assert api.post(
        f"{account}/budget/credits", json=budget, headers={**key, "Idempotency-Key": "b1"}
    ).is_success
    made = api.post(
        f"/api/v1/rooms/{room['id']}/red-packets",
        json={"total": 97, "count": 5, "mode": "random"},
        headers=key,
    ).json()
    check = f"/red-packets/{made['id']}"
    page.goto(check)
    expect(page.locator("#packet-check")).to_have_attribute("data-verdict", "pending")
    for n in range(5):
        fan = mint_fan(api, owner.account_id, owner.api_key, f"rp-{n}")
        grabbed = api.post(
            f"/api/v1/red-packets/{made['id']}/grabs",
            headers={"Authorization": f"Bearer {fan['token']}"},
        )
        assert grabbed.status_code == 200
    page.goto(check)
    expect(page.locator("#packet-check")).to_have_attribute(
        "data-verdict", "valid", timeout=TIMEOUT_MS
    )
    expect(page.locator("#checks li.notice")).to_have_count(4)
    screenshot(page, "red-packet-check")

    # The same page, fed a reveal with a point moved between two shares: the browser says so.
    def tampered(route: Route) -> None:
        body = route.fetch().json()
        shares = body["reveal"]["shares"]
        shares[0] += 1  # the sum stays; the split and the commitment no longer match
        shares[-1] -= 1
        route.fulfill(json=body)

    page.route(f"**/api/v1/red-packets/{made['id']}", tampered)
    page.goto(check)
    expect(page.locator("#packet-check")).to_have_attribute(
        "data-verdict", "invalid", timeout=TIMEOUT_MS
    )
