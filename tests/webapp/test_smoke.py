from __future__ import annotations

import httpx

from tests.conftest import Brand, bearer, mint


async def test_health_answers_ok_when_engines_work(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "store": "ok", "broker": "ok", "media": "ok"}


async def test_fan_follows_and_the_count_shows(client: httpx.AsyncClient, brand: Brand) -> None:
    fan = await mint(client, brand)
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/follow", headers=bearer(fan["token"])
    )
    assert r.json() == {"following": True, "follower_count": 1}
    r = await client.get(f"/api/v1/accounts/{brand.account_id}")
    assert r.json()["follower_count"] == 1
    assert "following" not in r.json() and "budget" not in r.json()
