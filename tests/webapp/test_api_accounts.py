"""Every accounts route of DESIGN §8, called as a brand backend, a fan and staff would."""

from __future__ import annotations

import httpx

from tests.conftest import Brand, bearer, mint, sign_up


async def test_signup_answers_the_documented_shape_and_opens_a_session(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/api/v1/signup",
        json={
            "email": "o@tea.example",
            "password": "password1",
            "account": {"name": "Tea", "handle": "tea"},
        },
    )
    assert r.status_code == 201
    body = r.json()
    assert body["account"]["handle"] == "tea" and body["account"]["id"].startswith("acc_")
    assert body["staff"] == {"id": body["staff"]["id"], "email": "o@tea.example", "role": "owner"}
    assert body["api_key"].startswith("lak_")
    session = await client.get("/api/v1/session")
    assert session.status_code == 200
    assert session.json()["accounts"][0]["role"] == "owner"


async def test_login_logout_and_csrf(client: httpx.AsyncClient, brand: Brand) -> None:
    r = await client.post("/api/v1/session", json={"email": brand.email, "password": "nope-nope"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await client.post(
        "/api/v1/session", json={"email": brand.email, "password": brand.password}
    )
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    assert r.json()["accounts"][0]["account_id"] == brand.account_id
    patch = f"/api/v1/accounts/{brand.account_id}"
    r = await client.patch(patch, json={"bio": "hello"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = await client.patch(patch, json={"bio": "hello"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["bio"] == "hello"
    assert (
        await client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    ).status_code == 204
    assert (await client.get("/api/v1/session")).status_code == 401


async def test_profile_views_differ_by_caller(client: httpx.AsyncClient, brand: Brand) -> None:
    url = f"/api/v1/accounts/{brand.account_id}"
    public = (await client.get(url)).json()
    assert public["follower_count"] == 0 and public["live_room_id"] is None
    assert public["url"].endswith(f"/@{brand.handle}")
    assert "budget" not in public and "following" not in public
    assert (await client.get(url, headers=brand.key_headers)).json()["budget"] == 0
    fan = await mint(client, brand)
    assert (await client.get(url, headers=bearer(fan["token"]))).json()["following"] is False
    other = await sign_up(client)
    # Another account's key sees the public view only.
    assert "budget" not in (await client.get(url, headers=other.key_headers)).json()


async def test_patch_profile_origins_and_keywords(client: httpx.AsyncClient, brand: Brand) -> None:
    r = await client.patch(
        f"/api/v1/accounts/{brand.account_id}",
        json={
            "name": "Tea House",
            "embed_origins": ["https://Shop.Example:443/", "http://a.example:8080"],
            "keywords": ["新品", "护肤", "新品"],
        },
        headers=brand.key_headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["embed_origins"] == ["https://shop.example", "http://a.example:8080"]
    assert body["keywords"] == ["新品", "护肤"]
    r = await client.patch(
        f"/api/v1/accounts/{brand.account_id}",
        json={"embed_origins": ["https://ok.example", "https://x.example/path"]},
        headers=brand.key_headers,
    )
    assert r.status_code == 422 and r.json()["field"] == "embed_origins.1"


async def test_fan_tokens_map_external_ids_and_set_tiers(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await client.put(
        f"/api/v1/accounts/{brand.account_id}/tiers",
        json={"tiers": [{"rank": 0, "name": "普通"}, {"rank": 2, "name": "金卡"}]},
        headers=brand.key_headers,
    )
    a = await mint(client, brand, "ext-1", tier=2)
    b = await mint(client, brand, "ext-1")
    assert a["fan_id"] == b["fan_id"] and a["token"] != b["token"]
    me = await client.get("/api/v1/me", headers=bearer(b["token"]))
    assert me.json()["fan_id"] == a["fan_id"] and me.json()["issuer_account_id"] == brand.account_id
    member = await client.get(
        f"/api/v1/accounts/{brand.account_id}/members/{a['fan_id']}", headers=brand.key_headers
    )
    assert member.json()["tier"] == 2 and member.json()["tier_name"] == "金卡"
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/fan-tokens",
        json={"external_id": "ext-2", "name": "x", "tier": 1},
        headers=brand.key_headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_tier"


async def test_fan_token_revocation(client: httpx.AsyncClient, brand: Brand) -> None:
    fan = await mint(client, brand)
    second = await mint(client, brand)
    r = await client.delete(
        f"/api/v1/accounts/{brand.account_id}/fan-tokens/{fan['id']}", headers=brand.key_headers
    )
    assert r.status_code == 204
    r = await client.get("/api/v1/me", headers=bearer(fan["token"]))
    assert r.status_code == 401 and r.json()["code"] == "token_revoked"
    assert (await client.get("/api/v1/me", headers=bearer(second["token"]))).status_code == 200
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/fans/{fan['fan_id']}/revoke-tokens",
        headers=brand.key_headers,
    )
    assert r.json() == {"revoked": 1}
    assert (await client.get("/api/v1/me", headers=bearer(second["token"]))).status_code == 401


async def test_members_are_set_by_the_brand_backend_only(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await client.put(
        f"/api/v1/accounts/{brand.account_id}/tiers",
        json={"tiers": [{"rank": 0, "name": "普通"}, {"rank": 1, "name": "银卡"}]},
        headers=brand.key_headers,
    )
    fan = await mint(client, brand)
    url = f"/api/v1/accounts/{brand.account_id}/members/{fan['fan_id']}"
    r = await client.put(url, json={"tier": 1}, headers=bearer(fan["token"]))
    assert r.status_code == 403  # a fan never asserts its own tier
    r = await client.put(url, json={"tier": 1}, headers=brand.key_headers)
    assert r.status_code == 200 and r.json()["tier"] == 1
    r = await client.put(
        f"/api/v1/accounts/{brand.account_id}/tiers",
        json={"tiers": [{"rank": 0, "name": "普通"}]},
        headers=brand.key_headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "tier_in_use"


async def test_follow_unfollow_and_followers_pages(client: httpx.AsyncClient, brand: Brand) -> None:
    url = f"/api/v1/accounts/{brand.account_id}"
    tokens = [(await mint(client, brand, f"f{i}"))["token"] for i in range(5)]
    for t in tokens:
        assert (await client.post(f"{url}/follow", headers=bearer(t))).status_code == 200
    again = await client.post(f"{url}/follow", headers=bearer(tokens[0]))
    assert again.json() == {"following": True, "follower_count": 5}
    off = await client.delete(f"{url}/follow", headers=bearer(tokens[1]))
    assert off.json() == {"following": False, "follower_count": 4}
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{url}/followers", params=params, headers=brand.key_headers)
        assert r.status_code == 200
        names += [i["name"] for i in r.json()["items"]]
        if (cursor := r.json()["next_cursor"]) is None:
            break
    assert names == ["fan f4", "fan f3", "fan f2", "fan f0"]
    r = await client.get(f"{url}/followers", headers=bearer(tokens[0]))
    assert r.status_code == 403  # staff and the brand only
    mine = await client.get("/api/v1/me/follows", headers=bearer(tokens[0]))
    assert [i["account_id"] for i in mine.json()["items"]] == [brand.account_id]


async def test_wallet_and_budget_credits(client: httpx.AsyncClient, brand: Brand) -> None:
    fan = await mint(client, brand)
    url = f"/api/v1/accounts/{brand.account_id}"
    r = await client.post(
        f"{url}/wallets/{fan['fan_id']}/credits",
        json={"points": 30, "reason": "order 1"},
        headers={**brand.key_headers, "Idempotency-Key": "o-1"},
    )
    assert r.status_code == 201 and r.json()["balance"] == 30
    r = await client.post(
        f"{url}/wallets/{fan['fan_id']}/credits",
        json={"points": 12, "reason": "order 2", "reference": "ord-2"},
        headers={**brand.key_headers, "Idempotency-Key": "o-2"},
    )
    assert r.json()["balance"] == 42
    r = await client.post(
        f"{url}/budget/credits",
        json={"points": 500},
        headers={**brand.key_headers, "Idempotency-Key": "b-1"},
    )
    assert r.status_code == 201 and r.json()["budget"] == 500
    assert (await client.get(url, headers=brand.key_headers)).json()["budget"] == 500
    mine = await client.get("/api/v1/me/wallets", headers=bearer(fan["token"]))
    assert mine.json() == {"items": [{"account_id": brand.account_id, "balance": 42}]}
    wallet = await client.get(f"{url}/wallets/{fan['fan_id']}", headers=brand.key_headers)
    assert wallet.json()["balance"] == 42
    ledger = await client.get(f"{url}/ledger", headers=brand.key_headers)
    items = ledger.json()["items"]
    assert [(e["credit"], e["points"], e["reason"], e["reference"]) for e in items] == [
        ("budget", 500, "budget top-up", "b-1"),
        (f"wallet:{fan['fan_id']}", 12, "order 2", "ord-2"),
        (f"wallet:{fan['fan_id']}", 30, "order 1", "o-1"),
    ]
    budget_only = await client.get(
        f"{url}/ledger", params={"book": "budget"}, headers=brand.key_headers
    )
    assert len(budget_only.json()["items"]) == 1


async def test_a_retried_credit_replays_the_first_answer(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    fan = await mint(client, brand)
    url = f"/api/v1/accounts/{brand.account_id}/wallets/{fan['fan_id']}/credits"
    headers = {**brand.key_headers, "Idempotency-Key": "retry-me"}
    first = await client.post(url, json={"points": 7, "reason": "r"}, headers=headers)
    second = await client.post(url, json={"points": 7, "reason": "r"}, headers=headers)
    assert second.status_code == 201 and second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    changed = await client.post(url, json={"points": 8, "reason": "r"}, headers=headers)
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"


async def test_api_keys_and_staff_are_managed_by_the_owner_session_only(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    url = f"/api/v1/accounts/{brand.account_id}"
    # A backend key cannot mint more keys or invite staff: one leaked key must stay one key.
    for method, path, body in [
        ("POST", f"{url}/api-keys", {"name": "more"}),
        ("GET", f"{url}/api-keys", None),
        ("POST", f"{url}/invitations", {"email": "evil@x.example", "role": "owner"}),
        ("GET", f"{url}/staff", None),
    ]:
        r = await client.request(method, path, json=body, headers=brand.key_headers)
        assert r.status_code == 403 and r.json()["code"] == "wrong_credential", path
    client.cookies = brand.cookies
    owner = brand.staff_headers
    created = await client.post(f"{url}/api-keys", json={"name": "orders"}, headers=owner)
    assert created.status_code == 201
    key = created.json()["key"]
    listed = (await client.get(f"{url}/api-keys")).json()["items"]
    assert {k["name"] for k in listed} == {"default", "orders"}
    assert all("key" not in k for k in listed)
    assert (await client.get(url, headers=bearer(key))).status_code == 200
    revoked = await client.delete(f"{url}/api-keys/{created.json()['id']}", headers=owner)
    assert revoked.json()["revoked_at"] is not None
    r = await client.get(url, headers=bearer(key))
    assert r.status_code == 401 and r.json()["code"] == "api_key_revoked"
    inv = await client.post(
        f"{url}/invitations", json={"email": "host@x.example", "role": "host"}, headers=owner
    )
    assert inv.status_code == 201 and "#token=" in inv.json()["accept_url"]
    # Accepting while the owner's session cookie is still in the browser (no CSRF header):
    # the cookie carries no authority there, and the invitation's token and password do.
    accepted = await client.post(
        "/api/v1/invitations/accept", json={"token": inv.json()["token"], "password": "hostpass1"}
    )
    assert accepted.status_code == 201 and accepted.json()["role"] == "host"
    host_csrf = (await client.get("/api/v1/session")).json()["csrf_token"]
    # A host may read followers but not manage keys.
    assert (await client.get(f"{url}/followers")).status_code == 200
    r = await client.post(
        f"{url}/api-keys", json={"name": "x"}, headers={"X-CSRF-Token": host_csrf}
    )
    assert r.status_code == 403 and r.json()["code"] == "role_required"
    people = await client.get(f"{url}/staff")
    assert sorted(p["role"] for p in people.json()["items"]) == ["host", "owner"]


async def test_staff_of_one_account_cannot_touch_another(client: httpx.AsyncClient) -> None:
    a = await sign_up(client)
    b = await sign_up(client)
    client.cookies = a.cookies
    r = await client.patch(
        f"/api/v1/accounts/{b.account_id}", json={"bio": "x"}, headers=a.staff_headers
    )
    assert r.status_code == 403 and r.json()["code"] == "not_staff"
    r = await client.patch(
        f"/api/v1/accounts/{b.account_id}", json={"bio": "x"}, headers=a.key_headers
    )
    assert r.status_code == 403 and r.json()["code"] == "wrong_account"


async def test_a_brand_manages_only_the_fans_it_minted(client: httpx.AsyncClient) -> None:
    a = await sign_up(client)
    b = await sign_up(client)
    fan_b = await mint(client, b, "shared-user")
    base = f"/api/v1/accounts/{a.account_id}"
    # Brand A can see fan B among its followers, but cannot set its tier or grant it points.
    await client.post(f"{base}/follow", headers=bearer(fan_b["token"]))
    followers = await client.get(f"{base}/followers", headers=a.key_headers)
    assert [f["fan_id"] for f in followers.json()["items"]] == [fan_b["fan_id"]]
    for method, path, body, extra in [
        ("PUT", f"{base}/members/{fan_b['fan_id']}", {"tier": 0}, {}),
        (
            "POST",
            f"{base}/wallets/{fan_b['fan_id']}/credits",
            {"points": 5, "reason": "x"},
            {"Idempotency-Key": "k"},
        ),
        ("POST", f"{base}/fans/{fan_b['fan_id']}/revoke-tokens", None, {}),
    ]:
        r = await client.request(method, path, json=body, headers={**a.key_headers, **extra})
        assert r.status_code == 404, (path, r.text)
        assert (r.json()["code"], r.json()["field"]) == ("fan_not_found", "fan_id")
    assert (await client.get("/api/v1/me", headers=bearer(fan_b["token"]))).status_code == 200
