"""The server-rendered forms (webapp/pages.py): their CSRF tokens hold, whatever is sent."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Brand

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
E_ACUTE = b"%C3%A9"  # "é": a token no comparison may choke on


async def _session_alive(client: httpx.AsyncClient, brand: Brand) -> bool:
    client.cookies = brand.cookies
    r = await client.get("/api/v1/session")
    return r.status_code == 200


@pytest.mark.parametrize("token", [None, b"", b"not-the-token", E_ACUTE])
async def test_logout_without_the_forms_token_changes_nothing(
    client: httpx.AsyncClient, brand: Brand, token: bytes | None
) -> None:
    # Another site can post a form to /logout; without the session's token it stays.
    client.cookies = brand.cookies
    body = b"" if token is None else b"csrf_token=" + token
    r = await client.post("/logout", content=body, headers=FORM)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    assert "la_session" not in r.headers.get("set-cookie", "")
    assert await _session_alive(client, brand)


async def test_logout_with_the_forms_token_ends_the_session(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    client.cookies = brand.cookies
    r = await client.post("/logout", data={"csrf_token": brand.csrf_token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not await _session_alive(client, brand)


@pytest.mark.parametrize("path", ["/login", "/signup"])
@pytest.mark.parametrize("cookie", [None, "a-form-token", "\u00e9"])
async def test_a_non_ascii_form_token_is_refused_not_crashed(
    client: httpx.AsyncClient, brand: Brand, path: str, cookie: str | None
) -> None:
    fields = (
        b"email=late%40tea.example&password=correct+horse+battery&name=Late&handle=late-tea"
        if path == "/signup"
        else f"email={brand.email}&password={brand.password}".encode()
    )
    headers: list[tuple[bytes, bytes]] = [(b"content-type", FORM["Content-Type"].encode())]
    if cookie is not None:
        headers.append((b"cookie", f"la_form_csrf={cookie}".encode()))
    r = await client.post(path, content=fields + b"&csrf_token=" + E_ACUTE, headers=headers)
    assert r.status_code == 403, r.text
    assert "form expired" in r.text
    assert "la_session" not in r.headers.get("set-cookie", "")
    assert (await client.get("/@late-tea")).status_code == 404


async def test_a_non_ascii_console_token_is_refused_not_crashed(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    client.cookies = brand.cookies
    body = b"action=create_key&name=forged&csrf_token=" + E_ACUTE
    r = await client.post(f"/console?account={brand.account_id}", content=body, headers=FORM)
    assert r.status_code == 400 and "form expired" in r.text
    keys = await client.get(f"/api/v1/accounts/{brand.account_id}/api-keys")
    assert [k["name"] for k in keys.json()["items"]] == ["default"]
