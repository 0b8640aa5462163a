from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import Brand, bearer, mint


async def test_health_answers_ok_when_engines_work(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "store": "ok", "broker": "ok", "media": "ok"}


async def test_fan_follows_and_the_count_shows(client: httpx.AsyncClient, brand: Brand) -> None:
    fan = await mint(client, brand)
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/follow", headers=bearer(fan["token"])
    )
    assert r.json() == {"following": True, "follower_count": 1}
    r = await client.get(f"/api/v1/accounts/{brand.account_id}")
    assert r.json()["follower_count"] == 1
    assert "following" not in r.json() and "budget" not in r.json()


async def test_health_names_the_broken_part_and_keeps_the_reason_in_the_log(
    client: httpx.AsyncClient,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = app.state.services

    async def broken() -> None:
        raise RuntimeError("unable to open /srv/secret-dir/lifeaccount.db as user deploy")

    monkeypatch.setattr(services.store, "ping", broken)
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "store": "error", "broker": "ok", "media": "ok"}
    # The engine's words (paths, users) are for the operator's log, not for anyone who asks.
    assert "secret-dir" not in r.text
    assert "secret-dir" in caplog.text

    monkeypatch.setattr(services.broker, "ping", broken)
    monkeypatch.setattr(services, "ffmpeg", None)
    monkeypatch.setattr(services, "ffmpeg_error", "ffmpeg not found in /opt/private/bin")
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {
        "status": "degraded",
        "store": "error",
        "broker": "error",
        "media": "error",
    }
    assert "private" not in r.text and "/opt/private/bin" in caplog.text
