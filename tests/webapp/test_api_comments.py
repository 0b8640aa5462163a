from __future__ import annotations

import httpx
from starlette.applications import Starlette

from content.sensitive import add_words
from tests.conftest import Brand, bearer, mint
from webapp.context import Services


async def _live(client: httpx.AsyncClient, brand: Brand) -> str:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": "新品"},
        headers=brand.key_headers,
    )
    content_id: str = made.json()["id"]
    await client.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers)
    return content_id


async def test_fans_comment_and_the_brand_replies_marked(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    url = f"/api/v1/contents/{await _live(client, brand)}"
    fan = bearer((await mint(client, brand, "lily"))["token"])
    top = await client.post(f"{url}/comments", json={"text": "好喝！"}, headers=fan)
    assert top.status_code == 201, top.text
    assert top.json()["by_staff"] is False and top.json()["author_name"] == "fan lily"
    reply = await client.post(
        f"{url}/comments",
        json={"text": "谢谢喜欢", "parent_id": top.json()["id"]},
        headers=brand.key_headers,
    )
    assert reply.status_code == 201 and reply.json()["by_staff"] is True
    listed = (await client.get(f"{url}/comments")).json()["items"]
    assert [(c["text"], c["replies"]) for c in listed] == [("好喝！", 1)]
    replies = (await client.get(f"{url}/comments", params={"parent_id": top.json()["id"]})).json()[
        "items"
    ]
    assert [c["text"] for c in replies] == ["谢谢喜欢"]
    assert (await client.get(url)).json()["counters"]["comments"] == 2
    # Replies go one level deep; a reply to a reply names no top-level comment.
    deep = await client.post(
        f"{url}/comments", json={"text": "x", "parent_id": reply.json()["id"]}, headers=fan
    )
    assert deep.status_code == 404 and deep.json()["field"] == "parent_id"


async def test_flagged_comments_are_held_and_bad_ones_refused(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    url = f"/api/v1/contents/{await _live(client, brand)}"
    fan = bearer((await mint(client, brand))["token"])
    r = await client.post(f"{url}/comments", json={"text": "   "}, headers=fan)
    assert r.status_code == 422 and r.json()["field"] == "text"
    assert (await client.post(f"{url}/comments", json={"text": "hi"})).status_code == 401
    r = await client.post(f"{url}/comments", json={"text": "x" * 501}, headers=fan)
    assert r.status_code == 422 and r.json()["field"] == "text"
    assert (await client.get(url)).json()["counters"]["comments"] == 0


async def test_a_comment_with_flagged_words_is_held_not_shown(
    app: Starlette, client: httpx.AsyncClient, brand: Brand
) -> None:
    services: Services = app.state.services
    await add_words(services.store, account_id=None, words=["赌博"], now=services.now())
    url = f"/api/v1/contents/{await _live(client, brand)}"
    fan = bearer((await mint(client, brand))["token"])
    held = await client.post(f"{url}/comments", json={"text": "来赌博吧"}, headers=fan)
    assert held.status_code == 201 and held.json()["hidden"] is True
    assert (await client.get(f"{url}/comments")).json()["items"] == []
    assert (await client.get(url)).json()["counters"]["comments"] == 0
