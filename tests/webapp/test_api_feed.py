from __future__ import annotations

import httpx

from tests.conftest import Brand, bearer, mint, sign_up


async def _post(client: httpx.AsyncClient, brand: Brand, text: str, publish: bool = True) -> str:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": text},
        headers=brand.key_headers,
    )
    content_id: str = made.json()["id"]
    if publish:
        await client.post(
            f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers
        )
    return content_id


async def test_the_following_feed_has_followed_accounts_published_posts_newest_first(
    client: httpx.AsyncClient,
) -> None:
    tea = await sign_up(client)
    cafe = await sign_up(client)
    other = await sign_up(client)
    fan = bearer((await mint(client, tea, "f"))["token"])
    for brand in (tea, cafe):
        await client.post(f"/api/v1/accounts/{brand.account_id}/follow", headers=fan)
    first = await _post(client, tea, "one")
    await _post(client, other, "not followed")
    await _post(client, cafe, "draft", publish=False)
    second = await _post(client, cafe, "two")
    third = await _post(client, tea, "three")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/me/feed", params=params, headers=fan)).json()
        seen += [c["id"] for c in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [third, second, first]


async def test_a_fan_who_follows_no_one_has_an_empty_feed(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    fan = bearer((await mint(client, brand))["token"])
    r = await client.get("/api/v1/me/feed", headers=fan)
    assert r.json() == {"items": [], "next_cursor": None}
    assert (await client.get("/api/v1/me/feed")).status_code == 401
