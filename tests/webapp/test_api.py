"""The route machinery (webapp/api.py): who a request acts for, and how store failures that
escape the domain are answered."""

from __future__ import annotations

import uuid

import httpx
from starlette.applications import Starlette

from store.port import Index
from tests.conftest import Brand, sign_up
from webapp.api import Call, Endpoint, Reply, routes
from webapp.auth import Kind

PROBLEM = "application/problem+json"


async def test_a_session_without_its_csrf_token_signs_up_as_anyone_would(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    # A browser still logged in to one account signs up another: the cookie rides along
    # without the CSRF header and carries no staff authority, so this is an anonymous sign-up.
    client.cookies = brand.cookies
    r = await client.post(
        "/api/v1/signup",
        json={
            "email": "second@owner.example",
            "password": "correct horse battery",
            "account": {"name": "Second", "handle": "second-brand"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["staff"]["email"] == "second@owner.example"
    # The answer opened the new owner's session in place of the old one.
    session = (await client.get("/api/v1/session")).json()
    assert session["staff"]["email"] == "second@owner.example"
    assert [a["handle"] for a in session["accounts"]] == ["second-brand"]


async def test_a_session_without_its_csrf_token_logs_in_as_anyone_would(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    other = await sign_up(client)
    client.cookies = brand.cookies
    r = await client.post(
        "/api/v1/session",
        json={"email": other.email, "password": other.password},
        headers={"X-CSRF-Token": "not the session's token"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accounts"][0]["account_id"] == other.account_id


async def test_the_cookie_alone_still_has_no_authority_on_staff_routes(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    client.cookies = brand.cookies
    url = f"/api/v1/accounts/{brand.account_id}"
    for method, path, body in [
        ("PATCH", url, {"bio": "x"}),
        ("POST", f"{url}/api-keys", {"name": "x"}),
        ("DELETE", "/api/v1/session", None),
    ]:
        r = await client.request(method, path, json=body)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed", (path, r.text)
    # With the token the same session may, and the anonymous fallback does not apply.
    r = await client.patch(url, json={"bio": "x"}, headers=brand.staff_headers)
    assert r.status_code == 200


async def test_a_unique_clash_the_domain_did_not_see_is_a_409_conflict(app: Starlette) -> None:
    """Every unique write of the accounts domain checks first inside its own transaction, and
    the store serialises writers, so no request of the real API reaches this; a route that
    skips the check shows what a client would get: a named 409, never a 500."""
    services = app.state.services
    await services.store.ensure_indexes([Index("things", ("name",), unique=True)])

    async def add_thing(call: Call) -> Reply:
        things = call.services.store.collection("things")
        await things.insert({"id": uuid.uuid4().hex, "name": call.params["name"]})
        return Reply(None, status=204)

    endpoint = Endpoint(
        "POST",
        "/things/{name}",
        add_thing,
        "Add a thing",
        "test",
        status=204,
        allow=frozenset({Kind.ANONYMOUS}),
    )
    tiny = Starlette(routes=routes([endpoint]))
    tiny.state.services = services
    transport = httpx.ASGITransport(app=tiny)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/things/kettle")).status_code == 204
        r = await client.post("/things/kettle")
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert (problem["code"], problem["field"]) == ("conflict", "name")
        assert "name already exists" in problem["detail"]
    assert await services.store.collection("things").count({"name": "kettle"}) == 1
