from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import bearer, make_settings, sign_up
from webapp.app import create_app
from webapp.context import Services
from webapp.housekeeping import Swept, sweep


async def test_sweep_forgets_only_what_has_expired(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 26, 8, 0, tzinfo=UTC)]
    app = create_app(make_settings(tmp_path), now=lambda: now[0])
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            brand = await sign_up(client)
            url = f"/api/v1/accounts/{brand.account_id}"
            fan = (
                await client.post(
                    f"{url}/fan-tokens",
                    json={"external_id": "a", "name": "A"},
                    headers=brand.key_headers,
                )
            ).json()
            await client.post(
                f"{url}/budget/credits",
                json={"points": 5},
                headers={**brand.key_headers, "Idempotency-Key": "k"},
            )
            assert await sweep(services) == Swept(0, 0, 0, 0, 0)
            now[0] += timedelta(days=2)  # past the fan token (1 h) + 1 day, and the record
            swept = await sweep(services)
            assert (swept.fan_tokens, swept.idempotency_records, swept.sessions) == (1, 1, 0)
            r = await client.get("/api/v1/me", headers=bearer(fan["token"]))
            assert r.status_code == 401 and r.json()["code"] == "token_expired"
            now[0] += timedelta(days=6)  # the signup session (7 days) has now expired
            assert (await sweep(services)).sessions == 1
            # The ledger still refuses to repeat the old key's movement.
            again = await client.post(
                f"{url}/budget/credits",
                json={"points": 5},
                headers={**brand.key_headers, "Idempotency-Key": "k"},
            )
            assert again.status_code == 201
            assert (await client.get(url, headers=brand.key_headers)).json()["budget"] == 5
