from __future__ import annotations

import asyncio
import random

import httpx

from tests.conftest import Brand, bearer, mint


async def _published(client: httpx.AsyncClient, brand: Brand, publish: bool = True) -> str:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": "新品"},
        headers=brand.key_headers,
    )
    content_id: str = made.json()["id"]
    if publish:
        await client.post(
            f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers
        )
    return content_id


async def test_likes_are_idempotent_and_counted(client: httpx.AsyncClient, brand: Brand) -> None:
    url = f"/api/v1/contents/{await _published(client, brand)}"
    a = bearer((await mint(client, brand, "a"))["token"])
    b = bearer((await mint(client, brand, "b"))["token"])
    assert (await client.post(f"{url}/likes", headers=a)).json() == {"liked": True, "likes": 1}
    assert (await client.post(f"{url}/likes", headers=a)).json() == {"liked": True, "likes": 1}
    assert (await client.post(f"{url}/likes", headers=b)).json() == {"liked": True, "likes": 2}
    assert (await client.delete(f"{url}/likes", headers=a)).json() == {"liked": False, "likes": 1}
    assert (await client.delete(f"{url}/likes", headers=a)).json() == {"liked": False, "likes": 1}
    content = (await client.get(url)).json()
    assert content["counters"]["likes"] == 1


async def test_only_fans_like_and_only_published_contents(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    draft = f"/api/v1/contents/{await _published(client, brand, publish=False)}"
    fan = bearer((await mint(client, brand))["token"])
    r = await client.post(f"{draft}/likes", headers=fan)
    assert r.status_code == 404 and r.json()["field"] == "content_id"
    live = f"/api/v1/contents/{await _published(client, brand)}"
    assert (await client.post(f"{live}/likes")).status_code == 401
    assert (await client.post(f"{live}/likes", headers=brand.key_headers)).status_code == 403


async def test_a_like_storm_ends_with_the_true_count(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    url = f"/api/v1/contents/{await _published(client, brand)}"
    fans = [bearer((await mint(client, brand, f"s{i}"))["token"]) for i in range(30)]
    rng = random.Random(3)
    plan = [(rng.choice(fans), rng.random() < 0.6) for _ in range(300)]

    async def act(headers: dict[str, str], on: bool) -> int:
        call = client.post if on else client.delete
        return (await call(f"{url}/likes", headers=headers)).status_code

    assert set(await asyncio.gather(*(act(h, on) for h, on in plan))) == {200}
    counted = (await client.get(url)).json()["counters"]["likes"]
    # Unlike one by one: each fan who had liked takes exactly one off the counter, so the
    # counter equals the likes that exist only if it ends at 0 after as many steps.
    holders, before = 0, counted
    for headers in fans:
        after = (await client.delete(f"{url}/likes", headers=headers)).json()["likes"]
        holders += before - after
        before = after
    assert before == 0 and holders == counted
