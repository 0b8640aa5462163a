"""An account's tier ladder and its members' tiers.

The brand's backend decides a fan's tier; the server stores it and every tier-gated rule reads
it from here, never from the client. A fan with no member record has rank 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from accounts.accounts import ACCOUNTS, Tier, get_account
from accounts.errors import Conflict, Invalid, NotFound
from accounts.fans import get_own_fan
from store.clock import rfc3339
from store.port import DocumentStore, Index

MEMBERS = "members"
INDEXES = [Index(MEMBERS, ("account_id", "tier"))]
MAX_TIERS = 20


@dataclass(frozen=True)
class Member:
    account_id: str
    fan_id: str
    tier: int
    tier_name: str
    updated_at: str | None


def _member_id(account_id: str, fan_id: str) -> str:
    return f"{account_id}:{fan_id}"


def check_ladder(tiers: list[Tier]) -> list[Tier]:
    if not tiers:
        raise Invalid("a ladder needs at least one tier", field="tiers")
    if len(tiers) > MAX_TIERS:
        raise Invalid(f"a ladder has at most {MAX_TIERS} tiers", field="tiers")
    ranks: set[int] = set()
    names: set[str] = set()
    for i, tier in enumerate(tiers):
        name = " ".join(tier.name.split())
        if tier.rank < 0:
            raise Invalid("a rank is a whole number from 0", field=f"tiers.{i}.rank")
        if tier.rank in ranks:
            raise Invalid(f"rank {tier.rank} appears twice", field=f"tiers.{i}.rank")
        if not name:
            raise Invalid("a tier needs a name", field=f"tiers.{i}.name")
        if name in names:
            raise Invalid(f"the name {name!r} appears twice", field=f"tiers.{i}.name")
        ranks.add(tier.rank)
        names.add(name)
    if 0 not in ranks:
        raise Invalid(
            "the ladder must have rank 0, the tier of every fan by default", field="tiers"
        )
    return sorted((Tier(t.rank, " ".join(t.name.split())) for t in tiers), key=lambda t: t.rank)


async def set_ladder(
    store: DocumentStore, account_id: str, tiers: list[Tier], *, now: datetime
) -> list[Tier]:
    ladder = check_ladder(tiers)
    ranks = {t.rank for t in ladder}
    async with store.transaction():
        await get_account(store, account_id)
        held = await store.collection(MEMBERS).find_one(
            {"account_id": account_id, "tier": {"$nin": sorted(ranks)}}
        )
        if held is not None:
            raise Conflict(
                f"members still hold rank {held['tier']}; move them to another tier first",
                code="tier_in_use",
                field="tiers",
            )
        await store.collection(ACCOUNTS).update_one(
            {"id": account_id},
            {
                "$set": {
                    "tiers": [{"rank": t.rank, "name": t.name} for t in ladder],
                    "updated_at": rfc3339(now),
                }
            },
        )
    return ladder


async def set_member_tier(
    store: DocumentStore,
    account_id: str,
    fan_id: str,
    rank: int,
    *,
    now: datetime,
    field: str = "tier",
) -> Member:
    async with store.transaction():  # against a ladder change removing the rank meanwhile
        account = await get_account(store, account_id)
        await get_own_fan(store, account_id, fan_id)
        names = {t.rank: t.name for t in account.tiers}
        if rank not in names:
            raise Invalid(
                f"rank {rank} is not on this account's ladder "
                f"({', '.join(map(str, sorted(names)))})",
                code="unknown_tier",
                field=field,
            )
        await store.collection(MEMBERS).update_one(
            {"id": _member_id(account_id, fan_id)},
            {
                "$set": {
                    "account_id": account_id,
                    "fan_id": fan_id,
                    "tier": rank,
                    "updated_at": rfc3339(now),
                }
            },
            upsert=True,
        )
    return Member(account_id, fan_id, rank, names[rank], rfc3339(now))


async def member_tier(store: DocumentStore, account_id: str, fan_id: str) -> int:
    doc = await store.collection(MEMBERS).get(_member_id(account_id, fan_id))
    return int(doc["tier"]) if doc else 0


async def member_tiers(
    store: DocumentStore, account_id: str, fan_ids: Sequence[str]
) -> dict[str, int]:
    """Each fan's tier (0 for a fan who is no member), in one read."""
    docs = await store.collection(MEMBERS).find(
        {"id": {"$in": [_member_id(account_id, f) for f in fan_ids]}}
    )
    tiers = {f: 0 for f in fan_ids}
    tiers.update({d["fan_id"]: int(d["tier"]) for d in docs})
    return tiers


async def get_member(store: DocumentStore, account_id: str, fan_id: str) -> Member:
    account = await get_account(store, account_id)
    doc = await store.collection(MEMBERS).get(_member_id(account_id, fan_id))
    if doc is None:
        await get_own_fan(store, account_id, fan_id)
        rank, updated = 0, None
    else:
        rank, updated = int(doc["tier"]), doc.get("updated_at")
    names = {t.rank: t.name for t in account.tiers}
    if rank not in names:
        raise NotFound("tier", str(rank))
    return Member(account_id, fan_id, rank, names[rank], updated)
