"""Red packets over the API in-process (webapp/api_red_packets.py): the host drops from the
budget, fans grab once each (over HTTP and the channel op alike), the room hears dropped /
grabbed / finished, and the finished packet's reveal and audit check out."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from starlette.applications import Starlette

from accounts import ledger
from live import split
from live.channel import topic
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_editorial import join
from tests.webapp.test_api_rooms import make, services


async def live_room_with_budget(client: httpx.AsyncClient, brand: Brand, points: int) -> str:
    room = await make(client, brand)
    await client.post(f"/api/v1/rooms/{room['id']}/start", headers=brand.key_headers)
    topped = await client.post(
        f"/api/v1/accounts/{brand.account_id}/budget/credits",
        json={"points": points, "reason": "red packets"},
        headers={**brand.key_headers, "Idempotency-Key": "budget-1"},
    )
    assert topped.status_code in (200, 201), topped.text
    return str(room["id"])


async def test_a_packet_is_dropped_grabbed_once_each_and_revealed(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room_id = await live_room_with_budget(client, brand, 1_000)
    dropped = await client.post(
        f"/api/v1/rooms/{room_id}/red-packets",
        json={"total": 100, "count": 3, "mode": "random"},
        headers=brand.key_headers,
    )
    assert dropped.status_code == 201, dropped.text
    packet = dropped.json()
    assert packet["state"] == "open" and packet["reveal"] is None
    assert packet["generator"] == "double-mean-v1" and len(packet["commitment"]) == 64
    store = services(app).store
    assert await ledger.balance(store, brand.account_id, ledger.BUDGET) == 900
    url = f"/api/v1/red-packets/{packet['id']}"
    fans = [await mint(client, brand, f"f{n}") for n in range(4)]
    got: list[dict[str, Any]] = []
    for fan in fans[:3]:
        r = await client.post(f"{url}/grabs", headers=bearer(fan["token"]))
        assert r.status_code == 200, r.text
        got.append(r.json())
    assert all(g["repeat"] is False and g["amount"] >= 1 for g in got)
    assert sum(g["amount"] for g in got) == 100
    again = await client.post(f"{url}/grabs", headers=bearer(fans[0]["token"]))
    assert again.json() == {"amount": got[0]["amount"], "repeat": True}
    late = await client.post(f"{url}/grabs", headers=bearer(fans[3]["token"]))
    assert (late.status_code, late.json()["code"]) == (409, "red_packet_empty")
    # Finished: the reveal and the audit, which recompute to the commitment and every grab.
    done = (await client.get(url, headers=bearer(fans[1]["token"]))).json()
    assert done["state"] == "finished" and done["mine"] == got[1]["amount"]
    reveal = done["reveal"]
    problems = split.verify(
        reveal["seed"], reveal["shares"], 100, 3, "random", packet["commitment"]
    )
    assert problems == []
    assert [(g["n"], g["amount"]) for g in done["grabs"]] == list(enumerate(reveal["shares"]))
    # The room heard it: dropped, the grabs (in a batch), finished with the reveal.
    kept = await services(app).broker.recent(topic(room_id))
    told = [orjson.loads(e.frame)["data"] for e in kept if b'"type":"red_packet"' in e.frame]
    actions = [t["action"] for t in told]
    assert actions[0] == "dropped" and actions[-1] == "finished" and "grabbed" in actions
    assert told[-1]["reveal"] == reveal


async def test_drops_are_the_hosts_and_grabs_the_fans(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    room_id = await live_room_with_budget(client, brand, 50)
    drops = f"/api/v1/rooms/{room_id}/red-packets"
    body = {"total": 10, "count": 2, "mode": "equal"}
    fan = await mint(client, brand)
    assert (await client.post(drops, json=body, headers=bearer(fan["token"]))).status_code == 403
    moderator = await join(client, brand, "moderator")
    assert (await client.post(drops, json=body, headers=moderator.use(client))).status_code == 403
    client.cookies.clear()
    other = await sign_up(client)
    assert (await client.post(drops, json=body, headers=other.key_headers)).status_code == 403
    poor = await client.post(drops, json={**body, "total": 51}, headers=brand.key_headers)
    assert (poor.status_code, poor.json()["code"]) == (409, "insufficient_points")
    for bad, field in [
        ({**body, "count": 11}, "total"),
        ({**body, "mode": "lucky"}, "mode"),
        ({**body, "expires_in_s": 5}, "expires_in_s"),
    ]:
        r = await client.post(drops, json=bad, headers=brand.key_headers)
        assert (r.status_code, r.json().get("field")) == (422, field), r.text
    counting = await client.post(drops, json={**body, "opens_in_s": 60}, headers=brand.key_headers)
    url = f"/api/v1/red-packets/{counting.json()['id']}"
    assert counting.json()["state"] == "pending"
    early = await client.post(f"{url}/grabs", headers=bearer(fan["token"]))
    assert (early.status_code, early.json()["code"]) == (409, "red_packet_not_open")
    assert (await client.post(f"{url}/grabs", headers=brand.key_headers)).status_code == 403
    assert (await client.get("/api/v1/red-packets/rpk_0000000000nothing")).status_code == 404
    page = await client.get(f"/red-packets/{counting.json()['id']}")  # the browser's check
    assert page.status_code == 200 and 'data-verdict="checking"' in page.text
    assert (await client.get("/red-packets/rpk_0000000000nothing")).status_code == 404
