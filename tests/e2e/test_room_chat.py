"""The room's chat in real Chromium against the real server: a fan (token handed to the page in
its fragment) and a guest watch the viewer page, the host works the host page. Chat, likes,
viewers, the staff mark, the pinned announcement and moderation all reach every page live."""

from __future__ import annotations

import json
from contextlib import ExitStack

import httpx
from playwright.sync_api import BrowserContext, Page, expect
from websockets.sync.client import ClientConnection, connect

from tests.e2e.live_support import create_room
from tests.e2e.support import Owner, mint_fan, screenshot

TIMEOUT_MS = 15_000


def lines(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#chat .chat-lines li .chat-text").all_text_contents()]


def test_fans_chat_like_and_see_moderation_live_on_the_viewer_page(
    api: httpx.Client, owner: Owner, page: Page, host_page: Page, context: BrowserContext
) -> None:
    room = create_room(api, owner)
    assert (
        api.post(f"/api/v1/rooms/{room['id']}/start", headers=owner.key_headers).status_code == 200
    )
    token = mint_fan(api, owner.account_id, owner.api_key, "web-1")["token"]
    expect.set_options(timeout=TIMEOUT_MS)

    # The fan arrives from the brand's app with a token in the fragment; it leaves the URL.
    page.goto(f"/r/{room['id']}#token={token}")
    expect(page.locator("#chat")).to_have_attribute("data-connected", "true")
    assert "token" not in page.url
    guest = context.new_page()
    guest.goto(f"/r/{room['id']}")
    expect(guest.locator("#chat")).to_have_attribute("data-connected", "true")
    expect(guest.locator("#chat input[name=text]")).to_be_disabled()
    expect(guest.locator("#chat .chat-note")).to_contain_text("guest")

    page.fill("#chat input[name=text]", "有优惠券吗？")
    page.press("#chat input[name=text]", "Enter")
    expect(guest.locator("#chat .chat-lines li")).to_have_count(1)
    assert lines(guest) == ["有优惠券吗？"]
    assert guest.locator("#chat .chat-name").first.text_content() == "fan web-1"

    # The host answers as staff, marked, and pins an announcement.
    host_page.goto(f"/console/rooms/{room['id']}/host")
    expect(host_page.locator("#chat")).to_have_attribute("data-connected", "true")
    expect(host_page.locator("#chat .chat-lines li")).to_have_count(1)
    host_page.fill("#chat input[name=text]", "有的，今晚 8 点发")
    host_page.press("#chat input[name=text]", "Enter")
    staff_line = guest.locator("#chat .chat-lines li.chat-staff")
    expect(staff_line).to_contain_text("有的，今晚 8 点发")
    expect(staff_line.locator(".staff-badge")).to_have_text("owner")
    host_page.fill("#pin-form input[name=text]", "8 点抽 100 张券")
    host_page.click("#pin-form button")
    expect(guest.locator("#chat .chat-pin")).to_contain_text("8 点抽 100 张券")
    expect(page.locator("#chat .chat-pin")).to_contain_text("8 点抽 100 张券")

    # Taps on the like button reach the room as a total; three pages watch.
    for _ in range(5):
        page.click("#chat .chat-like")
    expect(guest.locator("#chat .chat-likes")).to_have_text("5")
    expect(guest.locator("#chat .chat-viewers")).to_have_text("3")

    # The host deletes the fan's line: gone for everyone. Then mutes the fan.
    host_page.locator("#chat .chat-lines li", has_text="有优惠券吗").locator("text=delete").click()
    expect(guest.locator("#chat .chat-lines li")).to_have_count(1)
    expect(page.locator("#chat .chat-lines li")).to_have_count(1)
    # A second fan asks (the first may say one line every 2 s), and is muted.
    second = context.new_page()
    other = mint_fan(api, owner.account_id, owner.api_key, "web-1b")["token"]
    second.goto(f"/r/{room['id']}#token={other}")
    expect(second.locator("#chat")).to_have_attribute("data-connected", "true")
    second.fill("#chat input[name=text]", "再问一次")
    second.press("#chat input[name=text]", "Enter")
    expect(guest.locator("#chat .chat-lines li")).to_have_count(2)
    host_page.locator("#chat .chat-lines li", has_text="再问一次").locator("text=mute").click()
    expect(host_page.locator("#mod-log li")).to_have_count(2)
    second.fill("#chat input[name=text]", "还在吗")
    second.press("#chat input[name=text]", "Enter")
    expect(second.locator("#chat")).to_have_attribute("data-last-error", "muted")
    expect(second.locator("#chat .chat-note")).to_contain_text("muted")
    assert "还在吗" not in lines(guest)
    screenshot(second, "room-chat-fan")
    screenshot(host_page, "room-chat-host")

    # Clear: every page's chat empties.
    host_page.click("#clear-chat")
    expect(guest.locator("#chat .chat-lines li")).to_have_count(0)
    expect(host_page.locator("#chat .chat-lines li")).to_have_count(0)
    second.close()
    guest.close()


def test_a_page_that_lost_its_connection_gets_exactly_what_it_missed(
    api: httpx.Client, owner: Owner, page: Page
) -> None:
    room = create_room(api, owner)
    assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=owner.key_headers).is_success
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(f"/r/{room['id']}")
    expect(page.locator("#chat")).to_have_attribute("data-connected", "true")
    with ExitStack() as stack:
        fans = []  # four fans, one line each (a fan may say one line every 2 s)
        for n in range(4):
            token = mint_fan(api, owner.account_id, owner.api_key, f"web-2-{n}")["token"]
            fan = stack.enter_context(connect(room["channel_url"]))
            fan.send(json.dumps({"op": "hello", "token": token}))
            fans.append(fan)
        before = chat(fans[0], "before")
        expect(page.locator("#chat .chat-lines li")).to_have_count(1)
        # The page's connection drops (held down while the room goes on without it)…
        seen = page.evaluate(
            "() => { window.snapshots = 0;"
            " laChannel.addEventListener('snapshot', () => { window.snapshots += 1; });"
            " laChannel.stopped = true; laChannel.ws.close(); return laChannel.seq; }"
        )
        assert seen >= before  # viewer counts may have come after the line
        expect(page.locator("#chat")).to_have_attribute("data-connected", "false")
        for n, fan in enumerate(fans[1:]):
            chat(fan, f"missed {n}")
        # …and comes back with since: the three lines it missed, in order, no snapshot.
        page.evaluate("() => laChannel.start()")
        expect(page.locator("#chat .chat-lines li")).to_have_count(4)
    assert lines(page) == ["before", "missed 0", "missed 1", "missed 2"]
    assert page.evaluate("() => window.snapshots") == 0
    resumed = page.evaluate("() => new URL(laChannel.ws.url).searchParams.get('since')")
    assert int(resumed) >= seen  # it resumed from what it had, not from a snapshot


def chat(ws: ClientConnection, text: str) -> int:
    """Say ``text`` on the fan's connection; the seq its ack names."""
    op_id = f"op-{text}"
    ws.send(json.dumps({"op": "chat", "id": op_id, "text": text}))
    while True:
        message = json.loads(ws.recv(timeout=TIMEOUT_MS / 1000))
        if message.get("id") == op_id:
            assert message["type"] == "ack", message
            seq: int = message["result"]["seq"]
            return seq
