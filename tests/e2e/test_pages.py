"""The console pages in a real browser against the real server: sign up, log in, keys, invites."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import (
    PASSWORD,
    Server,
    bearer,
    follow,
    mint_fan,
    new_handle,
    screenshot,
    sign_up_api,
)

pytestmark = pytest.mark.e2e

KEY = re.compile(r"lak_[A-Za-z0-9_\-]+")


def test_signup_form_then_a_fan_follows(page: Page, api: httpx.Client) -> None:
    handle = new_handle()
    page.goto("/signup")
    screenshot(page, "signup")
    page.get_by_label("Your email").fill(f"owner@{handle}.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Account name").fill("Tea House 茶馆")
    page.get_by_label("Handle").fill(handle)
    page.get_by_role("button", name="Create account").click()

    key_box = page.locator("#api-key")
    expect(key_box).to_have_text(KEY)
    api_key = key_box.inner_text().strip()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tea House 茶馆")

    page.goto(f"/@{handle}")
    profile = page.locator("article.profile")
    expect(profile.get_by_role("heading", level=1)).to_have_text("Tea House 茶馆")
    expect(profile).to_contain_text("0 followers")
    account_id = profile.get_attribute("data-account-id")
    assert account_id

    fan = mint_fan(api, account_id, api_key, "fan-1")
    assert follow(api, account_id, fan["token"]) == {"following": True, "follower_count": 1}

    page.reload()
    expect(profile).to_contain_text("1 follower")
    expect(profile).not_to_contain_text("1 followers")


def test_signup_without_the_form_token_is_refused(
    page: Page, api: httpx.Client, server: Server
) -> None:
    fields = {
        "email": "",
        "password": PASSWORD,
        "name": "Forged",
        "handle": "",
    }
    # A cross-site form post carries neither the double-submit cookie nor the field.
    forged = new_handle()
    r = api.post("/signup", data={**fields, "email": f"a@{forged}.example", "handle": forged})
    assert r.status_code == 403
    assert "form expired" in r.text
    # The field alone (e.g. scraped from a page) without the matching cookie is not enough.
    r = api.post(
        "/signup",
        data={**fields, "email": f"a@{forged}.example", "handle": forged, "csrf_token": "x" * 32},
        headers={"Cookie": "la_form_csrf=" + "y" * 32},
    )
    assert r.status_code == 403
    assert api.get(f"/@{forged}").status_code == 404
    login = {"email": f"a@{forged}.example", "password": PASSWORD}
    assert api.post("/api/v1/session", json=login).status_code == 401

    # In the browser: the form was loaded, then its cookie vanished (expired, cleared).
    handle = new_handle()
    page.goto("/signup")
    page.context.clear_cookies()
    page.get_by_label("Your email").fill(f"owner@{handle}.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Account name").fill("Cookie-less")
    page.get_by_label("Handle").fill(handle)
    with page.expect_response(f"{server.base_url}/signup") as answer:
        page.get_by_role("button", name="Create account").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("form expired")
    # The refused form keeps what was typed, except the password.
    expect(page.get_by_label("Handle")).to_have_value(handle)
    expect(page.get_by_label("Password")).to_have_value("")
    assert api.get(f"/@{handle}").status_code == 404
    # The refusal hands out a fresh form token, so submitting again works.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#api-key")).to_have_text(KEY)
    assert api.get(f"/@{handle}").status_code == 200


def test_login_console_create_and_revoke_a_key(
    page: Page, api: httpx.Client, server: Server
) -> None:
    owner = sign_up_api(api)
    follow(api, owner.account_id, mint_fan(api, owner.account_id, owner.api_key, "f1")["token"])

    page.goto("/login")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(owner.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/console$"))
    expect(page.get_by_role("heading", level=2).first).to_contain_text(owner.name)
    expect(page.locator("#follower-count")).to_have_text("1")
    expect(page.locator("main")).to_contain_text("you are owner")
    expect(page.locator("main")).to_contain_text(owner.account_id)

    page.get_by_label("Name").fill("e2e order service")
    page.get_by_role("button", name="Create key").click()
    notice = page.get_by_role("status")
    expect(notice).to_contain_text(KEY)
    match = KEY.search(notice.inner_text())
    assert match
    new_key = match.group(0)
    assert new_key != owner.api_key
    row = page.locator("tr", has_text="e2e order service")
    expect(row).to_contain_text("active")
    screenshot(page, "console")

    # The browser's console session lists the keys through the API; a key itself cannot.
    keys_url = f"{server.base_url}/api/v1/accounts/{owner.account_id}/api-keys"
    listed = page.request.get(keys_url)
    assert listed.status == 200, listed.text()
    names = {k["name"]: k for k in listed.json()["items"]}
    assert "e2e order service" in names
    assert all(k.get("key") is None for k in names.values()), "a listed key leaked its secret"
    r = api.get(keys_url, headers=bearer(new_key))
    assert r.status_code == 403 and r.json()["code"] == "wrong_credential", r.text
    followers = f"/api/v1/accounts/{owner.account_id}/followers"
    assert api.get(followers, headers=bearer(new_key)).status_code == 200

    # Shown once: a fresh load of the console no longer carries the secret.
    page.goto("/console")
    expect(page.locator("tr", has_text="e2e order service")).to_contain_text("active")
    assert new_key not in page.content()

    page.locator("tr", has_text="e2e order service").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.locator("tr", has_text="e2e order service")).to_contain_text("revoked")

    r = api.get(followers, headers=bearer(new_key))
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "api_key_revoked"
    revoked = {k["name"]: k for k in page.request.get(keys_url).json()["items"]}
    assert revoked["e2e order service"]["revoked_at"] is not None
    # The other key is untouched.
    r = api.get(followers, headers=owner.key_headers)
    assert r.status_code == 200, r.text
    assert revoked["default"]["revoked_at"] is None

    # Logging out ends the session the page and its scripts used.
    page.get_by_role("button", name=re.compile("^Log out")).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert page.request.get(keys_url).status == 401


def test_invitation_link_makes_an_editor(page: Page, api: httpx.Client) -> None:
    owner = sign_up_api(api)
    email = f"editor@{owner.handle}.example"
    invitations = f"/api/v1/accounts/{owner.account_id}/invitations"
    invitation = {"email": email, "role": "editor"}
    # Inviting is the owner's, from the console session; a backend key may not.
    r = api.post(invitations, json=invitation, headers=owner.key_headers)
    assert r.status_code == 403 and r.json()["code"] == "wrong_credential", r.text
    r = api.post(invitations, json=invitation, headers=owner.session_headers)
    assert r.status_code == 201, r.text
    accept_url = r.json()["accept_url"]
    assert re.search(r"/invite#token=[A-Za-z0-9_\-]+$", accept_url), accept_url

    page.goto(accept_url)
    page.get_by_label("Password").fill("editor password 1")
    page.get_by_role("button", name="Accept the invitation").click()

    expect(page).to_have_url(re.compile(rf"/console\?account={owner.account_id}$"))
    main = page.locator("main")
    expect(main).to_contain_text(owner.name)
    expect(main).to_contain_text("you are editor")
    expect(main).to_contain_text(email)
    # Keys and staff management are the owner's; an editor does not see them.
    expect(page.get_by_role("heading", name="API keys")).to_have_count(0)

    r = api.get(f"/api/v1/accounts/{owner.account_id}/staff", headers=owner.session_headers)
    assert r.status_code == 200, r.text
    assert {"email": email, "role": "editor"} in [
        {"email": p["email"], "role": p["role"]} for p in r.json()["items"]
    ]
    # The link is single use.
    page.goto(accept_url)
    page.get_by_label("Password").fill("editor password 1")
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.locator("#result")).not_to_be_empty()
    expect(page).to_have_url(accept_url)
