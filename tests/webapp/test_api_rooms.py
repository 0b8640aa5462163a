"""The rooms API in-process (webapp/api_rooms.py): schedule, read, list, edit, start, end and
rotate; who may call each; bad input answers a named 4xx and writes nothing; and the app's
own loop ends a room whose publisher stayed away past the grace period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from accounts.errors import Unauthorized
from live import rooms
from store.clock import rfc3339, utc_now
from store.engines import sqlite_path
from tests.conftest import Brand, bearer, make_settings, mint, sign_up
from tests.webapp.test_api_editorial import Person, join, owner
from tests.webapp.test_api_images import ready_image
from tests.webapp.test_bad_input import snapshot
from webapp.app import create_app
from webapp.context import Services
from webapp.settings import Settings

BASE = "http://testserver"
PROBLEM = "application/problem+json"


def soon(**delta: float) -> str:
    return rfc3339(utc_now() + timedelta(**delta))


async def make(client: httpx.AsyncClient, brand: Brand, **body: Any) -> dict[str, Any]:
    client.cookies.clear()
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/rooms",
        json={"title": "新品直播", **body},
        headers=brand.key_headers,
    )
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def services(app: Starlette) -> Services:
    found: Services = app.state.services
    return found


async def test_a_room_is_created_with_its_key_and_urls(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    at = soon(days=1)
    made = await make(client, brand, scheduled_at=at, cover="https://cdn.example/c.jpg")
    room_id = made["id"]
    assert made["state"] == "scheduled" and made["title"] == "新品直播"
    assert made["scheduled_at"] == rfc3339(datetime.fromisoformat(at))
    assert (made["cover"], made["cover_url"]) == ("https://cdn.example/c.jpg",) * 2
    assert made["stream_key"].startswith(f"lsk_{room_id.removeprefix('room_')}_")
    assert made["whip_url"] == f"{BASE}/whip/{room_id}"
    assert made["whep_url"] == f"{BASE}/whep/{room_id}"
    assert made["hls_url"] == f"{BASE}/hls/{room_id}/index.m3u8"
    # The channel's gateway listens on a port of its own, on the host the request named.
    port = services(app).channel_port
    assert port > 0
    assert made["channel_url"] == f"ws://testserver:{port}/api/v1/rooms/{room_id}/channel"
    assert made["url"] == f"{BASE}/r/{room_id}"
    # The key is in that answer only: reading and listing never show it.
    public = (await client.get(f"/api/v1/rooms/{room_id}")).json()
    assert "stream_key" not in public and made["stream_key"] not in str(public)
    assert public == {k: v for k, v in made.items() if k != "stream_key"}
    listed = (await client.get(f"/api/v1/accounts/{brand.account_id}/rooms")).json()
    assert [r["id"] for r in listed["items"]] == [room_id] and listed["next_cursor"] is None
    assert "stream_key" not in listed["items"][0]
    r = await client.get(f"/api/v1/rooms/{room_id}", headers=brand.key_headers)
    assert "stream_key" not in r.json()


async def test_https_deployments_answer_wss_channels(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", base_url="https://live.example/"))
    async with app.router.lifespan_context(app):
        port = services(app).channel_port
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            made = await make(client, await sign_up(client))
    assert made["channel_url"] == f"wss://live.example:{port}/api/v1/rooms/{made['id']}/channel"
    assert made["whip_url"] == f"https://live.example/whip/{made['id']}"
    # Behind a proxy that routes the channel's path to the gateway, its public base.
    settings = make_settings(
        tmp_path / "proxied", base_url="https://live.example/", channel_url="wss://live.example/"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            made = await make(client, await sign_up(client))
    assert made["channel_url"] == f"wss://live.example/api/v1/rooms/{made['id']}/channel"


async def test_the_room_goes_live_and_ends_over_the_api(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand)
    url = f"/api/v1/rooms/{made['id']}"
    account = f"/api/v1/accounts/{brand.account_id}"
    staff = owner(brand).use(client)
    live = await client.post(f"{url}/start", headers=staff)
    assert live.status_code == 200, live.text
    assert live.json()["state"] == "live" and live.json()["started_at"]
    assert (await client.get(account)).json()["live_room_id"] == made["id"]
    late = await client.patch(url, json={"scheduled_at": soon(days=1)}, headers=staff)
    assert (late.status_code, late.json()["code"]) == (409, "room_not_scheduled")
    retitled = await client.patch(url, json={"title": "改名"}, headers=staff)
    assert retitled.json()["title"] == "改名"
    ended = await client.post(f"{url}/end", headers=staff)
    assert ended.status_code == 200
    assert (ended.json()["state"], ended.json()["ended_reason"]) == ("ended", "host")
    assert (await client.get(account)).json()["live_room_id"] is None
    # Ending again answers the room as it ended; nothing moves it back.
    again = await client.post(f"{url}/end", headers=key(client, brand))
    assert again.status_code == 200 and again.json() == ended.json()
    for path in ("/start", "/stream-key"):
        r = await client.post(f"{url}{path}", headers=key(client, brand))
        assert (r.status_code, r.json()["code"]) == (409, "room_ended"), path
    r = await client.patch(url, json={"title": "x"}, headers=key(client, brand))
    assert (r.status_code, r.json()["code"]) == (409, "room_ended")
    # The brand backend ending a room is told apart from a host.
    other = await make(client, brand)
    by_api = await client.post(f"/api/v1/rooms/{other['id']}/end", headers=key(client, brand))
    assert by_api.json()["ended_reason"] == "api"


def key(client: httpx.AsyncClient, brand: Brand) -> dict[str, str]:
    client.cookies.clear()
    return brand.key_headers


async def test_a_room_without_media_here_reports_an_idle_health(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand)
    r = await client.get(f"/api/v1/rooms/{made['id']}/health", headers=brand.key_headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "room_id": made["id"],
        "state": "scheduled",
        "publishing": False,
        "video_codec": None,
        "transcoding": False,
        "packets": {},
        "keyframe_requests": 0,
        "seats": 0,
        "max_seats": 4,
        "hls_segments": 0,
        "hls_target_s": 2,
        "hls_updated_s_ago": None,
    }


async def test_rotation_hands_out_a_new_key_and_kills_the_old(
    app: Starlette, client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand)
    r = await client.post(f"/api/v1/rooms/{made['id']}/stream-key", headers=brand.key_headers)
    assert r.status_code == 200, r.text
    fresh = r.json()["stream_key"]
    assert fresh != made["stream_key"] and r.json()["state"] == "scheduled"
    store = services(app).store
    with pytest.raises(Unauthorized):
        await rooms.check_stream_key(store, made["id"], made["stream_key"])
    assert (await rooms.check_stream_key(store, made["id"], fresh)).id == made["id"]


async def test_owners_editors_hosts_and_keys_run_rooms(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    people = {role: await join(client, brand, role) for role in ("editor", "host", "moderator")}

    async def run(person: Person) -> list[int]:
        headers = person.use(client)
        created = await client.post(
            f"/api/v1/accounts/{brand.account_id}/rooms", json={"title": "t"}, headers=headers
        )
        room_id = created.json().get("id") or (await make(client, brand))["id"]
        url = f"/api/v1/rooms/{room_id}"
        headers = person.use(client)
        answers = [created.status_code]
        for method, path, body in (
            ("PATCH", "", {"title": "u"}),
            ("POST", "/stream-key", None),
            ("POST", "/start", None),
            ("POST", "/end", None),
        ):
            r = await client.request(method, url + path, json=body, headers=headers)
            answers.append(r.status_code)
            if r.status_code == 403:
                assert r.json()["code"] == "role_required", r.text
        return answers

    assert await run(owner(brand)) == [201, 200, 200, 200, 200]
    assert await run(people["editor"]) == [201, 200, 200, 200, 200]
    assert await run(people["host"]) == [201, 200, 200, 200, 200]
    assert await run(people["moderator"]) == [403, 403, 403, 403, 403]


async def test_strangers_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    other = await sign_up(client)
    fan = await mint(client, brand)
    made = await make(client, brand)
    url = f"/api/v1/rooms/{made['id']}"
    create = f"/api/v1/accounts/{brand.account_id}/rooms"
    db = sqlite_path(settings.store, settings.data_dir)
    staff_b = {"Cookie": f"la_session={other.cookies['la_session']}", **other.staff_headers}
    cases: list[tuple[str, str, dict[str, str], int, str]] = [
        ("POST", create, {}, 401, "authentication_required"),
        ("POST", create, bearer(fan["token"]), 403, "wrong_credential"),
        ("POST", create, other.key_headers, 403, "wrong_account"),
        ("POST", create, staff_b, 403, "not_staff"),
    ]
    for path in ("/start", "/end", "/stream-key"):
        cases += [
            ("POST", url + path, {}, 401, "authentication_required"),
            ("POST", url + path, bearer(fan["token"]), 403, "wrong_credential"),
            ("POST", url + path, other.key_headers, 403, "role_required"),
            ("POST", url + path, staff_b, 403, "role_required"),
        ]
    cases += [
        ("PATCH", url, other.key_headers, 403, "role_required"),
        ("PATCH", url, {}, 401, "authentication_required"),
        ("GET", url + "/health", {}, 401, "authentication_required"),
        ("GET", url + "/health", bearer(fan["token"]), 403, "wrong_credential"),
        ("GET", url + "/health", other.key_headers, 403, "role_required"),
    ]
    for method, path, headers, status, code in cases:
        client.cookies.clear()
        before = snapshot(db)
        body = {"title": "x"} if method == "PATCH" or path == create else None
        r = await client.request(method, path, json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), (method, path, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert snapshot(db) == before, (method, path)
    assert (await client.get(url)).json()["state"] == "scheduled"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "title", "invalid_field"),
        ({"title": ""}, "title", "invalid_field"),
        ({"title": "   "}, "title", "invalid_field"),
        ({"title": "t" * 61}, "title", "invalid_field"),
        ({"title": 5}, "title", "invalid_field"),
        ({"title": "a\u0007b"}, "title", "invalid_field"),
        ({"title": "t", "stream_key": "mine"}, "stream_key", "invalid_field"),
        ({"title": "t", "cover": "ftp://cdn.example/c.jpg"}, "cover", "invalid_field"),
        ({"title": "t", "cover": "not an upload"}, "cover", "invalid_field"),
        ({"title": "t", "cover": "upl_0000000000unknown"}, "cover", "upload_not_found"),
        ({"title": "t", "scheduled_at": "tonight"}, "scheduled_at", "invalid_field"),
        ({"title": "t", "scheduled_at": "2026-12-01T08:00:00"}, "scheduled_at", "invalid_field"),
        ({"title": "t", "scheduled_at": "2020-01-01T00:00:00Z"}, "scheduled_at", "invalid_field"),
        ({"title": "t", "scheduled_at": "2999-01-01T00:00:00Z"}, "scheduled_at", "invalid_field"),
        ({"title": "t", "scheduled_at": 1767225600}, "scheduled_at", "invalid_field"),
    ],
)
async def test_bad_rooms_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    brand: Brand,
    settings: Settings,
    body: dict[str, Any],
    field: str,
    code: str,
) -> None:
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/rooms", json=body, headers=brand.key_headers
    )
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"] == PROBLEM
    assert (r.json()["code"], r.json()["field"]) == (code, field), r.text
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"cover": "https://"}, "cover"),
        ({"scheduled_at": "2020-01-01T00:00:00Z"}, "scheduled_at"),
        ({"state": "live"}, "state"),
        ({"title": ["x"]}, "title"),
    ],
)
async def test_bad_edits_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    brand: Brand,
    settings: Settings,
    body: dict[str, Any],
    field: str,
) -> None:
    made = await make(client, brand)
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    r = await client.patch(f"/api/v1/rooms/{made['id']}", json=body, headers=brand.key_headers)
    assert (r.status_code, r.json()["field"]) == (422, field), r.text
    assert snapshot(db) == before


async def test_unknown_rooms_and_bad_queries_are_named(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    for method, path in (
        ("GET", "/api/v1/rooms/room_nope"),
        ("POST", "/api/v1/rooms/room_nope/start"),
        ("POST", "/api/v1/rooms/room_nope/end"),
        ("POST", "/api/v1/rooms/room_nope/stream-key"),
    ):
        r = await client.request(method, path, headers=brand.key_headers)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            404,
            "room_not_found",
            "room_id",
        ), path
    r = await client.get("/api/v1/accounts/acc_nope/rooms")
    assert (r.status_code, r.json()["field"]) == (404, "account_id")
    rooms_url = f"/api/v1/accounts/{brand.account_id}/rooms"
    r = await client.get(rooms_url, params={"state": "paused"})
    assert (r.status_code, r.json()["field"]) == (422, "state")
    r = await client.get(rooms_url, params={"cursor": "nope"})
    assert (r.status_code, r.json()["field"]) == (400, "cursor")
    r = await client.post("/api/v1/rooms/room_nope/end", content=b"{", headers=brand.key_headers)
    assert r.status_code in (404, 422)


async def test_the_list_filters_and_pages(client: httpx.AsyncClient, brand: Brand) -> None:
    later = await make(client, brand, scheduled_at=soon(days=2))
    sooner = await make(client, brand, scheduled_at=soon(hours=1))
    live = await make(client, brand)
    r = await client.post(f"/api/v1/rooms/{live['id']}/start", headers=brand.key_headers)
    assert r.status_code == 200
    url = f"/api/v1/accounts/{brand.account_id}/rooms"
    first = (await client.get(url, params={"limit": 2})).json()
    second = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    order = [r["id"] for r in first["items"] + second["items"]]
    assert order == [live["id"], sooner["id"], later["id"]]
    only = (await client.get(url, params={"state": "live"})).json()
    assert [r["id"] for r in only["items"]] == [live["id"]]


async def test_an_upload_cover_shows_its_resized_image(
    app: Starlette, client: httpx.AsyncClient, brand: Brand
) -> None:
    image = await ready_image(app, client, brand)
    made = await make(client, brand, cover=image)
    assert made["cover"] == image
    assert made["cover_url"].startswith(f"{BASE}/media/images/{image}/")
    other = await sign_up(client)
    r = await client.post(
        f"/api/v1/accounts/{other.account_id}/rooms",
        json={"title": "t", "cover": image},
        headers=other.key_headers,
    )
    assert (r.status_code, r.json()["field"]) == (404, "cover")
    cleared = await client.patch(
        f"/api/v1/rooms/{made['id']}", json={"cover": None}, headers=brand.key_headers
    )
    assert (cleared.json()["cover"], cleared.json()["cover_url"]) == (None, None)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[tuple[Starlette, Clock]]:
    clock = Clock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    app = create_app(
        make_settings(tmp_path / "data", schedule_every_s=1, live_grace_s=30), now=clock
    )
    async with app.router.lifespan_context(app):
        yield app, clock


async def test_the_app_ends_a_room_its_publisher_left(
    clocked: tuple[Starlette, Clock],
) -> None:
    app, clock = clocked
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        brand = await sign_up(client)
        made = await make(client, brand)
        url = f"/api/v1/rooms/{made['id']}"
        assert (await client.post(f"{url}/start", headers=brand.key_headers)).status_code == 200
        store = services(app).store
        await rooms.publisher_back(store, made["id"])
        await rooms.publisher_gone(store, made["id"], at=clock())
        clock.moment += timedelta(seconds=29)
        await asyncio.sleep(1.5)  # at least one pass of the loop inside the grace period
        assert (await client.get(url)).json()["state"] == "live"
        clock.moment += timedelta(seconds=2)
        deadline = time.monotonic() + 20
        while (room := (await client.get(url)).json())["state"] != "ended":
            assert time.monotonic() < deadline, "the loop never ended the room"
            await asyncio.sleep(0.05)  # polling the real state
        assert room["ended_reason"] == "publisher_gone"
        account = (await client.get(f"/api/v1/accounts/{brand.account_id}")).json()
        assert account["live_room_id"] is None


async def test_staff_moderate_the_chat_over_the_api_and_it_is_audited(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand)
    url = f"/api/v1/rooms/{made['id']}/moderation"
    fan = await mint(client, brand)
    fan_id = fan["fan_id"]
    muted = await client.post(
        url, json={"action": "mute", "fan_id": fan_id, "minutes": 15}, headers=brand.key_headers
    )
    assert muted.status_code == 200, muted.text
    assert muted.json()["action"] == "mute" and muted.json()["until"] > muted.json()["at"]
    banned = await client.post(
        url, json={"action": "ban", "fan_id": fan_id}, headers=brand.key_headers
    )
    assert banned.status_code == 200 and banned.json()["by"].startswith("key:")
    bad = [
        ({"action": "shout"}, "action"),
        ({"action": "delete", "seq": 1}, "seq"),  # no such message yet
        ({"action": "mute", "fan_id": fan_id}, "minutes"),
        ({"action": "ban", "fan_id": "someone"}, "fan_id"),
    ]
    for body, field in bad:
        r = await client.post(url, json=body, headers=brand.key_headers)
        assert (r.status_code, r.json().get("field")) == (422, field), r.text
    nobody = await client.post(
        url, json={"action": "unban", "fan_id": "fan_0000000000unknown"}, headers=brand.key_headers
    )
    assert nobody.status_code == 404
    other = await sign_up(client)
    refused = await client.post(url, json={"action": "clear"}, headers=other.key_headers)
    assert refused.status_code == 403 and refused.json()["code"] == "role_required"
    as_fan = await client.post(url, json={"action": "clear"}, headers=bearer(fan["token"]))
    assert as_fan.status_code == 403
    log = await client.get(url, headers=brand.key_headers)
    assert [r["action"] for r in log.json()["items"]] == ["ban", "mute"]
    assert (await client.get(url)).status_code == 401


async def test_chat_rules_and_the_word_policy_are_set_over_the_api(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand)
    assert made["chat"] == {"mode": "all", "min_tier": 0, "slow_mode_s": 0}
    url = f"/api/v1/rooms/{made['id']}/chat"
    rules = {"mode": "followers", "min_tier": 0, "slow_mode_s": 30}
    r = await client.put(url, json=rules, headers=brand.key_headers)
    assert r.status_code == 200 and r.json()["chat"] == rules
    got = await client.get(f"/api/v1/rooms/{made['id']}")
    assert got.json()["chat"] == rules
    for body, field in [
        ({"mode": "tier", "min_tier": 0}, "min_tier"),
        ({"mode": "friends"}, "mode"),
        ({"mode": "all", "slow_mode_s": 601}, "slow_mode_s"),
    ]:
        bad = await client.put(url, json=body, headers=brand.key_headers)
        assert (bad.status_code, bad.json().get("field")) == (422, field), bad.text
    other = await sign_up(client)
    refused = await client.put(url, json=rules, headers=other.key_headers)
    assert refused.status_code == 403
    await client.post(f"/api/v1/rooms/{made['id']}/end", headers=brand.key_headers)
    ended = await client.put(url, json=rules, headers=brand.key_headers)
    assert (ended.status_code, ended.json()["code"]) == (409, "room_ended")
    # The account decides whether chat with a sensitive word is starred or refused.
    account = f"/api/v1/accounts/{brand.account_id}"
    assert (await client.get(account)).json()["chat_words"] == "mask"
    blocked = await client.patch(account, json={"chat_words": "block"}, headers=brand.key_headers)
    assert blocked.status_code == 200 and blocked.json()["chat_words"] == "block"
    wrong = await client.patch(account, json={"chat_words": "hide"}, headers=brand.key_headers)
    assert (wrong.status_code, wrong.json().get("field")) == (422, "chat_words")
