"""An account's coupons and fans' claims of them.

A claim takes one coupon from stock exactly once, never more than ``per_fan_limit`` per fan,
never below zero stock, and only inside the validity window. Both limits are guarded updates
(``$inc`` only where the current value leaves room) run in one store transaction with the
claim's insert, so a refusal leaves nothing behind and racing claims cannot overshoot on any
engine. The claim's number per fan (1..limit) is also unique per (coupon, fan): should a guard
ever be wrong, the index refuses the extra claim rather than let a fan exceed the limit.

A claim may carry an idempotency key (the HTTP ``Idempotency-Key`` or the channel op id,
DESIGN §8): a retry with the same key answers the first claim with ``repeat=True``, even
after the stock ran out or the coupon expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.accounts import get_account
from accounts.errors import Conflict, Invalid, NotFound
from content.fields import check_int, check_list, clean_line, clean_text, parse_time
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import DocumentStore, DuplicateKeyError, Index

COUPONS = "coupons"
CLAIMS = "coupon_claims"
HOLDINGS = "coupon_holdings"  # per (coupon, fan): how many that fan has claimed
INDEXES = [
    Index(COUPONS, ("account_id", "created_at")),
    Index(CLAIMS, ("coupon_id", "fan_id", "number"), unique=True),
    Index(CLAIMS, ("coupon_id", "fan_id", "idempotency_key"), unique=True),
    Index(CLAIMS, ("fan_id", "at")),
    Index(CLAIMS, ("fan_id", "account_id", "at")),
]
MAX_TITLE = 60
MAX_DESCRIPTION = 500
MAX_STOCK = 100_000_000
MAX_PER_FAN = 100
MAX_KEY = 200
MAX_COUPON_REFS = 5


@dataclass(frozen=True)
class Coupon:
    id: str
    account_id: str
    title: str
    description: str
    total: int  # the stock it was created with
    stock: int  # what is left to claim
    claimed: int
    per_fan_limit: int
    valid_from: str
    valid_until: str
    created_at: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Coupon:
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            title=doc["title"],
            description=doc.get("description", ""),
            total=doc["total"],
            stock=doc["stock"],
            claimed=doc["claimed"],
            per_fan_limit=doc["per_fan_limit"],
            valid_from=doc["valid_from"],
            valid_until=doc["valid_until"],
            created_at=doc["created_at"],
        )


@dataclass(frozen=True)
class Claim:
    id: str
    coupon_id: str
    account_id: str
    fan_id: str
    number: int  # this fan's n-th claim of the coupon, 1..per_fan_limit
    at: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Claim:
        return cls(
            doc["id"], doc["coupon_id"], doc["account_id"], doc["fan_id"], doc["number"], doc["at"]
        )


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    repeat: bool  # true when the idempotency key had already claimed
    stock: int  # what is left right after this claim (now, for a repeat)


@dataclass(frozen=True)
class ClaimPage:
    items: list[Claim]
    next_cursor: str | None


@dataclass(frozen=True)
class CouponPage:
    items: list[Coupon]
    next_cursor: str | None


async def create_coupon(
    store: DocumentStore,
    account_id: str,
    *,
    title: Any,
    stock: Any,
    per_fan_limit: Any,
    valid_from: Any,
    valid_until: Any,
    description: Any = None,
    now: datetime,
) -> Coupon:
    starts = parse_time(valid_from, field="valid_from")
    ends = parse_time(valid_until, field="valid_until")
    if ends <= starts:
        raise Invalid("valid_until must be after valid_from", field="valid_until")
    if ends <= now:
        raise Invalid("valid_until has passed: nobody could claim it", field="valid_until")
    total = check_int(stock, field="stock", least=1, most=MAX_STOCK)
    doc = {
        "id": new_id("cpn"),
        "account_id": account_id,
        "title": clean_line(title, field="title", longest=MAX_TITLE),
        "description": clean_text(description, field="description", longest=MAX_DESCRIPTION),
        "total": total,
        "stock": total,
        "claimed": 0,
        "per_fan_limit": check_int(per_fan_limit, field="per_fan_limit", least=1, most=MAX_PER_FAN),
        "valid_from": rfc3339(starts),
        "valid_until": rfc3339(ends),
        "created_at": rfc3339(now),
    }
    await get_account(store, account_id)
    await store.collection(COUPONS).insert(doc)
    return Coupon.from_doc(doc)


async def get_coupon(store: DocumentStore, coupon_id: str) -> Coupon:
    doc = await store.collection(COUPONS).get(coupon_id)
    if doc is None:
        raise NotFound("coupon", coupon_id)
    return Coupon.from_doc(doc)


async def account_coupons(
    store: DocumentStore, account_id: str, *, limit: int, cursor: str | None
) -> CouponPage:
    """An account's coupons, newest first."""
    page = await store.collection(COUPONS).page(
        {"account_id": account_id}, sort=[("created_at", -1)], limit=limit, cursor=cursor
    )
    return CouponPage([Coupon.from_doc(d) for d in page.items], page.next_cursor)


async def check_coupon_ids(
    store: DocumentStore, account_id: str, raw: Any, *, field: str = "coupon_ids"
) -> list[str]:
    """Coupon ids a content refers to: at most five, no repeats, all this account's own."""
    ids = check_list(raw, field=field, most=MAX_COUPON_REFS)
    for i, coupon_id in enumerate(ids):
        await check_coupon_id(store, account_id, coupon_id, field=f"{field}.{i}")
        if coupon_id in ids[:i]:
            raise Invalid("this coupon is already listed", field=f"{field}.{i}")
    return list(ids)


async def check_coupon_id(
    store: DocumentStore, account_id: str, coupon_id: Any, *, field: str
) -> str:
    if not isinstance(coupon_id, str):
        raise Invalid("a coupon id", field=field)
    doc = await store.collection(COUPONS).get(coupon_id)
    # Another account's coupon reads as unknown: a content shows only its own brand's coupons.
    if doc is None or doc["account_id"] != account_id:
        raise Invalid(
            f"no coupon {coupon_id!r} on this account", code="unknown_coupon", field=field
        )
    return coupon_id


def _holding_id(coupon_id: str, fan_id: str) -> str:
    return f"{coupon_id}:{fan_id}"


async def claim(
    store: DocumentStore,
    coupon_id: str,
    *,
    fan_id: str,
    idempotency_key: str | None = None,
    now: datetime,
) -> ClaimResult:
    """Claim one coupon for a fan (the fan comes from a verified token, never the body)."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY:
        raise Invalid(f"1-{MAX_KEY} characters", field="Idempotency-Key")
    try:
        return await _claim(store, coupon_id, fan_id, idempotency_key, now)
    except DuplicateKeyError as exc:
        # Another process committed this key between our look-up and our insert (engines
        # without a global write lock): the first claim is the answer.
        if idempotency_key is None or "idempotency_key" not in exc.fields:
            raise
        first = await _by_key(store, coupon_id, fan_id, idempotency_key)
        if first is None:
            raise
        return ClaimResult(first, True, (await get_coupon(store, coupon_id)).stock)


async def _by_key(store: DocumentStore, coupon_id: str, fan_id: str, key: str) -> Claim | None:
    doc = await store.collection(CLAIMS).find_one(
        {"coupon_id": coupon_id, "fan_id": fan_id, "idempotency_key": key}
    )
    return None if doc is None else Claim.from_doc(doc)


async def _claim(
    store: DocumentStore, coupon_id: str, fan_id: str, key: str | None, now: datetime
) -> ClaimResult:
    coupons = store.collection(COUPONS)
    async with store.transaction():
        if key is not None:
            first = await _by_key(store, coupon_id, fan_id, key)
            if first is not None:
                return ClaimResult(first, True, (await get_coupon(store, coupon_id)).stock)
        coupon = await get_coupon(store, coupon_id)
        if now < parse_rfc3339(coupon.valid_from):
            raise Conflict(
                f"claims open at {coupon.valid_from}", code="coupon_not_started", field="coupon_id"
            )
        if now >= parse_rfc3339(coupon.valid_until):
            raise Conflict(
                f"the coupon expired at {coupon.valid_until}",
                code="coupon_expired",
                field="coupon_id",
            )
        holdings = store.collection(HOLDINGS)
        hid = _holding_id(coupon_id, fan_id)
        await holdings.update_one(
            {"id": hid},
            {"$setOnInsert": {"coupon_id": coupon_id, "fan_id": fan_id, "count": 0}},
            upsert=True,
        )
        held = await holdings.update_one(
            {"id": hid, "count": {"$lt": coupon.per_fan_limit}}, {"$inc": {"count": 1}}
        )
        if held is None:
            raise Conflict(
                f"a fan may claim this coupon {coupon.per_fan_limit} time(s)",
                code="coupon_limit_reached",
                field="coupon_id",
            )
        taken = await coupons.update_one(
            {"id": coupon_id, "stock": {"$gte": 1}}, {"$inc": {"stock": -1, "claimed": 1}}
        )
        if taken is None:
            # The transaction rolls the holding's increment back with this refusal.
            raise Conflict("none left", code="coupon_out_of_stock", field="coupon_id")
        doc: dict[str, Any] = {
            "id": new_id("clm"),
            "coupon_id": coupon_id,
            "account_id": coupon.account_id,
            "fan_id": fan_id,
            "number": held["count"],
            "at": rfc3339(now),
        }
        if key is not None:
            doc["idempotency_key"] = key
        await store.collection(CLAIMS).insert(doc)
    return ClaimResult(Claim.from_doc(doc), False, taken["stock"])


async def fan_claims(
    store: DocumentStore,
    fan_id: str,
    *,
    account_id: str | None = None,
    limit: int,
    cursor: str | None,
) -> ClaimPage:
    """A fan's claims, newest first, across accounts or within one."""
    filter: dict[str, Any] = {"fan_id": fan_id}
    if account_id is not None:
        filter["account_id"] = account_id
    page = await store.collection(CLAIMS).page(
        filter, sort=[("at", -1)], limit=limit, cursor=cursor
    )
    return ClaimPage([Claim.from_doc(d) for d in page.items], page.next_cursor)


async def claimed_by(store: DocumentStore, coupon_id: str, fan_id: str) -> int:
    """How many times a fan has claimed a coupon (what a coupon widget shows)."""
    doc = await store.collection(HOLDINGS).get(_holding_id(coupon_id, fan_id))
    return int(doc["count"]) if doc else 0
