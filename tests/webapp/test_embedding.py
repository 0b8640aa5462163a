"""Widgets on other origins (webapp/embedding.py): an account's embed_origins get CORS on the
calls its widgets make — preflight and answer — and nothing else does: an unlisted origin, a
call widgets do not make, or another account's thing is refused before any handler runs."""

from __future__ import annotations

import httpx

from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_clicks import SHOP as SERVICE
from tests.webapp.test_api_clicks import publish

SHOP = "https://shop.example"
EVIL = "https://evil.example"


async def allow(client: httpx.AsyncClient, brand: Brand, *origins: str) -> None:
    r = await client.patch(
        f"/api/v1/accounts/{brand.account_id}",
        json={"embed_origins": list(origins)},
        headers=brand.key_headers,
    )
    assert r.status_code == 200, r.text


def preflight(method: str, origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_listed_origin_follows_through_a_widget_and_an_unlisted_one_cannot(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await allow(client, brand, SHOP, "http://localhost:8080")
    follow = f"/api/v1/accounts/{brand.account_id}/follow"
    asked = await client.options(follow, headers=preflight("POST", SHOP))
    assert asked.status_code == 204
    assert asked.headers["access-control-allow-origin"] == SHOP
    assert "Authorization" in asked.headers["access-control-allow-headers"]
    assert asked.headers["access-control-allow-methods"] == "POST"
    assert "access-control-allow-credentials" not in asked.headers  # tokens, never cookies
    assert asked.headers["vary"] == "Origin"
    fan = await mint(client, brand)
    done = await client.post(follow, headers={**bearer(fan["token"]), "Origin": SHOP})
    assert done.status_code == 200 and done.json()["following"] is True
    assert done.headers["access-control-allow-origin"] == SHOP
    # An unlisted origin: no grant on the preflight, and the call itself has no effect.
    refused = await client.options(follow, headers=preflight("DELETE", EVIL))
    assert (refused.status_code, refused.json()["code"]) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in refused.headers
    sneaked = await client.delete(follow, headers={**bearer(fan["token"]), "Origin": EVIL})
    assert sneaked.status_code == 403 and "access-control-allow-origin" not in sneaked.headers
    account = await client.get(f"/api/v1/accounts/{brand.account_id}", headers=bearer(fan["token"]))
    assert account.json()["following"] is True and account.json()["follower_count"] == 1


async def test_only_widget_calls_of_the_origins_own_account_are_granted(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await allow(client, brand, SHOP)
    other = await sign_up(client)
    ours = await publish(client, brand, [SERVICE], title="我们的")
    theirs = await publish(client, other, [SERVICE], title="别家的")
    got = await client.get(f"/api/v1/contents/{ours}", headers={"Origin": SHOP})
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == SHOP
    for method, path in [
        ("GET", f"/api/v1/contents/{theirs}"),  # another account's content
        ("GET", "/api/v1/contents/cnt_nope"),  # nothing there: no account to ask
        ("POST", f"/api/v1/accounts/{brand.account_id}/rooms"),  # not a widget call
        ("DELETE", f"/api/v1/contents/{ours}"),  # a widget route, not a widget method
        ("GET", "/api/v1/me/wallets"),
    ]:
        r = await client.request(method, path, headers={"Origin": SHOP, **brand.key_headers})
        assert (r.status_code, r.json()["code"]) == (403, "origin_not_allowed"), (method, path)
    # The search box is public: every origin may read it, with no credentials.
    box = await client.get("/api/v1/search/box", params={"q": "茶"}, headers={"Origin": EVIL})
    assert box.status_code == 200 and box.headers["access-control-allow-origin"] == "*"
    # Our own pages, and callers without an Origin, are not cross-origin at all.
    same = await client.get(f"/api/v1/contents/{theirs}", headers={"Origin": "http://testserver"})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    plain = await client.get(f"/api/v1/contents/{theirs}")
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


async def test_our_own_pages_are_never_taken_for_another_origin(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    rooms = f"/api/v1/accounts/{brand.account_id}/rooms"  # not a widget call
    for headers in [
        {"Origin": "HTTP://TESTSERVER:80"},  # spelled otherwise, the same origin
        {"Origin": "https://proxy.example", "Sec-Fetch-Site": "same-origin"},  # the browser says
    ]:
        r = await client.post(
            rooms, json={"title": "同源"}, headers={**headers, **brand.key_headers}
        )
        assert r.status_code == 201, (headers, r.text)
        assert "access-control-allow-origin" not in r.headers
    foreign = {"Origin": "https://proxy.example", "Sec-Fetch-Site": "cross-site"}
    r = await client.post(rooms, json={"title": "跨站"}, headers={**foreign, **brand.key_headers})
    assert (r.status_code, r.json()["code"]) == (403, "origin_not_allowed")


async def test_an_embed_origin_is_a_plain_origin_and_nothing_more(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    for bad in ["https://a.example *", "https://x.example;script-src 'unsafe-inline' *", "*"]:
        r = await client.patch(
            f"/api/v1/accounts/{brand.account_id}",
            json={"embed_origins": [SHOP, bad]},
            headers=brand.key_headers,
        )
        assert (r.status_code, r.json()["field"]) == (422, "embed_origins.1"), r.text
    await allow(client, brand, "https://Shop.Example:443", "http://[::1]:8080")
    account = await client.get(f"/api/v1/accounts/{brand.account_id}")
    assert account.json()["embed_origins"] == [SHOP, "http://[::1]:8080"]
