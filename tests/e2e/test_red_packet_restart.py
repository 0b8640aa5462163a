"""A red packet through the real ``lifeaccount serve``, killed (SIGKILL) while fans grab:
started again on the same data, every grab it had acknowledged is there — the fan's share,
the wallet, the audit — and the packet still ends with exactly one share per winner."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.live_support import create_room
from tests.e2e.support import Servers, bearer, mint_fan, sign_up_api

FANS = 240
SHARES = 200
KILL_AFTER = 40  # acknowledged grabs before the kill


def test_a_server_killed_mid_grab_loses_no_acknowledged_grab(
    tmp_path: Path, servers: Servers
) -> None:
    data = tmp_path / "data"
    first = servers.start(data)
    with httpx.Client(base_url=first.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        key = owner.key_headers
        room = create_room(api, owner)
        assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=key).is_success
        budget = {"points": 5_000, "reason": "packets"}
        account = f"/api/v1/accounts/{owner.account_id}"
        assert api.post(
            f"{account}/budget/credits", json=budget, headers={**key, "Idempotency-Key": "b"}
        ).is_success
        made = api.post(
            f"/api/v1/rooms/{room['id']}/red-packets",
            json={"total": 2_000, "count": SHARES, "mode": "random", "expires_in_s": 600},
            headers=key,
        )
        assert made.status_code == 201, made.text
        packet = made.json()
        tokens = [
            mint_fan(api, owner.account_id, owner.api_key, f"k{n}")["token"] for n in range(FANS)
        ]
    grabs = f"/api/v1/red-packets/{packet['id']}/grabs"
    acked: dict[str, int] = {}

    async def before_the_kill() -> None:
        gate = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as client:

            async def grab(token: str) -> None:
                async with gate:
                    if len(acked) >= KILL_AFTER:
                        return
                    try:
                        r = await client.post(grabs, headers=bearer(token))
                    except httpx.HTTPError:
                        return  # no answer: not acknowledged
                    if r.status_code == 200:
                        acked[token] = r.json()["amount"]
                        if len(acked) == KILL_AFTER:
                            first.process.kill()  # SIGKILL, grabs still in flight

            await asyncio.gather(*(grab(t) for t in tokens))

    asyncio.run(before_the_kill())
    first.process.wait(30)
    assert len(acked) >= KILL_AFTER

    second = servers.start(data)
    with httpx.Client(base_url=second.base_url, timeout=30) as api:
        for token, amount in acked.items():  # each acknowledged grab survived
            mine = api.get(f"/api/v1/red-packets/{packet['id']}", headers=bearer(token))
            assert mine.json()["mine"] == amount
            again = api.post(grabs, headers=bearer(token)).json()
            assert again == {"amount": amount, "repeat": True}
        for token in tokens:  # the others grab from the restarted server until it empties
            if token not in acked:
                r = api.post(grabs, headers=bearer(token))
                assert r.status_code in (200, 409), r.text
        done: dict[str, Any] = api.get(f"/api/v1/red-packets/{packet['id']}").json()
    assert done["state"] == "finished" and done["grabbed_count"] == SHARES
    amounts = [g["amount"] for g in done["grabs"]]
    assert len({g["fan_id"] for g in done["grabs"]}) == SHARES and sum(amounts) == 2_000
    assert [g["amount"] for g in done["grabs"]] == done["reveal"]["shares"]
