"""Shared fixtures: a real app on a real SQLite file in a temporary directory.

Password hashing is tuned down (argon2id, 1 pass, 1 MiB) so tests stay fast; everything else
runs as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from accounts import ledger
from tests.redis_server import redis_server
from webapp.app import create_app
from webapp.settings import Settings


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Redis server for the session (tests flush what they use)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        # Whatever the test did, the ledger still balances (DESIGN §6).
        assert await ledger.audit(application.state.services.store) == []


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Brand:
    """A signed-up account with its owner's session and first API key."""

    account_id: str
    handle: str
    api_key: str
    csrf_token: str
    email: str
    password: str
    cookies: httpx.Cookies

    @property
    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def staff_headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf_token}


async def sign_up(client: httpx.AsyncClient, handle: str | None = None) -> Brand:
    handle = handle or f"b{uuid.uuid4().hex[:10]}"
    email = f"owner@{handle}.example"
    password = "correct horse battery"
    r = await client.post(
        "/api/v1/signup",
        json={"email": email, "password": password, "account": {"name": handle, "handle": handle}},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    cookies = httpx.Cookies()
    cookies.set("la_session", r.cookies["la_session"])
    client.cookies.clear()
    return Brand(
        body["account"]["id"], handle, body["api_key"], body["csrf_token"], email, password, cookies
    )


async def mint(
    client: httpx.AsyncClient, brand: Brand, external_id: str = "u1", **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/fan-tokens",
        json={"external_id": external_id, "name": f"fan {external_id}", **extra},
        headers=brand.key_headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def brand(client: httpx.AsyncClient) -> Brand:
    return await sign_up(client)
