"""Views, plays, the discover feed and the search box through the API, in-process."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Brand, bearer, mint, sign_up
from tests.media.clips import make_clip

TUS = {"Tus-Resumable": "1.0.0"}


async def published_video(client: httpx.AsyncClient, key: dict[str, str], account_id: str) -> str:
    """A real one-second video, uploaded, transcoded by the app's worker and published."""
    with tempfile.TemporaryDirectory() as tmp:
        data = make_clip(Path(tmp) / "clip.mp4", size="160x90", seconds=1.0).read_bytes()
    made = await client.post(
        "/api/v1/uploads", headers={**key, **TUS, "Upload-Length": str(len(data))}
    )
    location = made.headers["location"]
    patched = await client.patch(
        location,
        content=data,
        headers={
            **key,
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 204, patched.text
    body = {"kind": "video", "title": "新品开箱", "upload_id": location.rsplit("/", 1)[-1]}
    created = await client.post(f"/api/v1/accounts/{account_id}/contents", json=body, headers=key)
    assert created.status_code == 201, created.text
    url = f"/api/v1/contents/{created.json()['id']}"
    await client.post(f"{url}/publish", json={}, headers=key)
    for _ in range(600):  # bounded: ~60 s on a loaded machine
        state = (await client.get(url, headers=key)).json()
        if state["status"] == "published":
            return str(state["id"])
        assert state["media"]["state"] != "failed", state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} was never published: {state}")


async def article(client: httpx.AsyncClient, brand: Brand, title: str = "新品") -> str:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "article", "title": title, "blocks": [{"type": "paragraph", "text": "t"}]},
        headers=brand.key_headers,
    )
    assert made.status_code == 201, made.text
    content_id: str = made.json()["id"]
    r = await client.post(
        f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers
    )
    assert r.json()["status"] == "published", r.text
    return content_id


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    return body


async def test_views_count_once_per_viewer_and_show_in_the_counters(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await article(client, brand)
    url = f"/api/v1/contents/{content_id}/views"
    first = await client.post(url, json={"viewer": "v-1"})
    assert first.status_code == 200, first.text
    assert first.json()["counted"] is True and first.json()["counters"]["views"] == 1
    again = await client.post(url, json={"viewer": "v-1"})
    assert again.json() == {**first.json(), "counted": False}
    assert (await client.post(url, json={"viewer": "v-2"})).json()["counters"]["views"] == 2
    assert (await client.post(url, json={})).json()["counted"] is True  # no id: the address
    fan = bearer((await mint(client, brand))["token"])
    assert (await client.post(url, json={"viewer": "v-1"}, headers=fan)).json()["counted"]
    assert not (await client.post(url, json={}, headers=fan)).json()["counted"]  # the same fan
    counters = (await client.get(f"/api/v1/contents/{content_id}")).json()["counters"]
    assert counters["views"] == 4 and counters["completion_rate"] == 0


async def test_a_player_starts_a_play_and_completes_it_once(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    video = await published_video(client, brand.key_headers, brand.account_id)
    url = f"/api/v1/contents/{video}/plays"
    started = await client.post(url, json={"viewer": "v-1"})
    assert started.status_code == 201, started.text
    play = started.json()
    assert play["counted"] and not play["completed"] and play["counters"]["plays"] == 1
    progress = f"{url}/{play['play_id']}"
    halfway = await client.patch(progress, json={"watched_s": 0.4})
    assert halfway.status_code == 200, halfway.text
    assert not halfway.json()["completed"]
    ended = await client.patch(progress, json={"watched_s": 1, "completed": True})
    assert ended.json()["completed"] and ended.json()["counted"]
    assert ended.json()["counters"]["play_completions"] == 1
    again = await client.patch(progress, json={"watched_s": 1, "completed": True})
    assert again.json()["completed"] and not again.json()["counted"]
    await client.post(url, json={"viewer": "v-2"})
    counters = (await client.get(f"/api/v1/contents/{video}")).json()["counters"]
    assert counters["plays"] == 2 and counters["play_completions"] == 1
    assert counters["completion_rate"] == 0.5
    # Bad input names its field; an unknown play is not found.
    r = await client.patch(progress, json={"watched_s": -1})
    assert problem(r, 422)["field"] == "watched_s"
    r = await client.patch(progress, json={"watched_s": "1"})
    assert problem(r, 422)["field"] == "watched_s"
    r = await client.patch(f"{url}/ply_nope", json={"watched_s": 1})
    assert problem(r, 404)["field"] == "play_id"
    r = await client.post(url, json={"viewer": "not an id!"})
    assert problem(r, 422)["field"] == "viewer"


async def test_an_article_is_viewed_not_played(client: httpx.AsyncClient, brand: Brand) -> None:
    content_id = await article(client, brand)
    r = await client.post(f"/api/v1/contents/{content_id}/plays", json={})
    assert problem(r, 409)["code"] == "not_a_video"
    r = await client.post("/api/v1/contents/cnt_nope/views", json={})
    assert problem(r, 404)["field"] == "content_id"
    r = await client.post(f"/api/v1/contents/{content_id}/views", json={"viewer": "x" * 65})
    assert problem(r, 422)["field"] == "viewer"


async def test_the_discover_feed_ranks_and_pages(client: httpx.AsyncClient, brand: Brand) -> None:
    other = await sign_up(client)
    ids = [await article(client, b, f"t{i}") for i, b in enumerate([brand, other] * 3)]
    fan = bearer((await mint(client, brand))["token"])
    liked = ids[0]  # the oldest, liked: now the hottest
    assert (await client.post(f"/api/v1/contents/{liked}/likes", headers=fan)).status_code == 200
    await client.post(f"/api/v1/contents/{liked}/views", json={})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/v1/feed/discover", params=params)
        assert r.status_code == 200, r.text
        seen += [c["id"] for c in r.json()["items"]]
        if (cursor := r.json()["next_cursor"]) is None:
            break
    assert seen[0] == liked and sorted(seen) == sorted(ids)
    assert seen[1:] == list(reversed(ids[1:]))  # the rest, newest first
    r = await client.get("/api/v1/feed/discover", params={"cursor": "forged"})
    assert problem(r, 400)["field"] == "cursor"
    r = await client.get("/api/v1/feed/discover", params={"limit": "0"})
    assert problem(r, 422)["field"] == "limit"


async def test_the_search_box(client: httpx.AsyncClient) -> None:
    tea = await sign_up(client, "tea-house")
    links = [{"app_id": "wx_tea", "page": "pages/shop/index", "title": "去下单"}]
    made = await client.post(
        f"/api/v1/accounts/{tea.account_id}/contents",
        json={"kind": "post", "text": "今日新品", "service_links": links},
        headers=tea.key_headers,
    )
    content_id = made.json()["id"]
    await client.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=tea.key_headers)
    r = await client.patch(
        f"/api/v1/accounts/{tea.account_id}",
        json={"keywords": ["喝茶", "Tea Time"]},
        headers=tea.key_headers,
    )
    assert r.status_code == 200, r.text
    for q in ("喝茶", "ＴＥＡ ｔｉｍｅ", "TEA-HOUSE"):
        r = await client.get("/api/v1/search/box", params={"q": q})
        assert r.status_code == 200, r.text
        box = r.json()["box"]
        assert box["account"]["id"] == tea.account_id, q
        assert [s["page"] for s in box["services"]] == ["pages/shop/index"]
        assert box["services"][0]["click_url"].startswith("http://testserver/go/")
        assert [c["id"] for c in box["contents"]] == [content_id]
        assert box["coupons"] == [] and box["live"] is None
    r = await client.get("/api/v1/search/box", params={"q": "喝"})
    assert r.status_code == 200 and r.json() == {"box": None}
    for q in ("", "x" * 65, "   "):
        r = await client.get("/api/v1/search/box", params={"q": q})
        assert problem(r, 422)["field"] == "q", q
    r = await client.get("/api/v1/search/box")
    assert problem(r, 422)["field"] == "q"
