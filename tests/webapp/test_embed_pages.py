"""The embed pages (webapp/embed_pages.py): one widget a page, framed only by the origins of
the account it shows (the search box anywhere), and a clear page for a wrong address."""

from __future__ import annotations

import httpx

from tests.conftest import Brand
from tests.webapp.test_embedding import allow


async def test_an_embed_page_may_be_framed_by_its_accounts_origins_only(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await allow(client, brand, "https://shop.example", "http://localhost:8080")
    r = await client.get(f"/embed/follow?account={brand.account_id}")
    assert r.status_code == 200
    assert f'<la-follow account="{brand.account_id}">' in r.text
    assert '<script type="module" src="/static/embed.js">' in r.text
    policy = r.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://shop.example http://localhost:8080;" in policy
    assert "frame-ancestors *" not in policy
    await allow(client, brand)  # no origins: only this deployment's own pages
    alone = await client.get(f"/embed/follow?account={brand.account_id}")
    assert "frame-ancestors 'self';" in alone.headers["content-security-policy"]
    box = await client.get("/embed/search-box?q=茶")
    assert "frame-ancestors *;" in box.headers["content-security-policy"]


async def test_a_wrong_embed_address_answers_a_page_that_says_so(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    assert (await client.get("/embed/carousel?account=x")).status_code == 404
    missing = await client.get("/embed/follow")
    assert missing.status_code == 400 and "/embed/follow?account=" in missing.text
    assert (await client.get("/embed/follow?account=acc_nope")).status_code == 404
    unknown = await client.get("/embed/coupon?coupon=cpn_nope")
    assert (
        unknown.status_code == 404
        and "frame-ancestors 'none'" in unknown.headers["content-security-policy"]
    )
    script = await client.get("/embed/like?content=<script>alert(1)</script>")
    assert script.status_code == 404 and "<script>alert" not in script.text
