"""oEmbed and discovery (webapp/embed_pages.py, the pages' heads): each page of ours — an
account, a content, a room — names its oEmbed answer, and the answer frames the page's
widget; a URL that is not ours is 404."""

from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import Brand
from tests.webapp.test_api_clicks import SHOP, publish
from tests.webapp.test_api_rooms import make

BASE = "http://testserver"


def discovered(html: str) -> str:
    [href] = re.findall(
        r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"', html
    )
    return unescape(href)


async def test_every_page_of_ours_names_an_oembed_answer_that_frames_its_widget(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await publish(client, brand, [SHOP], title="秋冬新茶")
    room = await make(client, brand)
    for page, widget, attribute, subject in [
        (f"/@{brand.handle}", "follow", "account", brand.account_id),
        (f"/c/{content_id}", "content-card", "content", content_id),
        (f"/r/{room['id']}", "live", "room", room["id"]),
    ]:
        html = (await client.get(page)).text
        href = discovered(html)
        assert parse_qs(urlsplit(href).query)["url"] == [f"{BASE}{page}"]
        answer = await client.get(href)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["version"], body["type"], body["provider_name"]) == (
            "1.0",
            "rich",
            "lifeaccount",
        )
        assert body["author_url"] == f"{BASE}/@{brand.handle}"
        [src] = re.findall(r'<iframe src="([^"]+)"', body["html"])
        assert unescape(src) == f"{BASE}/embed/{widget}?{attribute}={subject}"
        framed = await client.get(unescape(src))
        assert framed.status_code == 200
    small = await client.get("/oembed", params={"url": f"{BASE}/c/{content_id}", "maxwidth": "200"})
    assert small.json()["width"] == 200 and 'width="200"' in small.json()["html"]
    for odd in ["²", "9" * 5000, "-5", "abc"]:  # the widget's own size, never a 500
        r = await client.get("/oembed", params={"url": f"{BASE}/c/{content_id}", "maxwidth": odd})
        assert r.status_code == 200 and r.json()["width"] == 360, odd
    tiny = await client.get("/oembed", params={"url": f"{BASE}/c/{content_id}", "maxwidth": "90"})
    assert tiny.json()["width"] == 90  # never above the consumer's maximum


async def test_the_account_page_says_what_it_is_to_machines(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    html = (await client.get(f"/@{brand.handle}")).text
    [data] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    profile = json.loads(data)
    assert (profile["@type"], profile["mainEntity"]["@type"]) == ("ProfilePage", "Organization")
    assert profile["mainEntity"]["alternateName"] == f"@{brand.handle}"
    assert profile["mainEntity"]["interactionStatistic"]["userInteractionCount"] == 0


async def test_a_url_that_is_not_a_page_of_ours_is_not_found(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    for url in [
        "https://elsewhere.example/@tea",
        f"{BASE}/console",
        f"{BASE}/c/cnt_nope",
        f"{BASE}/@nobody-here",
        "",
    ]:
        r = await client.get("/oembed", params={"url": url})
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), url
        assert r.headers["access-control-allow-origin"] == "*"
    xml = await client.get("/oembed", params={"url": f"{BASE}/@{brand.handle}", "format": "xml"})
    assert xml.status_code == 501
