"""Security headers on every answer (webapp/headers.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Brand


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/accounts/{account_id}", 200),
        ("GET", "/api/v1/accounts/acc_nope", 404),
        ("GET", "/api/v1/session", 401),
        ("PUT", "/api/v1/accounts/{account_id}", 405),
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", "/healthz", 200),
        ("GET", "/api/openapi.json", 200),
        ("GET", "/", 200),
        ("GET", "/login", 200),
        ("GET", "/@{handle}", 200),
        ("GET", "/console", 303),
    ],
)
async def test_answers_are_not_kept_by_any_cache(
    client: httpx.AsyncClient, brand: Brand, method: str, path: str, status: int
) -> None:
    url = path.format(account_id=brand.account_id, handle=brand.handle)
    r = await client.request(method, url)
    assert r.status_code == status, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_answers_carrying_secrets_are_not_kept(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/signup",
        json={
            "email": "o@keys.example",
            "password": "correct horse battery",
            "account": {"name": "Keys", "handle": "keys"},
        },
    )
    assert r.status_code == 201 and r.json()["api_key"]
    assert r.headers["cache-control"] == "no-store"


async def test_static_files_may_be_cached(client: httpx.AsyncClient) -> None:
    r = await client.get("/static/style.css")
    assert r.status_code == 200
    assert "no-store" not in r.headers.get("cache-control", "")
    assert r.headers["x-content-type-options"] == "nosniff"
