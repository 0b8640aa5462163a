"""Polls over HTTP: staff ask, each fan votes once (the tier read by the server at each vote),
the results add up to the votes, and a closed poll takes no more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from store.engines import sqlite_path
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_bad_input import Clock, snapshot
from webapp.app import create_app
from webapp.settings import Settings

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
ASK = {"question": "下一款上什么？", "options": ["乌龙", "红茶", "白茶"], "closes_in_s": 600}


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Starlette]:
    application = create_app(settings, now=clock)
    async with application.router.lifespan_context(application):
        yield application


async def ask(client: httpx.AsyncClient, brand: Brand, **changes: Any) -> Any:
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/polls",
        json={**ASK, **changes},
        headers=brand.key_headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def vote(client: httpx.AsyncClient, poll: Any, token: str, option: int) -> httpx.Response:
    return await client.post(
        f"/api/v1/polls/{poll['id']}/votes", json={"option": option}, headers=bearer(token)
    )


async def test_each_fan_votes_once_and_the_counts_add_up(
    client: httpx.AsyncClient, brand: Brand, clock: Clock
) -> None:
    poll = await ask(client, brand)
    assert (poll["counts"], poll["total"], poll["state"]) == ([0, 0, 0], 0, "open")
    fans = [(await mint(client, brand, f"v{n}"))["token"] for n in range(4)]
    for token, option in zip(fans, [1, 1, 2, 1], strict=True):
        r = await vote(client, poll, token, option)
        assert r.status_code == 201 and r.json()["repeat"] is False
    again = await vote(client, poll, fans[0], 1)  # the same answer: the first vote
    assert (again.status_code, again.json()["repeat"], again.json()["counts"]) == (
        200,
        True,
        [0, 3, 1],
    )
    other = await vote(client, poll, fans[0], 0)
    assert (other.status_code, other.json()["code"]) == (409, "already_voted")
    read = await client.get(f"/api/v1/polls/{poll['id']}", headers=bearer(fans[2]))
    assert (read.json()["counts"], read.json()["total"], read.json()["mine"]) == ([0, 3, 1], 4, 2)
    assert (await client.get(f"/api/v1/polls/{poll['id']}")).json()["mine"] is None
    clock.advance(601)
    late = await vote(client, poll, (await mint(client, brand, "late"))["token"], 0)
    assert (late.status_code, late.json()["code"]) == (409, "poll_closed")
    closed = (await client.get(f"/api/v1/polls/{poll['id']}")).json()
    assert (closed["state"], closed["total"]) == ("closed", 4)
    listed = await client.get(f"/api/v1/accounts/{brand.account_id}/polls")
    assert [p["id"] for p in listed.json()["items"]] == [poll["id"]]


async def test_a_poll_for_members_reads_the_tier_at_each_vote(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    account = f"/api/v1/accounts/{brand.account_id}"
    ladder = {"tiers": [{"rank": 0, "name": "粉丝"}, {"rank": 1, "name": "银卡"}]}
    assert (await client.put(f"{account}/tiers", json=ladder, headers=brand.key_headers)).is_success
    poll = await ask(client, brand, min_tier=1)
    fan = await mint(client, brand, "m1")
    low = await vote(client, poll, fan["token"], 0)
    assert (low.status_code, low.json()["code"]) == (403, "tier_required")
    member = await client.put(
        f"{account}/members/{fan['fan_id']}", json={"tier": 1}, headers=brand.key_headers
    )
    assert member.is_success
    assert (await vote(client, poll, fan["token"], 0)).status_code == 201


async def test_bad_polls_and_votes_name_their_field_and_write_nothing(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    other = await sign_up(client)
    their_room = await client.post(
        f"/api/v1/accounts/{other.account_id}/rooms",
        json={"title": "别家"},
        headers=other.key_headers,
    )
    poll = await ask(client, brand)
    fan = await mint(client, brand, "b1")
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    url = f"/api/v1/accounts/{brand.account_id}/polls"
    for changes, code, field in [
        ({"options": ["只有一个"]}, "invalid_field", "options"),
        ({"options": ["a", "b", "c", "d", "e", "f", "g"]}, "invalid_field", "options"),
        ({"options": ["同", "同"]}, "invalid_field", "options.1"),
        ({"options": ["a", " "]}, "invalid_field", "options.1"),
        ({"question": ""}, "invalid_field", "question"),
        ({"closes_in_s": 5}, "invalid_field", "closes_in_s"),
        ({"room_id": their_room.json()["id"]}, "unknown_room", "room_id"),
        ({"room_id": "room_nope"}, "unknown_room", "room_id"),
    ]:
        r = await client.post(url, json={**ASK, **changes}, headers=brand.key_headers)
        assert r.status_code == 422, (changes, r.text)
        assert (r.json()["code"], r.json().get("field")) == (code, field), (changes, r.json())
    for option in (3, -1):
        r = await vote(client, poll, fan["token"], option)
        assert (r.status_code, r.json().get("field")) == (422, "option"), r.text
    refused = await client.post(url, json=ASK, headers=other.key_headers)
    assert refused.status_code == 403
    assert (
        await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"option": 0})
    ).status_code == 401
    assert snapshot(db) == before
