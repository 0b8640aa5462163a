"""Idempotency-Key on the HTTP routes (DESIGN §4, §8): for API keys the scope is the brand,
since all of a brand's keys speak for one backend."""

from __future__ import annotations

import httpx

from tests.conftest import Brand, bearer, mint, sign_up


async def _second_key(client: httpx.AsyncClient, brand: Brand) -> dict[str, str]:
    client.cookies = brand.cookies
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/api-keys",
        json={"name": "second"},
        headers=brand.staff_headers,
    )
    client.cookies.clear()
    assert r.status_code == 201, r.text
    return bearer(r.json()["key"])


async def _ledger(client: httpx.AsyncClient, brand: Brand) -> list[dict[str, object]]:
    r = await client.get(f"/api/v1/accounts/{brand.account_id}/ledger", headers=brand.key_headers)
    items: list[dict[str, object]] = r.json()["items"]
    return items


async def test_every_key_of_a_brand_shares_its_idempotency_keys(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    fan = await mint(client, brand)
    url = f"/api/v1/accounts/{brand.account_id}/wallets/{fan['fan_id']}/credits"
    credit = {"points": 7, "reason": "order 7"}
    first = await client.post(
        url, json=credit, headers={**brand.key_headers, "Idempotency-Key": "order-7"}
    )
    assert first.status_code == 201, first.text
    # The backend rotated its key and retries: the retry is the same write.
    second_key = await _second_key(client, brand)
    retry = await client.post(
        url, json=credit, headers={**second_key, "Idempotency-Key": "order-7"}
    )
    assert retry.status_code == 201 and retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(await _ledger(client, brand)) == 1


async def test_a_key_reused_for_another_fan_is_refused(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    lily, rose = await mint(client, brand, "lily"), await mint(client, brand, "rose")
    base = f"/api/v1/accounts/{brand.account_id}/wallets"
    headers = {**brand.key_headers, "Idempotency-Key": "order-8"}
    credit = {"points": 8, "reason": "order 8"}
    r = await client.post(f"{base}/{lily['fan_id']}/credits", json=credit, headers=headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"{base}/{rose['fan_id']}/credits", json=credit, headers=headers)
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    rose_wallet = await client.get(f"{base}/{rose['fan_id']}", headers=brand.key_headers)
    assert rose_wallet.json()["balance"] == 0
    assert len(await _ledger(client, brand)) == 1


async def test_brands_do_not_share_idempotency_keys(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    other = await sign_up(client)
    for b in (brand, other):
        r = await client.post(
            f"/api/v1/accounts/{b.account_id}/budget/credits",
            json={"points": 100},
            headers={**b.key_headers, "Idempotency-Key": "top-up-1"},
        )
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers
        assert r.json()["budget"] == 100
