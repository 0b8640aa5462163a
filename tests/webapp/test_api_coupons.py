"""Coupons over HTTP: brands create them, anyone reads them, fans claim them exactly once
each time (DESIGN §4, §8), and a bad request names its field and writes nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from store.clock import rfc3339
from store.engines import sqlite_path
from tests.conftest import Brand, bearer, make_settings, mint, sign_up
from tests.webapp.test_bad_input import PROBLEM, Clock, snapshot
from webapp.app import create_app
from webapp.settings import Settings

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Starlette]:
    application = create_app(settings, now=clock)
    async with application.router.lifespan_context(application):
        yield application


def coupon_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "满100减20",
        "stock": 3,
        "per_fan_limit": 2,
        "valid_from": rfc3339(START - timedelta(hours=1)),
        "valid_until": rfc3339(START + timedelta(days=7)),
    }
    return {**body, **changes}


async def make(client: httpx.AsyncClient, brand: Brand, **changes: Any) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/coupons",
        json=coupon_body(**changes),
        headers=brand.key_headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def problem(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == code, r.json()
    assert r.json().get("field") == field, r.json()


async def test_a_brand_creates_coupons_and_anyone_lists_and_reads_them(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    made = await make(client, brand, description="限门店")
    assert made["id"].startswith("cpn_") and made["account_id"] == brand.account_id
    assert (made["total"], made["stock"], made["claimed_count"]) == (3, 3, 0)
    assert made["valid_until"] == "2026-12-03T08:00:00.000Z" and "claimed" not in made
    # The owner's console session may create them too (with its CSRF token).
    client.cookies = brand.cookies
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/coupons",
        json=coupon_body(title="第二张"),
        headers=brand.staff_headers,
    )
    assert r.status_code == 201, r.text
    client.cookies.clear()
    url = f"/api/v1/accounts/{brand.account_id}/coupons"
    first = (await client.get(url, params={"limit": 1})).json()
    rest = (await client.get(url, params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [c["title"] for c in first["items"] + rest["items"]] == ["第二张", "满100减20"]
    assert rest["next_cursor"] is None
    read = await client.get(f"/api/v1/coupons/{made['id']}")
    assert read.status_code == 200 and read.json() == made


async def test_who_may_create_a_coupon(client: httpx.AsyncClient, brand: Brand) -> None:
    other = await sign_up(client)
    fan = await mint(client, brand)
    url = f"/api/v1/accounts/{brand.account_id}/coupons"
    problem(
        await client.post(url, json=coupon_body()), 401, "authentication_required", "Authorization"
    )
    r = await client.post(url, json=coupon_body(), headers=bearer(fan["token"]))
    problem(r, 403, "wrong_credential", "Authorization")
    r = await client.post(url, json=coupon_body(), headers=other.key_headers)
    problem(r, 403, "wrong_account", "Authorization")
    r = await client.post(
        "/api/v1/accounts/acc_missing/coupons", json=coupon_body(), headers=other.key_headers
    )
    problem(r, 404, "account_not_found", "account_id")
    client.cookies = brand.cookies
    problem(await client.post(url, json=coupon_body()), 403, "csrf_failed", "X-CSRF-Token")
    client.cookies.clear()
    r = await client.get("/api/v1/accounts/acc_missing/coupons")
    problem(r, 404, "account_not_found", "account_id")
    problem(await client.get("/api/v1/coupons/cpn_missing"), 404, "coupon_not_found", "coupon_id")
    assert (await client.get(url)).json()["items"] == []


async def test_a_fan_claims_up_to_the_limit_and_a_retry_answers_the_first_claim(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    coupon = await make(client, brand, stock=3, per_fan_limit=2)
    fan = bearer((await mint(client, brand, "u1"))["token"])
    url = f"/api/v1/coupons/{coupon['id']}/claims"
    first = await client.post(url, headers={**fan, "Idempotency-Key": "op-1"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["number"], body["repeat"], body["stock"]) == (1, False, 2)
    retry = await client.post(url, headers={**fan, "Idempotency-Key": "op-1"})
    assert retry.status_code == 200, retry.text
    assert retry.json() == {**body, "repeat": True}
    second = await client.post(url, headers=fan)  # no key: a claim of its own
    assert second.status_code == 201 and second.json()["number"] == 2
    problem(await client.post(url, headers=fan), 409, "coupon_limit_reached", "coupon_id")
    read = (await client.get(f"/api/v1/coupons/{coupon['id']}", headers=fan)).json()
    assert (read["claimed"], read["claimed_count"], read["stock"]) == (2, 2, 1)
    other = bearer((await mint(client, brand, "u2"))["token"])
    assert (await client.post(url, headers=other)).status_code == 201
    third = bearer((await mint(client, brand, "u3"))["token"])
    problem(await client.post(url, headers=third), 409, "coupon_out_of_stock", "coupon_id")
    # The retry still answers after the stock ran out.
    again = await client.post(url, headers={**fan, "Idempotency-Key": "op-1"})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert again.json()["stock"] == 0


async def test_claims_only_inside_the_window_and_only_by_fans(
    client: httpx.AsyncClient, brand: Brand, clock: Clock
) -> None:
    later = await make(
        client,
        brand,
        valid_from=rfc3339(START + timedelta(hours=1)),
        valid_until=rfc3339(START + timedelta(hours=2)),
    )
    fan = bearer((await mint(client, brand, "u1", ttl_s=86400))["token"])
    url = f"/api/v1/coupons/{later['id']}/claims"
    problem(await client.post(url, headers=fan), 409, "coupon_not_started", "coupon_id")
    clock.advance(3600)
    assert (await client.post(url, headers=fan)).status_code == 201
    clock.advance(3600)
    problem(await client.post(url, headers=fan), 409, "coupon_expired", "coupon_id")
    problem(await client.post(url), 401, "authentication_required", "Authorization")
    problem(
        await client.post(url, headers=brand.key_headers), 403, "wrong_credential", "Authorization"
    )
    r = await client.post("/api/v1/coupons/cpn_missing/claims", headers=fan)
    problem(r, 404, "coupon_not_found", "coupon_id")


async def test_a_fan_lists_their_claims_newest_first(
    client: httpx.AsyncClient, brand: Brand, clock: Clock
) -> None:
    other = await sign_up(client)
    mine, theirs = await make(client, brand), await make(client, other)
    fan = bearer((await mint(client, brand, "u1"))["token"])
    for coupon in (mine, theirs, mine):
        clock.advance(1)
        r = await client.post(f"/api/v1/coupons/{coupon['id']}/claims", headers=fan)
        assert r.status_code == 201, r.text
    listed = (await client.get("/api/v1/me/coupons", headers=fan)).json()
    assert [(c["coupon_id"], c["number"]) for c in listed["items"]] == [
        (mine["id"], 2),
        (theirs["id"], 1),
        (mine["id"], 1),
    ]
    own = await client.get(
        "/api/v1/me/coupons", params={"account_id": other.account_id, "limit": 5}, headers=fan
    )
    assert [c["coupon_id"] for c in own.json()["items"]] == [theirs["id"]]
    problem(await client.get("/api/v1/me/coupons"), 401, "authentication_required", "Authorization")
    r = await client.get("/api/v1/me/coupons", headers=brand.key_headers)
    problem(r, 403, "wrong_credential", "Authorization")


COUPONS = "/api/v1/accounts/{a}/coupons"


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "field"),
    [
        ("POST", COUPONS, coupon_body(title=""), {}, "title"),
        ("POST", COUPONS, coupon_body(title="t" * 61), {}, "title"),
        ("POST", COUPONS, coupon_body(title="   "), {}, "title"),
        ("POST", COUPONS, coupon_body(stock=0), {}, "stock"),
        ("POST", COUPONS, coupon_body(stock="5"), {}, "stock"),
        ("POST", COUPONS, coupon_body(stock=1.5), {}, "stock"),
        ("POST", COUPONS, coupon_body(stock=10**9), {}, "stock"),
        ("POST", COUPONS, coupon_body(per_fan_limit=0), {}, "per_fan_limit"),
        ("POST", COUPONS, coupon_body(per_fan_limit=101), {}, "per_fan_limit"),
        ("POST", COUPONS, coupon_body(valid_from="tomorrow"), {}, "valid_from"),
        ("POST", COUPONS, coupon_body(valid_from="2026-11-26T08:00:00"), {}, "valid_from"),
        ("POST", COUPONS, coupon_body(valid_until=5), {}, "valid_until"),
        (
            "POST",
            COUPONS,
            coupon_body(valid_until=rfc3339(START - timedelta(hours=2))),
            {},
            "valid_until",
        ),  # before valid_from
        (
            "POST",
            COUPONS,
            coupon_body(
                valid_from=rfc3339(START - timedelta(days=2)),
                valid_until=rfc3339(START - timedelta(days=1)),
            ),
            {},
            "valid_until",
        ),  # already over
        ("POST", COUPONS, coupon_body(description="d" * 501), {}, "description"),
        ("POST", COUPONS, coupon_body(color="red"), {}, "color"),
        ("POST", COUPONS, {k: v for k, v in coupon_body().items() if k != "stock"}, {}, "stock"),
        ("GET", COUPONS + "?limit=0", None, {}, "limit"),
        ("GET", COUPONS + "?limit=101", None, {}, "limit"),
        (
            "POST",
            "/api/v1/coupons/{coupon}/claims",
            None,
            {"Idempotency-Key": "k" * 201},
            "Idempotency-Key",
        ),
        (
            "POST",
            "/api/v1/coupons/{coupon}/claims",
            None,
            {"Idempotency-Key": "é"},
            "Idempotency-Key",
        ),
        ("POST", "/api/v1/coupons/{coupon}/claims", {"count": 2}, {}, "body"),
        ("GET", "/api/v1/me/coupons?limit=x", None, {}, "limit"),
    ],
)
async def test_bad_input_names_its_field_and_writes_nothing(
    client: httpx.AsyncClient,
    brand: Brand,
    settings: Settings,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    field: str,
) -> None:
    coupon = await make(client, brand)
    fan = bearer((await mint(client, brand))["token"])
    auth = fan if "claims" in path or "/me/" in path else brand.key_headers
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    # Raw header bytes, so that a non-ASCII key reaches the server as sent.
    raw = [(k.encode(), v.encode()) for k, v in {**auth, **headers}.items()]
    r = await client.request(
        method, path.format(a=brand.account_id, coupon=coupon["id"]), json=body, headers=raw
    )
    problem(r, 422, "unexpected_body" if field == "body" else "invalid_field", field)
    assert snapshot(db) == before


async def test_racing_claims_over_http_end_exact(tmp_path: Path) -> None:
    """200 coupons, 100 fans with a limit of 2, 400 claims at once plus retries of their keys:
    exactly 200 claims, nobody above the limit, nothing left."""
    application = create_app(make_settings(tmp_path / "data", sqlite_threads=True))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            brand = await sign_up(client)
            now = datetime.now(UTC)
            coupon = await make(
                client,
                brand,
                stock=200,
                per_fan_limit=2,
                valid_from=rfc3339(now - timedelta(hours=1)),
                valid_until=rfc3339(now + timedelta(days=1)),
            )
            fans = [bearer((await mint(client, brand, f"f{i}"))["token"]) for i in range(100)]
            url = f"/api/v1/coupons/{coupon['id']}/claims"

            async def attempt(n: int) -> tuple[int, int, str, str | None]:
                fan, key = n % 100, f"k{n // 100 % 3}"  # keys k0, k1, k2; k0 sent twice
                r = await client.post(url, headers={**fans[fan], "Idempotency-Key": key})
                body = r.json()
                return fan, r.status_code, key, body.get("id") or body.get("code")

            outcomes = await asyncio.gather(*(attempt(n) for n in range(400)))
            claimed = Counter(fan for fan, status, _, _ in outcomes if status == 201)
            assert sum(claimed.values()) == 200 and set(claimed.values()) == {2}
            repeats = [o for o in outcomes if o[1] == 200]
            assert repeats and all(key == "k0" for _, _, key, _ in repeats)
            by_key = {(fan, key): what for fan, status, key, what in outcomes if status == 201}
            assert all(by_key[(fan, key)] == what for fan, _, key, what in repeats)
            refusals = {what for _, status, _, what in outcomes if status == 409}
            assert refusals <= {"coupon_limit_reached"}
            read = (await client.get(f"/api/v1/coupons/{coupon['id']}")).json()
            assert (read["stock"], read["claimed_count"]) == (0, 200)
            held = await asyncio.gather(
                *(client.get(f"/api/v1/coupons/{coupon['id']}", headers=f) for f in fans)
            )
            assert {h.json()["claimed"] for h in held} == {2}
