"""A click on a mini-program service link in a real browser: ``/go`` counts it and leads to
``/open``, which navigates inside a mini-program's web-view and offers the target to copy
anywhere else."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.support import Owner, sign_up_api

pytestmark = pytest.mark.e2e

SHOP = {"app_id": "wx_shop", "page": "pages/goods", "query": {"sku": "A1"}, "title": "买茶"}
# What WeChat's JS-SDK gives a page inside a mini-program's web-view, recording the calls.
WEB_VIEW = "window.wx = {miniProgram: {navigateTo: (o) => { window.__opened = o.url; }}};"


def click_url(api: httpx.Client) -> tuple[Owner, str, str]:
    owner = sign_up_api(api)
    article = {
        "kind": "article",
        "title": "新品",
        "blocks": [{"type": "paragraph", "text": "新茶"}],
        "service_links": [SHOP],
    }
    made = api.post(
        f"/api/v1/accounts/{owner.account_id}/contents", json=article, headers=owner.key_headers
    )
    assert made.status_code == 201, made.text
    content_id = made.json()["id"]
    r = api.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=owner.key_headers)
    assert r.json()["status"] == "published", r.text
    (link,) = api.get(f"/api/v1/contents/{content_id}").json()["service_links"]
    return owner, content_id, urlsplit(link["click_url"]).path


def clicks(api: httpx.Client, owner: Owner, content_id: str) -> int:
    r = api.get(f"/api/v1/accounts/{owner.account_id}/stats", headers=owner.key_headers)
    return int(next(c for c in r.json()["contents"] if c["content_id"] == content_id)["clicks"])


def test_inside_a_web_view_the_page_navigates_to_the_service(page: Page, api: httpx.Client) -> None:
    owner, content_id, go = click_url(api)
    page.add_init_script(WEB_VIEW)
    page.goto(go)
    click_id = go.rsplit("/", 1)[-1]
    assert page.url.endswith(f"/open/{click_id}")
    expect(page.locator("#open-status")).to_have_text("Opening the mini-program…")
    opened = page.evaluate("window.__opened")
    assert opened == f"/pages/goods?sku=A1&la_click={click_id}"
    assert clicks(api, owner, content_id) == 1
    page.reload()  # the page itself counts nothing
    assert clicks(api, owner, content_id) == 1


def test_in_a_plain_browser_the_target_is_copied(
    page: Page, context: BrowserContext, api: httpx.Client
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    _, _, go = click_url(api)
    page.goto(go)
    expect(page.get_by_role("heading", level=1)).to_have_text("买茶")
    expect(page.locator("#open-status")).to_have_text("This service opens in its mini-program.")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#open-status")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#open-path").input_value()
    assert copied.startswith("/pages/goods?sku=A1&la_click=ck_")
