"""Props over the API in-process (webapp/api_props.py): the catalog, sends gated by the tier
the server reads (never one a token or request claims), paid once per Idempotency-Key, shown
in the room and on its supporter board; every refusal moves no point (the app fixture audits
the ledger after each test)."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from accounts import ledger
from live.channel import topic
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_editorial import join
from tests.webapp.test_api_rooms import make, services

CATALOG = [
    {"name": "小心心", "price": 1, "effect": "heart"},
    {"name": "奶茶", "price": 10, "effect": "tea", "icon": "https://cdn.example/tea.png"},
    {"name": "金卡火箭", "price": 100, "min_tier": 2, "effect": "rocket"},
]


async def setup_room(client: httpx.AsyncClient, brand: Brand) -> tuple[str, list[dict[str, Any]]]:
    ladder = {
        "tiers": [
            {"rank": 0, "name": "粉丝"},
            {"rank": 1, "name": "银卡"},
            {"rank": 2, "name": "金卡"},
        ]
    }
    assert (
        await client.put(
            f"/api/v1/accounts/{brand.account_id}/tiers", json=ladder, headers=brand.key_headers
        )
    ).status_code == 200
    made = await client.put(
        f"/api/v1/accounts/{brand.account_id}/props",
        json={"props": CATALOG},
        headers=brand.key_headers,
    )
    assert made.status_code == 200, made.text
    room = await make(client, brand)
    await client.post(f"/api/v1/rooms/{room['id']}/start", headers=brand.key_headers)
    return room["id"], made.json()["props"]


async def grant(
    client: httpx.AsyncClient, brand: Brand, fan_id: str, points: int, key: str
) -> None:
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/wallets/{fan_id}/credits",
        json={"points": points, "reason": "test"},
        headers={**brand.key_headers, "Idempotency-Key": key},
    )
    assert r.status_code in (200, 201), r.text


async def test_the_catalog_is_set_kept_by_id_and_shown_to_fans(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    url = f"/api/v1/accounts/{brand.account_id}/props"
    made = (await client.put(url, json={"props": CATALOG}, headers=brand.key_headers)).json()[
        "props"
    ]
    assert [p["name"] for p in made] == ["小心心", "奶茶", "金卡火箭"]
    assert made[2]["min_tier"] == 2 and made[0]["enabled"] is True
    # Keep the tea (by id), hide the heart, retire the rocket.
    again = [
        {**CATALOG[1], "id": made[1]["id"], "price": 12},
        {**CATALOG[0], "id": made[0]["id"], "enabled": False},
    ]
    kept = (await client.put(url, json={"props": again}, headers=brand.key_headers)).json()["props"]
    assert [(p["id"], p["price"], p["enabled"]) for p in kept] == [
        (made[1]["id"], 12, True),
        (made[0]["id"], 1, False),
    ]
    public = (await client.get(url)).json()["props"]
    assert [p["name"] for p in public] == ["奶茶"]  # fans see what is enabled
    assert public[0]["locked"] is None  # no fan, no lock to tell
    for body, field in [
        ({"props": [{"name": "x", "price": 0}]}, "props.0.price"),
        ({"props": [{"name": "", "price": 1}]}, "props.0.name"),
        ({"props": [{"name": "x", "price": 1, "effect": "Big Boom"}]}, "props.0.effect"),
        ({"props": [{"name": "x", "price": 1, "id": "prp_0000000000nothing"}]}, "props.0.id"),
    ]:
        bad = await client.put(url, json=body, headers=brand.key_headers)
        assert (bad.status_code, bad.json().get("field")) == (422, field), bad.text
    fan = await mint(client, brand)
    assert (
        await client.put(url, json={"props": []}, headers=bearer(fan["token"]))
    ).status_code == 403
    moderator = await join(client, brand, "moderator")
    assert (
        await client.put(url, json={"props": []}, headers=moderator.use(client))
    ).status_code == 403


async def test_a_send_is_paid_once_per_key_and_gated_by_the_tier_the_server_reads(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room_id, catalog = await setup_room(client, brand)
    heart, tea, rocket = (p["id"] for p in catalog)
    fan = await mint(client, brand, "rich")
    await grant(client, brand, fan["fan_id"], 500, "g1")
    as_fan = bearer(fan["token"])
    store = services(app).store

    async def send(prop_id: str, key: str, **body: Any) -> httpx.Response:
        return await client.post(
            f"/api/v1/rooms/{room_id}/props/{prop_id}/sends",
            json=body,
            headers={**as_fan, "Idempotency-Key": key},
        )

    sent = await send(tea, "s1", count=3)
    assert (sent.status_code, sent.json()) == (200, {"balance": 470, "points": 30, "repeat": False})
    assert (await send(tea, "s1", count=3)).json()["balance"] == 470  # the retry pays nothing
    assert await ledger.balance(store, brand.account_id, "takings") == 30
    # Below the rocket's tier 2: refused, nothing moves — whatever the request claims.
    before = await ledger.book_sums(store, brand.account_id)
    refused = await send(rocket, "s2")
    assert (refused.status_code, refused.json()["code"]) == (403, "tier_required")
    forged = await send(rocket, "s3", tier=2)
    assert (forged.status_code, forged.json().get("field")) == (422, "tier")
    assert await ledger.book_sums(store, brand.account_id) == before
    catalog_url = f"/api/v1/accounts/{brand.account_id}/props"
    listed = (await client.get(catalog_url, headers=as_fan)).json()["props"]
    assert [p["locked"] for p in listed] == [False, False, True]  # the page's lock
    # The brand raises the fan to tier 2: the next send goes through; lowered, it is refused.
    member = f"/api/v1/accounts/{brand.account_id}/members/{fan['fan_id']}"
    assert (
        await client.put(member, json={"tier": 2}, headers=brand.key_headers)
    ).status_code == 200
    assert (await send(rocket, "s4")).json()["balance"] == 370
    assert (
        await client.put(member, json={"tier": 0}, headers=brand.key_headers)
    ).status_code == 200
    assert (await send(rocket, "s5")).json()["code"] == "tier_required"
    # ...but a retry of the send that went through answers it again, and still charges once.
    assert (await send(rocket, "s4")).json() == {"balance": 370, "points": 100, "repeat": False}
    poor = await send(rocket, "s6", count=99)
    assert poor.json()["code"] in ("tier_required", "insufficient_points")
    assert (await send(heart, "s7", count=500)).status_code == 422  # at most 99 a send
    too_much = await send(tea, "s8", count=99)  # 990 points > 370
    assert (too_much.status_code, too_much.json()["code"]) == (409, "insufficient_points")
    missing = await client.post(
        f"/api/v1/rooms/{room_id}/props/{tea}/sends", json={}, headers=as_fan
    )
    assert missing.status_code == 428
    # The board and the totals.
    board = (await client.get(f"/api/v1/rooms/{room_id}/supporters")).json()
    assert board == {
        "items": [{"fan_id": fan["fan_id"], "name": "fan rich", "points": 130}],
        "points": 130,
        "fans": 1,
    }
    kept = await services(app).broker.recent(topic(room_id))
    props_told = [e for e in kept if b'"type":"prop"' in e.frame]
    assert len(props_told) == 2  # the tea and the rocket, each once


async def test_props_are_the_accounts_own_and_only_in_a_live_room(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    room_id, catalog = await setup_room(client, brand)
    other = await sign_up(client)
    theirs = await client.put(
        f"/api/v1/accounts/{other.account_id}/props",
        json={"props": [{"name": "别家", "price": 1}]},
        headers=other.key_headers,
    )
    fan = await mint(client, brand)
    await grant(client, brand, fan["fan_id"], 10, "g")
    headers = {**bearer(fan["token"]), "Idempotency-Key": "k"}
    stranger = theirs.json()["props"][0]["id"]
    wrong = await client.post(
        f"/api/v1/rooms/{room_id}/props/{stranger}/sends", json={}, headers=headers
    )
    assert (wrong.status_code, wrong.json()["code"]) == (404, "prop_not_found")
    await client.post(f"/api/v1/rooms/{room_id}/end", headers=brand.key_headers)
    ended = await client.post(
        f"/api/v1/rooms/{room_id}/props/{catalog[0]['id']}/sends", json={}, headers=headers
    )
    assert (ended.status_code, ended.json()["code"]) == (409, "room_not_live")
