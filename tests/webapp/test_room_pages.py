"""The public room page ``/r/{id}`` and the account page's "Live now", in-process on a real app
(webapp/pages.py, webapp/room_view.py, templates/room.html, static/countdown.js): a countdown
while scheduled, the player's hooks while live, the replay link once ended, OpenGraph for link
previews, and no inline script anywhere (the pages' CSP)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette

from content.contents import create_content
from content.publishing import media_ready, publish
from content.sensitive import ReviewPolicy
from live import rooms
from store.clock import rfc3339, utc_now
from tests.conftest import Brand, make_settings, sign_up
from tests.webapp.test_api_editorial import join
from tests.webapp.test_api_rooms import Clock, make
from tests.webapp.test_content_pages import HOSTILE, Page, assert_no_inline_script, services
from webapp.app import create_app

BASE = "http://testserver"


async def page_of(client: httpx.AsyncClient, path: str, status: int = 200) -> Page:
    r = await client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    return Page(r.text)


async def test_a_scheduled_room_counts_down_with_opengraph(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    at = rfc3339(utc_now() + timedelta(hours=3))
    made = await make(client, brand, scheduled_at=at, cover="https://cdn.example/c.jpg")
    page = await page_of(client, f"/r/{made['id']}")
    [root] = page.find("article", **{"data-room-id": made["id"]})
    assert root["data-state"] == "scheduled"
    [countdown] = page.find("time", id="countdown")
    assert countdown["datetime"] == at
    assert page.meta["og:title"] == "新品直播"
    assert page.meta["og:url"] == f"{BASE}/r/{made['id']}"
    assert page.meta["og:type"] == "video.other"
    assert page.meta["og:image"] == "https://cdn.example/c.jpg"
    assert page.meta["og:description"].endswith(f"Live at {at[:16].replace('T', ' ')} UTC")
    # The countdown, and the state poll that reloads the page when the room goes live.
    assert [a["src"] for a, _ in page.scripts if "src" in a] == [
        "/static/countdown.js",
        "/static/room.js",
    ]
    [(_, data)] = [(a, t) for a, t in page.scripts if a.get("type") == "application/ld+json"]
    event = json.loads(data)
    assert (event["@type"], event["name"], event["startDate"]) == (
        "BroadcastEvent",
        made["title"],
        made["scheduled_at"],
    )
    assert_no_inline_script(page)
    assert page.find("video", id="live-player") == []
    js = await client.get("/static/countdown.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "countdown" in js.text


async def test_a_live_room_holds_the_players_hooks_and_the_account_says_live_now(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand)
    account = await client.get(f"/@{brand.handle}")
    assert Page(account.text).find("a", href=f"/r/{made['id']}") == []
    r = await client.post(f"/api/v1/rooms/{made['id']}/start", headers=brand.key_headers)
    assert r.status_code == 200
    page = await page_of(client, f"/r/{made['id']}")
    [root] = page.find("article", **{"data-room-id": made["id"]})
    assert root["data-state"] == "live"
    [video] = page.find("video", id="live-player")
    assert video["data-hls"] == made["hls_url"] == f"{BASE}/hls/{made['id']}/index.m3u8"
    assert video["data-whep"] == made["whep_url"] == f"{BASE}/whep/{made['id']}"
    assert page.find("time", id="countdown") == []
    assert_no_inline_script(page)
    account_page = Page((await client.get(f"/@{brand.handle}")).text)
    [link] = account_page.find("a", href=f"/r/{made['id']}")
    assert "live-now" in link["class"]


async def test_an_ended_room_links_its_published_replay_only(
    client: httpx.AsyncClient, app: Starlette, brand: Brand
) -> None:
    store, now = services(app).store, services(app).now()
    made = await make(client, brand)
    url = f"/r/{made['id']}"
    r = await client.post(f"/api/v1/rooms/{made['id']}/end", headers=brand.key_headers)
    assert r.json()["state"] == "ended"
    page = await page_of(client, url)
    assert page.find("article", **{"data-state": "ended"})
    assert page.find("a", **{"class": "button replay"}) == []
    # It waits for the replay: room.js polls and reloads once it is published.
    assert page.find("article", **{"data-replay": "pending"})
    assert [a["src"] for a, _ in page.scripts if "src" in a] == ["/static/room.js"]
    # The recording became a video content, still processing: no link to a page that is 404.
    video = await create_content(
        store,
        brand.account_id,
        {"kind": "video", "title": "回放", "upload_id": "upl_0123456789"},
        now=now,
    )
    await rooms.set_replay(store, made["id"], video.id)
    r = await client.get(url)
    assert f"/c/{video.id}" not in r.text and "being prepared" in r.text
    policy = ReviewPolicy(store)
    files = {
        "hls_url": f"/media/videos/{video.id}/job-1/hls/master.m3u8",
        "mp4_url": f"/media/videos/{video.id}/job-1/video.mp4",
        "poster_url": f"/media/videos/{video.id}/job-1/poster.jpg",
        "duration_s": 3600.0,
        "renditions": [{"height": 720, "bitrate": 2_500_000}],
    }
    await media_ready(store, video.id, files, policy=policy, now=now)
    await publish(store, video.id, policy=policy, publish_at=None, now=now)
    page = await page_of(client, url)
    [link] = page.find("a", href=f"/c/{video.id}")
    assert "replay" in link["class"]
    assert (
        page.find("article", **{"data-replay": "pending"}) == []
        and [a for a, _ in page.scripts if "src" in a] == []
    )
    assert (await client.get(f"/c/{video.id}")).status_code == 200
    assert_no_inline_script(page)


async def test_a_hostile_title_is_text_and_an_unknown_room_is_404(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand, title=HOSTILE)
    r = await client.get(f"/r/{made['id']}")
    assert r.status_code == 200
    assert HOSTILE not in r.text and "&lt;/script&gt;" in r.text
    page = Page(r.text)
    assert page.meta["og:title"] == " ".join(HOSTILE.split())
    assert_no_inline_script(page)
    missing = await client.get("/r/room_nope")
    assert missing.status_code == 404 and "no such room" in missing.text


async def test_the_console_schedules_a_room_and_only_its_hosts_open_the_host_page(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    page = f"/console?account={brand.account_id}"
    client.cookies = brand.cookies
    r = await client.post(
        page,
        data={
            "csrf_token": brand.csrf_token,
            "action": "create_room",
            "title": "周末直播",
            "scheduled_at": (utc_now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert r.status_code == 200, r.text
    key = re.search(r"copy it now\): (lsk_\S+?)<", r.text)
    assert key is not None
    rooms = (await client.get(f"/api/v1/accounts/{brand.account_id}/rooms")).json()["items"]
    [room] = [x for x in rooms if x["title"] == "周末直播"]
    assert room["scheduled_at"].endswith(":00.000Z")  # the form's minute, in UTC
    client.cookies = brand.cookies
    listed = await client.get(page)
    assert f'href="/console/rooms/{room["id"]}/host"' in listed.text
    client.cookies = brand.cookies
    host = await client.get(f"/console/rooms/{room['id']}/host")
    assert host.status_code == 200
    assert f'data-whip-url="http://testserver/whip/{room["id"]}"' in host.text
    assert f'data-csrf-token="{brand.csrf_token}"' in host.text
    assert 'id="pin-form"' in host.text and 'data-channel-url="ws://testserver:' in host.text
    # A moderator gets the chat side (moderation, rules), not the camera or the pins.
    moderator = await join(client, brand, "moderator")
    moderator.use(client)
    as_moderator = await client.get(f"/console/rooms/{room['id']}/host")
    assert as_moderator.status_code == 200 and 'id="rules-form"' in as_moderator.text
    assert "data-whip-url" not in as_moderator.text and 'id="pin-form"' not in as_moderator.text
    client.cookies.clear()
    anonymous = await client.get(f"/console/rooms/{room['id']}/host")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    # Another account's staff do not learn the room exists.
    other = await sign_up(client)
    client.cookies = other.cookies
    assert (await client.get(f"/console/rooms/{room['id']}/host")).status_code == 404


async def test_an_ended_room_stops_waiting_for_a_replay_after_an_hour(tmp_path: Path) -> None:
    clock = Clock(utc_now())
    app = create_app(make_settings(tmp_path / "data"), now=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            brand = await sign_up(client)
            made = await make(client, brand)
            await client.post(f"/api/v1/rooms/{made['id']}/end", headers=brand.key_headers)
            clock.moment += timedelta(minutes=59)
            waiting = await page_of(client, f"/r/{made['id']}")
            assert waiting.find("article", **{"data-replay": "pending"})
            clock.moment += timedelta(minutes=2)
            # Never recorded (or long stuck): the page says so once and polls no more.
            done = await page_of(client, f"/r/{made['id']}")
            assert done.find("article", **{"data-replay": "pending"}) == []
            assert [a for a, _ in done.scripts if "src" in a] == []
