"""Collectible drops over the API in-process (webapp/api_drops.py): the host drops, fans
claim once each (HTTP and the channel op share the domain), the collection lists them, and
the real ``lifeaccount verify`` checks a certificate offline against the published key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from starlette.applications import Starlette

from tests.conftest import Brand, bearer, mint
from tests.webapp.test_api_rooms import make

LIFEACCOUNT = Path(sys.executable).parent / "lifeaccount"


async def test_editions_are_claimed_once_each_and_certificates_verify_offline(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room = await make(client, brand)
    await client.post(f"/api/v1/rooms/{room['id']}/start", headers=brand.key_headers)
    made = await client.post(
        f"/api/v1/rooms/{room['id']}/drops",
        json={"name": "秋季限定杯", "editions": 2, "image": "https://cdn.example/cup.png"},
        headers=brand.key_headers,
    )
    assert made.status_code == 201, made.text
    drop = made.json()
    url = f"/api/v1/drops/{drop['id']}"
    fans = [await mint(client, brand, f"c{n}") for n in range(3)]
    first = (await client.post(f"{url}/claims", headers=bearer(fans[0]["token"]))).json()
    second = (await client.post(f"{url}/claims", headers=bearer(fans[1]["token"]))).json()
    assert (first["edition"], second["edition"], first["of"]) == (1, 2, 2)
    again = (await client.post(f"{url}/claims", headers=bearer(fans[0]["token"]))).json()
    assert again == {**first, "repeat": True}
    sold = await client.post(f"{url}/claims", headers=bearer(fans[2]["token"]))
    assert (sold.status_code, sold.json()["code"]) == (409, "sold_out")
    mine = (await client.get(url, headers=bearer(fans[1]["token"]))).json()["mine"]
    assert mine["edition"] == 2
    kept = (await client.get("/api/v1/me/collectibles", headers=bearer(fans[0]["token"]))).json()
    assert [(c["name"], c["edition"], c["of"]) for c in kept["items"]] == [("秋季限定杯", 1, 2)]
    published = (await client.get("/api/v1/certificates/public-key")).json()
    assert published["algorithm"] == "Ed25519"
    key = published["public_key"]
    checked = subprocess.run(
        [str(LIFEACCOUNT), "verify", first["certificate"], "--key", key],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "valid: 秋季限定杯 edition 1 of 2" in checked.stdout
    assert fans[0]["fan_id"] in checked.stdout
    payload, signature = second["certificate"].split(".")
    spliced = f"{payload}.{first['certificate'].split('.')[1]}"
    refused = subprocess.run(
        [str(LIFEACCOUNT), "verify", spliced, "--key", key],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1 and "NOT VALID" in refused.stderr
    assert (await client.post(f"{url}/claims", headers=brand.key_headers)).status_code == 403
    bad = await client.post(
        f"/api/v1/rooms/{room['id']}/drops",
        json={"name": "x", "editions": 0},
        headers=brand.key_headers,
    )
    assert (bad.status_code, bad.json().get("field")) == (422, "editions")
