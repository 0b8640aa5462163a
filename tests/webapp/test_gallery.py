"""The widget gallery and the demo brand in-process: without a demo the gallery says how to
start one and still documents every widget; seeded (once, however often), every widget is
placed on the demo brand's ids; the pinned build's snippet carries the bundle's integrity."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette

from accounts.accounts import ACCOUNTS
from tests.webapp.test_api_rooms import services
from webapp import demo
from webapp.embed_pages import WIDGETS


async def test_without_a_demo_the_gallery_says_how_and_documents_every_widget(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/developers/widgets")).text
    assert "lifeaccount demo" in page
    for kind in WIDGETS.values():
        assert f"&lt;{kind.tag} {kind.attribute}=" in page  # its snippet
    assert page.count('class="widget-live"') == 1  # the search box alone needs no ids
    facts = (await client.get("/sdk/lifeaccount.json")).json()
    assert f'integrity="{facts["integrity"]}"' in page and facts["url"] in page


async def test_the_demo_brand_is_seeded_once_and_every_widget_shows_it(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    first = await demo.seed(services(app))
    again = await demo.seed(services(app))
    assert first == again
    assert await services(app).store.collection(ACCOUNTS).count({"handle": demo.HANDLE}) == 1
    page = (await client.get("/developers/widgets")).text
    assert "lifeaccount demo" not in page
    placed = dict(re.findall(r'<div class="widget-live"><(la-[a-z-]+) [a-z]+="([^"]+)"', page))
    assert placed == {
        "la-follow": first.account_id,
        "la-like": first.content_id,
        "la-comments": first.content_id,
        "la-poll": first.poll_id,
        "la-content-card": first.content_id,
        "la-live": first.room_id,
        "la-red-packet": first.room_id,
        "la-coupon": first.coupon_id,
        "la-search-box": "demo tea",
    }
    box = (await client.get("/api/v1/search/box", params={"q": "demo tea"})).json()
    assert box["box"]["account"]["id"] == first.account_id
    content = (await client.get(f"/api/v1/contents/{first.content_id}")).json()
    assert content["status"] == "published" and content["service_links"][0]["click_url"]
