"""Minting a fan token: find or create the fan, set its tier if the brand says so, sign a token.

All in one transaction, so a refused tier leaves no new fan behind.
"""

from __future__ import annotations

from datetime import datetime

from accounts.accounts import get_account
from accounts.fans import Fan, FanToken, mint_token, upsert_fan
from accounts.tiers import set_member_tier
from store.port import DocumentStore


async def mint_fan_token(
    store: DocumentStore,
    secret: bytes,
    *,
    account_id: str,
    external_id: str,
    name: str,
    tier: int | None,
    ttl_s: int,
    now: datetime,
) -> tuple[Fan, FanToken]:
    async with store.transaction():
        await get_account(store, account_id)
        fan = await upsert_fan(
            store, issuer_id=account_id, external_id=external_id, name=name, now=now
        )
        if tier is not None:
            await set_member_tier(store, account_id, fan.id, tier, now=now)
        token = await mint_token(
            store, secret, fan=fan, account_id=account_id, ttl_s=ttl_s, now=now
        )
    return fan, token
