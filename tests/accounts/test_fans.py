from __future__ import annotations

from datetime import timedelta

import pytest

from accounts import fans
from accounts.accounts import Account
from accounts.errors import Unauthorized
from store.sqlite import SQLiteStore
from tests.accounts.conftest import NOW

SECRET = b"k" * 32


async def test_the_same_external_id_maps_to_the_same_fan(
    store: SQLiteStore, account: Account
) -> None:
    a = await fans.upsert_fan(store, issuer_id=account.id, external_id="u9", name="A", now=NOW)
    b = await fans.upsert_fan(store, issuer_id=account.id, external_id="u9", name="B", now=NOW)
    other = await fans.upsert_fan(store, issuer_id="acc_other", external_id="u9", name="C", now=NOW)
    assert a.id == b.id != other.id
    assert (await fans.get_fan(store, a.id)).name == "B"  # the latest name wins


async def test_a_minted_token_verifies_until_it_expires(
    store: SQLiteStore, account: Account
) -> None:
    fan = await fans.upsert_fan(store, issuer_id=account.id, external_id="u1", name="A", now=NOW)
    minted = await fans.mint_token(store, SECRET, fan=fan, account_id=account.id, ttl_s=60, now=NOW)
    who = await fans.verify_token(store, SECRET, minted.token, now=NOW + timedelta(seconds=59))
    assert (who.fan_id, who.issuer_id, who.token_id) == (fan.id, account.id, minted.id)
    with pytest.raises(Unauthorized) as err:
        await fans.verify_token(store, SECRET, minted.token, now=NOW + timedelta(seconds=60))
    assert err.value.code == "token_expired"


async def test_forged_and_revoked_tokens_are_refused(store: SQLiteStore, account: Account) -> None:
    fan = await fans.upsert_fan(store, issuer_id=account.id, external_id="u1", name="A", now=NOW)
    minted = await fans.mint_token(
        store, SECRET, fan=fan, account_id=account.id, ttl_s=600, now=NOW
    )
    forged_secret = await fans.mint_token(
        store, b"x" * 32, fan=fan, account_id=account.id, ttl_s=600, now=NOW
    )
    body, _, sig = minted.token.partition(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    for bad in (forged_secret.token, tampered, minted.token + "x", "laf_nodot"):
        with pytest.raises(Unauthorized) as err:
            await fans.verify_token(store, SECRET, bad, now=NOW)
        assert err.value.code == "token_invalid"
    await fans.revoke_token(store, account_id=account.id, token_id=minted.id, now=NOW)
    with pytest.raises(Unauthorized) as err:
        await fans.verify_token(store, SECRET, minted.token, now=NOW)
    assert err.value.code == "token_revoked"


async def test_revoking_a_fans_tokens_stops_every_live_one(
    store: SQLiteStore, account: Account
) -> None:
    fan = await fans.upsert_fan(store, issuer_id=account.id, external_id="u1", name="A", now=NOW)
    tokens = [
        await fans.mint_token(store, SECRET, fan=fan, account_id=account.id, ttl_s=600, now=NOW)
        for _ in range(3)
    ]
    assert await fans.revoke_fan_tokens(store, account_id=account.id, fan_id=fan.id, now=NOW) == 3
    for t in tokens:
        with pytest.raises(Unauthorized):
            await fans.verify_token(store, SECRET, t.token, now=NOW)
