from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Brand, sign_up


async def _article(
    client: httpx.AsyncClient, brand: Brand, title: str, text: str, publish: bool = True
) -> str:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "article", "title": title, "blocks": [{"type": "paragraph", "text": text}]},
        headers=brand.key_headers,
    )
    assert made.status_code == 201, made.text
    if publish:
        r = await client.post(
            f"/api/v1/contents/{made.json()['id']}/publish", json={}, headers=brand.key_headers
        )
        assert r.json()["status"] == "published", r.text
    content_id: str = made.json()["id"]
    return content_id


async def _search(client: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_two_character_chinese_queries_find_what_was_just_published(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    live = await _article(client, brand, "新品上市", "春季茶饮，护肤小样")
    await _article(client, brand, "新品草稿", "还没发布", publish=False)
    found = await _search(client, "新品")
    assert [c["id"] for c in found["contents"]] == [live]  # drafts are never found
    assert [c["id"] for c in (await _search(client, "护肤"))["contents"]] == [live]
    assert [c["id"] for c in (await _search(client, "茶"))["contents"]] == [live]
    assert (await _search(client, "咖啡"))["contents"] == []
    # Deleting takes it out of search.
    r = await client.delete(f"/api/v1/contents/{live}", headers=brand.key_headers)
    assert r.status_code == 204
    assert (await _search(client, "新品"))["contents"] == []


async def test_accounts_are_found_by_name_handle_and_keywords(
    client: httpx.AsyncClient,
) -> None:
    tea = await sign_up(client, "tea-house")
    await client.patch(
        f"/api/v1/accounts/{tea.account_id}",
        json={"name": "茶馆生活号", "keywords": ["护肤"]},
        headers=tea.key_headers,
    )
    await sign_up(client, "coffee-bar")
    for q in ("茶馆", "tea-house", "护肤", "TEA"):
        assert [a["id"] for a in (await _search(client, q))["accounts"]] == [tea.account_id], q


async def test_pages_and_hostile_queries(client: httpx.AsyncClient, brand: Brand) -> None:
    ids = {await _article(client, brand, f"新品 {i}", "上新") for i in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await _search(client, "上新", **params)
        seen += [c["id"] for c in page["contents"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(seen) == sorted(ids)
    for q in ['"', "*", "OR", "NEAR(", ")", "'; DROP TABLE x; --", "🍵"]:
        await _search(client, q)
    r = await client.get("/api/v1/search", params={"q": "x" * 201})
    assert r.status_code == 422 and r.json()["field"] == "q"
    r = await client.get("/api/v1/search", params={"q": "新品", "cursor": "forged"})
    assert r.status_code == 400 and r.json()["field"] == "cursor"


async def test_every_route_answers_contents_alike(client: httpx.AsyncClient, brand: Brand) -> None:
    # Search, feeds, reads and edits all show a content with its page and its links' click
    # URLs: one serializer (webapp.api_contents.contents_out) for every route.
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={
            "kind": "post",
            "text": "秋季新品到店",
            "service_links": [{"app_id": "wx_tea", "page": "pages/shop", "title": "下单"}],
        },
        headers=brand.key_headers,
    )
    content_id = made.json()["id"]
    await client.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers)
    edited = await client.patch(
        f"/api/v1/contents/{content_id}", json={"text": "秋季新品到店啦"}, headers=brand.key_headers
    )
    answers = {
        "edit": edited.json(),
        "read": (await client.get(f"/api/v1/contents/{content_id}")).json(),
        "search": (await _search(client, "新品"))["contents"][0],
        "feed": (await client.get(f"/api/v1/accounts/{brand.account_id}/contents")).json()["items"][
            0
        ],
        "discover": (await client.get("/api/v1/feed/discover")).json()["items"][0],
    }
    for route, answer in answers.items():
        assert answer["id"] == content_id, route
        assert answer["url"].endswith(f"/c/{content_id}"), route
        [link] = answer["service_links"]
        assert "/go/ck_" in link["click_url"], route
