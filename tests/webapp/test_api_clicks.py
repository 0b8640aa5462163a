"""Service-link clicks over HTTP: a published content's links carry click URLs, ``/go`` counts
each click id once and redirects to the service, the brand's backend reports the order, and
the stats (API and console) show the funnel."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from store.engines import sqlite_path
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_bad_input import PROBLEM, snapshot
from webapp.settings import Settings

SHOP = {"app_id": "wx_shop", "page": "pages/goods", "query": {"sku": "A1"}, "title": "买茶"}
H5 = {**SHOP, "title": "网页版", "url": "https://shop.example/goods?sku=A1"}


async def publish(
    client: httpx.AsyncClient, brand: Brand, links: list[dict[str, Any]], title: str = "新品"
) -> str:
    article = {
        "kind": "article",
        "title": title,
        "blocks": [{"type": "paragraph", "text": "新茶"}],
        "service_links": links,
    }
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents", json=article, headers=brand.key_headers
    )
    assert made.status_code == 201, made.text
    assert "click_url" not in made.json()["service_links"][0]  # a draft's links go nowhere yet
    content_id: str = made.json()["id"]
    r = await client.post(
        f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers
    )
    assert r.json()["status"] == "published", r.text
    return content_id


async def click_urls(client: httpx.AsyncClient, content_id: str) -> list[str]:
    r = await client.get(f"/api/v1/contents/{content_id}")
    return [link["click_url"] for link in r.json()["service_links"]]


def click_id(url: str) -> str:
    return url.rsplit("/", 1)[-1]


async def stats_of(client: httpx.AsyncClient, brand: Brand, content_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/accounts/{brand.account_id}/stats", headers=brand.key_headers)
    assert r.status_code == 200, r.text
    row: dict[str, Any] = next(c for c in r.json()["contents"] if c["content_id"] == content_id)
    return row


def problem(r: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert (r.json()["code"], r.json().get("field")) == (code, field), r.json()


async def test_a_click_url_redirects_to_the_service_and_counts_once(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await publish(client, brand, [SHOP, H5])
    urls = await click_urls(client, content_id)
    assert all(u.startswith("http://testserver/go/ck_") for u in urls)
    assert set(urls).isdisjoint(await click_urls(client, content_id))  # fresh ids per answer
    # Outside a mini-program the H5 link goes to the service's own page with the click id.
    went = await client.get(urls[1])
    assert went.status_code == 302
    target = urlsplit(went.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.example", "/goods")
    assert parse_qs(target.query) == {"sku": ["A1"], "la_click": [click_id(urls[1])]}
    again = await client.get(urls[1])  # a reload: the same redirect, not a second click
    assert again.status_code == 302 and again.headers["location"] == went.headers["location"]
    assert (await client.head(urls[0])).status_code == 302  # a link checker counts nothing
    row = await stats_of(client, brand, content_id)
    assert row["clicks"] == 1
    await client.get(urls[0])
    assert (await stats_of(client, brand, content_id))["clicks"] == 2
    # The public counters stay what they were: clicks are the brand's business.
    public = (await client.get(f"/api/v1/contents/{content_id}")).json()
    assert "clicks" not in public["counters"]


async def test_a_mini_program_link_opens_a_page_that_hands_it_over(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await publish(client, brand, [{**SHOP, "image": "https://cdn.example/t.png"}])
    (url,) = await click_urls(client, content_id)
    went = await client.get(url)
    assert went.status_code == 302
    assert went.headers["location"] == f"/open/{click_id(url)}"
    page = await client.get(went.headers["location"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for shown in ("买茶", "wx_shop", "pages/goods", "sku=A1", f"la_click={click_id(url)}"):
        assert shown in html, shown
    assert 'src="https://cdn.example/t.png"' in html
    assert '<script type="module" src="/static/open.js">' in html
    assert "wx.miniProgram.navigateTo" in (await client.get("/static/open.js")).text
    # Opening the page records nothing more: the click was counted at /go.
    assert (await stats_of(client, brand, content_id))["clicks"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        "ck_forged",
        "ck_" + "A" * 80,
        "nothing",
        "ck_" + "A" * 400,
    ],
)
async def test_a_forged_click_is_not_found(
    client: httpx.AsyncClient, brand: Brand, settings: Settings, bad: str
) -> None:
    content_id = await publish(client, brand, [SHOP])
    before = snapshot(sqlite_path(settings.store, settings.data_dir))
    problem(await client.get(f"/go/{bad}"), 404, "click_not_found", "click_id")
    opened = await client.get(f"/open/{bad}")
    assert opened.status_code == 404 and opened.headers["content-type"].startswith("text/html")
    assert snapshot(sqlite_path(settings.store, settings.data_dir)) == before
    assert (await stats_of(client, brand, content_id))["clicks"] == 0


async def test_an_altered_click_id_is_not_found(client: httpx.AsyncClient, brand: Brand) -> None:
    content_id = await publish(client, brand, [SHOP])
    (url,) = await click_urls(client, content_id)
    last = "A" if url[-1] != "A" else "B"
    problem(await client.get(url[:-1] + last), 404, "click_not_found", "click_id")
    assert (await client.get(url)).status_code == 302


async def _followed(client: httpx.AsyncClient, brand: Brand, content_id: str) -> str:
    (url, *_) = await click_urls(client, content_id)
    assert (await client.get(url)).status_code == 302
    return click_id(url)


async def test_a_brand_reports_an_order_once(client: httpx.AsyncClient, brand: Brand) -> None:
    content_id = await publish(client, brand, [SHOP])
    ck = await _followed(client, brand, content_id)
    order = {"click_id": ck, "order_id": "o-1", "amount": 12900}
    first = await client.post("/api/v1/conversions", json=order, headers=brand.key_headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["content_id"], body["currency"], body["repeat"]) == (content_id, "CNY", False)
    again = await client.post(
        "/api/v1/conversions", json={**order, "amount": 1}, headers=brand.key_headers
    )
    assert again.status_code == 200 and again.json() == {**body, "repeat": True}
    # An Idempotency-Key replays the first answer itself.
    keyed = {**brand.key_headers, "Idempotency-Key": "report-2"}
    usd = {**order, "order_id": "o-2", "amount": 500, "currency": "USD"}
    made = await client.post("/api/v1/conversions", json=usd, headers=keyed)
    replay = await client.post("/api/v1/conversions", json=usd, headers=keyed)
    assert made.status_code == replay.status_code == 201
    assert replay.json() == made.json() and replay.headers["idempotent-replayed"] == "true"
    row = await stats_of(client, brand, content_id)
    assert (row["clicks"], row["conversions"], row["amount"]) == (1, 2, 13400)
    assert row["amounts"] == {"CNY": 12900, "USD": 500}


async def test_a_conversion_needs_a_followed_click_of_the_keys_account(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    other = await sign_up(client)
    content_id = await publish(client, brand, [SHOP])
    followed = await _followed(client, brand, content_id)
    (shown_only,) = [click_id(u) for u in await click_urls(client, content_id)]
    fan = bearer((await mint(client, brand))["token"])
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    order = {"click_id": followed, "order_id": "o-1", "amount": 1}
    r = await client.post("/api/v1/conversions", json=order, headers=other.key_headers)
    problem(r, 404, "click_not_found", "click_id")
    r = await client.post(
        "/api/v1/conversions", json={**order, "click_id": shown_only}, headers=brand.key_headers
    )
    problem(r, 404, "click_not_found", "click_id")
    r = await client.post("/api/v1/conversions", json=order)
    problem(r, 401, "authentication_required", "Authorization")
    r = await client.post("/api/v1/conversions", json=order, headers=fan)
    problem(r, 403, "wrong_credential", "Authorization")
    client.cookies = brand.cookies
    r = await client.post("/api/v1/conversions", json=order, headers=brand.staff_headers)
    problem(r, 403, "wrong_credential", "Authorization")
    client.cookies.clear()
    assert snapshot(db) == before


ORDER: dict[str, Any] = {"order_id": "o-1", "amount": 100}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": 100.0}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 10**12 + 1}, "amount"),
        ({"amount": None}, "amount"),
        ({"order_id": ""}, "order_id"),
        ({"order_id": "o" * 129}, "order_id"),
        ({"order_id": " o-1"}, "order_id"),
        ({"order_id": 7}, "order_id"),
        ({"currency": "cny"}, "currency"),
        ({"currency": "YUAN"}, "currency"),
        ({"click_id": ""}, "click_id"),
        ({"click_id": "c" * 201}, "click_id"),
        ({"shop": "x"}, "shop"),
        ({"_drop": "order_id"}, "order_id"),
        ({"_drop": "click_id"}, "click_id"),
    ],
)
async def test_a_bad_report_names_its_field_and_writes_nothing(
    client: httpx.AsyncClient,
    brand: Brand,
    settings: Settings,
    changes: dict[str, Any],
    field: str,
) -> None:
    content_id = await publish(client, brand, [SHOP])
    body = {"click_id": await _followed(client, brand, content_id), **ORDER, **changes}
    body.pop(body.pop("_drop", "_drop"), None)
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    headers = {**brand.key_headers, "Idempotency-Key": "k-1"}
    r = await client.post("/api/v1/conversions", json=body, headers=headers)
    problem(r, 422, "invalid_field", field)
    assert snapshot(db) == before


async def test_stats_show_followers_and_each_contents_funnel(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    older = await publish(client, brand, [SHOP], title="旧品")
    newer = await publish(client, brand, [SHOP], title="新品")
    fan = bearer((await mint(client, brand))["token"])
    assert (
        await client.post(f"/api/v1/accounts/{brand.account_id}/follow", headers=fan)
    ).is_success
    assert (await client.post(f"/api/v1/contents/{older}/likes", headers=fan)).is_success
    await _followed(client, brand, older)
    url = f"/api/v1/accounts/{brand.account_id}/stats"
    first = (await client.get(url, params={"limit": 1}, headers=brand.key_headers)).json()
    assert first["followers"] == 1 and first["account_id"] == brand.account_id
    assert [c["content_id"] for c in first["contents"]] == [newer]
    rest = await client.get(
        url, params={"limit": 1, "cursor": first["next_cursor"]}, headers=brand.key_headers
    )
    (row,) = rest.json()["contents"]
    assert (row["content_id"], row["title"], row["likes"], row["clicks"]) == (older, "旧品", 1, 1)
    assert (row["views"], row["plays"], row["completion_rate"], row["conversions"]) == (
        0,
        0,
        0.0,
        0,
    )
    # Any staff role reads them; fans, strangers and other brands do not.
    client.cookies = brand.cookies
    assert (await client.get(url)).status_code == 200
    client.cookies.clear()
    other = await sign_up(client)
    problem(await client.get(url), 401, "authentication_required", "Authorization")
    problem(await client.get(url, headers=fan), 403, "wrong_credential", "Authorization")
    problem(await client.get(url, headers=other.key_headers), 403, "wrong_account", "Authorization")
    r = await client.get(url, params={"limit": 0}, headers=brand.key_headers)
    problem(r, 422, "invalid_field", "limit")
    r = await client.get(url, params={"cursor": "x"}, headers=brand.key_headers)
    problem(r, 400, "invalid_cursor", "cursor")


async def test_the_console_shows_the_funnel(client: httpx.AsyncClient, brand: Brand) -> None:
    content_id = await publish(client, brand, [SHOP], title="秋茶")
    ck = await _followed(client, brand, content_id)
    order = {"click_id": ck, "order_id": "o-1", "amount": 12900}
    r = await client.post("/api/v1/conversions", json=order, headers=brand.key_headers)
    assert r.status_code == 201
    client.cookies = brand.cookies
    page = await client.get("/console")
    assert page.status_code == 200
    html = page.text
    row = html[html.index(f'data-content-id="{content_id}"') :]
    row = row[: row.index("</tr>")]
    assert "秋茶" in row
    assert '<td class="clicks">1</td>' in row and '<td class="conversions">1</td>' in row
    assert "CNY 129.00" in row


@pytest.mark.parametrize(
    "url", ["http://shop.example/a", "https://brand.example@evil.example/", "javascript:x", 5]
)
async def test_a_service_link_url_is_https_without_credentials(
    client: httpx.AsyncClient, brand: Brand, settings: Settings, url: Any
) -> None:
    article = {
        "kind": "article",
        "title": "新品",
        "blocks": [{"type": "paragraph", "text": "新茶"}],
        "service_links": [SHOP, {**SHOP, "url": url}],
    }
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents", json=article, headers=brand.key_headers
    )
    problem(r, 422, "invalid_field", "service_links.1.url")
    assert snapshot(db) == before
