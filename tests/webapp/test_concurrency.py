"""Races through the whole HTTP stack: credits, retried credits and follow storms."""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.conftest import Brand, bearer, mint


async def test_200_concurrent_credits_and_200_concurrent_retries_end_exact(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    fan = await mint(client, brand)
    url = f"/api/v1/accounts/{brand.account_id}/wallets/{fan['fan_id']}/credits"

    async def credit(key: str, points: int) -> httpx.Response:
        return await client.post(
            url,
            json={"points": points, "reason": "race"},
            headers={**brand.key_headers, "Idempotency-Key": key},
        )

    distinct = await asyncio.gather(*(credit(f"d-{i}", i + 1) for i in range(200)))
    assert all(r.status_code == 201 for r in distinct)
    retries = await asyncio.gather(*(credit("same-key", 1000) for _ in range(200)))
    assert all(r.status_code == 201 for r in retries)
    assert len({r.json()["entry_id"] for r in retries}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in retries) == 199
    expected = sum(range(1, 201)) + 1000
    wallet = await client.get(
        f"/api/v1/accounts/{brand.account_id}/wallets/{fan['fan_id']}", headers=brand.key_headers
    )
    assert wallet.json()["balance"] == expected
    # Each answer's balance is the balance right after that entry, so all 201 differ.
    assert len({r.json()["balance"] for r in distinct} | {retries[0].json()["balance"]}) == 201
    assert max(r.json()["balance"] for r in distinct + retries) == expected
    entries = 0
    cursor = None
    while True:
        params = {
            "limit": "100",
            "book": f"wallet:{fan['fan_id']}",
            **({"cursor": cursor} if cursor else {}),
        }
        page = await client.get(
            f"/api/v1/accounts/{brand.account_id}/ledger", params=params, headers=brand.key_headers
        )
        entries += len(page.json()["items"])
        if (cursor := page.json()["next_cursor"]) is None:
            break
    assert entries == 201


async def test_follow_unfollow_storm_ends_with_the_true_count(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    tokens = [(await mint(client, brand, f"storm-{i}"))["token"] for i in range(40)]
    rng = random.Random(11)
    url = f"/api/v1/accounts/{brand.account_id}/follow"
    plan = [(rng.choice(tokens), rng.random() < 0.55) for _ in range(400)]

    async def act(token: str, on: bool) -> int:
        call = client.post if on else client.delete
        return (await call(url, headers=bearer(token))).status_code

    assert set(await asyncio.gather(*(act(t, on) for t, on in plan))) == {200}
    followers = 0
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/api/v1/accounts/{brand.account_id}/followers",
            params=params,
            headers=brand.key_headers,
        )
        followers += len(page.json()["items"])
        if (cursor := page.json()["next_cursor"]) is None:
            break
    # Each fan's last planned action decides its state only if actions ran in order; what must
    # hold regardless of interleaving is that the counter equals the edges that exist.
    profile = await client.get(f"/api/v1/accounts/{brand.account_id}")
    assert profile.json()["follower_count"] == followers
    states = await asyncio.gather(
        *(client.get(f"/api/v1/accounts/{brand.account_id}", headers=bearer(t)) for t in tokens)
    )
    assert sum(s.json()["following"] for s in states) == followers
