from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
from starlette.applications import Starlette

from tests.conftest import Brand, make_settings
from webapp.app import create_app
from webapp.throttle import FailureThrottle


def test_failures_age_out_of_the_window() -> None:
    now = [1000.0]
    throttle = FailureThrottle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.fail("a")
    assert throttle.retry_after("a") == 61
    assert throttle.retry_after("b") == 0  # keys are independent
    now[0] += 30
    assert throttle.retry_after("a") == 31
    now[0] += 30
    assert throttle.retry_after("a") == 0
    throttle.fail("a")
    throttle.clear("a")
    assert throttle.retry_after("a") == 0


async def test_a_run_of_wrong_passwords_locks_that_login(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    for _ in range(10):
        r = await client.post("/api/v1/session", json={"email": brand.email, "password": "guess1"})
        assert r.status_code == 401
    r = await client.post(
        "/api/v1/session", json={"email": brand.email, "password": brand.password}
    )
    assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
    other = await client.post("/api/v1/session", json={"email": "x@y.example", "password": "p"})
    assert other.status_code == 401  # other logins are unaffected


def _from(app: Starlette, address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _signup(n: int) -> dict[str, object]:
    handle = f"s{n}-{uuid.uuid4().hex[:8]}"
    return {
        "email": f"o@{handle}.example",
        "password": "correct horse battery",
        "account": {"name": handle, "handle": handle},
    }


async def test_sign_ups_per_address_are_limited(app: Starlette) -> None:
    async with _from(app, "203.0.113.5") as busy, _from(app, "203.0.113.6") as other:
        for n in range(30):
            r = await busy.post("/api/v1/signup", json=_signup(n))
            assert r.status_code == 201, (n, r.text)
        late = _signup(30)
        r = await busy.post("/api/v1/signup", json=late)
        assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
        assert 3500 <= int(r.headers["retry-after"]) <= 3600
        assert "set-cookie" not in r.headers
        # The sign-up form counts against the same allowance.
        form = await busy.get("/signup")
        token = form.cookies["la_form_csrf"]
        r = await busy.post(
            "/signup",
            data={"csrf_token": token, "email": "o@form.example", "password": "correct horse 1"}
            | {"name": "Form", "handle": "form-brand"},
        )
        assert r.status_code == 429
        assert (await busy.get("/@form-brand")).status_code == 404
        account = late["account"]
        assert isinstance(account, dict)
        assert (await busy.get(f"/@{account['handle']}")).status_code == 404
        # Another address is not held back.
        r = await other.post("/api/v1/signup", json=late)
        assert r.status_code == 201, r.text


async def test_side_by_side_guesses_cannot_outrun_the_login_throttle(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    # Each attempt is counted before its password is checked, so 20 guesses sent at once get
    # 10 verdicts, not 20.
    guesses = await asyncio.gather(
        *(
            client.post("/api/v1/session", json={"email": brand.email, "password": f"guess-{i}"})
            for i in range(20)
        )
    )
    assert Counter(r.status_code for r in guesses) == {401: 10, 429: 10}
    r = await client.post(
        "/api/v1/session", json={"email": brand.email, "password": brand.password}
    )
    assert r.status_code == 429


async def test_accepting_invitations_is_throttled_per_address(
    app: Starlette, client: httpx.AsyncClient, brand: Brand
) -> None:
    client.cookies = brand.cookies
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/invitations",
        json={"email": "host@tea.example", "role": "host"},
        headers=brand.staff_headers,
    )
    client.cookies.clear()
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    async with _from(app, "203.0.113.9") as guesser, _from(app, "203.0.113.10") as invited:
        for n in range(100):
            guess = {"token": f"guess-{n}", "password": "correct horse battery"}
            r = await guesser.post("/api/v1/invitations/accept", json=guess)
            assert r.status_code == 404, (n, r.text)
        accept = {"token": token, "password": "host password 1"}
        r = await guesser.post("/api/v1/invitations/accept", json=accept)
        assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
        assert 1 <= int(r.headers["retry-after"]) <= 900
        r = await invited.post("/api/v1/invitations/accept", json=accept)
        assert r.status_code == 201 and r.json()["role"] == "host"


async def test_an_operator_sets_the_sign_up_allowance(tmp_path: Path) -> None:
    settings = replace(make_settings(tmp_path / "data"), signups_per_hour=2)
    app = create_app(settings)
    async with app.router.lifespan_context(app), _from(app, "203.0.113.9") as busy:
        answers = [
            (await busy.post("/api/v1/signup", json=_signup(n))).status_code for n in range(3)
        ]
    assert answers == [201, 201, 429]
