"""Fans and the short-lived tokens a brand's backend mints for them.

A fan is known to a deployment by ``(issuer account, external_id)``: the same external id from
the same brand always maps to the same fan id. A token is ``laf_<payload>.<signature>`` where
the payload names the token, fan, issuing account and expiry, and the signature is
HMAC-SHA256 under the deployment's secret. Signature and expiry are checked without the store;
a revocation is a stored mark checked on every use, so a revoked token stops at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.accounts import clean_name
from accounts.errors import Invalid, NotFound, Unauthorized
from accounts.tokens import same
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, DuplicateKeyError, Index

FANS = "fans"
FAN_TOKENS = "fan_tokens"
INDEXES = [
    Index(FANS, ("issuer_id", "external_id"), unique=True),
    Index(FAN_TOKENS, ("fan_id",)),
    Index(FAN_TOKENS, ("expires_at",)),
]
PREFIX = "laf_"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 86400


@dataclass(frozen=True)
class Fan:
    id: str
    issuer_id: str
    external_id: str
    name: str
    created_at: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Fan:
        return cls(doc["id"], doc["issuer_id"], doc["external_id"], doc["name"], doc["created_at"])


@dataclass(frozen=True)
class FanToken:
    id: str
    token: str
    fan_id: str
    account_id: str
    expires_at: str


@dataclass(frozen=True)
class FanIdentity:
    """Who a verified token speaks for."""

    token_id: str
    fan_id: str
    issuer_id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    # The deployment's key will sign other things too (drop certificates): the purpose
    # prefix keeps a signature made for one from ever verifying as another.
    message = b"lifeaccount fan-token v1|" + payload.encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


async def upsert_fan(
    store: DocumentStore, *, issuer_id: str, external_id: str, name: str, now: datetime
) -> Fan:
    if not external_id.strip():
        raise Invalid("an external_id cannot be blank", field="external_id")
    name = clean_name(name, "name")
    fans = store.collection(FANS)
    filter = {"issuer_id": issuer_id, "external_id": external_id}
    update = {
        "$set": {"name": name},
        "$setOnInsert": {"id": new_id("fan"), "created_at": rfc3339(now)},
    }
    try:
        doc = await fans.update_one(filter, update, upsert=True)
    except DuplicateKeyError:
        # Two first mints raced on another engine; the winner's document is there now.
        doc = await fans.update_one(filter, {"$set": {"name": name}})
    assert doc is not None
    return Fan.from_doc(doc)


async def get_fan(store: DocumentStore, fan_id: str) -> Fan:
    doc = await store.collection(FANS).get(fan_id)
    if doc is None:
        raise NotFound("fan", fan_id)
    return Fan.from_doc(doc)


async def get_own_fan(store: DocumentStore, account_id: str, fan_id: str) -> Fan:
    """A fan this account's backend minted. A brand manages only the fans it knows: another
    brand's fan (seen, say, among its followers) is not found here."""
    fan = await get_fan(store, fan_id)
    if fan.issuer_id != account_id:
        raise NotFound("fan", fan_id)
    return fan


async def fans_by_id(store: DocumentStore, fan_ids: list[str]) -> dict[str, Fan]:
    docs = await store.collection(FANS).find({"id": {"$in": fan_ids}})
    return {d["id"]: Fan.from_doc(d) for d in docs}


async def mint_token(
    store: DocumentStore, secret: bytes, *, fan: Fan, account_id: str, ttl_s: int, now: datetime
) -> FanToken:
    token_id = new_id("ftk")
    expires = now + timedelta(seconds=ttl_s)
    payload = _b64(
        json.dumps(
            {"t": token_id, "f": fan.id, "a": account_id, "e": int(expires.timestamp())},
            separators=(",", ":"),
        ).encode()
    )
    await store.collection(FAN_TOKENS).insert(
        {
            "id": token_id,
            "fan_id": fan.id,
            "account_id": account_id,
            "expires_at": rfc3339(expires),
            "revoked_at": None,
            "created_at": rfc3339(now),
        }
    )
    return FanToken(
        id=token_id,
        token=f"{PREFIX}{payload}.{_sign(secret, payload)}",
        fan_id=fan.id,
        account_id=account_id,
        expires_at=rfc3339(expires),
    )


def looks_like_fan_token(token: str) -> bool:
    return token.startswith(PREFIX)


async def verify_token(
    store: DocumentStore, secret: bytes, token: str, *, now: datetime
) -> FanIdentity:
    payload, dot, signature = token.removeprefix(PREFIX).partition(".")
    if not dot or not same(signature, _sign(secret, payload)):
        raise Unauthorized("the fan token is not valid", code="token_invalid")
    try:
        claims = json.loads(_unb64(payload))
        token_id, fan_id, issuer, expires = claims["t"], claims["f"], claims["a"], claims["e"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("the fan token is not valid", code="token_invalid") from exc
    if datetime.fromtimestamp(expires, UTC) <= now:
        raise Unauthorized(
            "the fan token has expired; ask the brand's backend for a new one", code="token_expired"
        )
    doc = await store.collection(FAN_TOKENS).get(token_id)
    if doc is None or doc.get("revoked_at"):
        raise Unauthorized("the fan token was revoked", code="token_revoked")
    return FanIdentity(token_id=token_id, fan_id=fan_id, issuer_id=issuer)


async def revoke_token(
    store: DocumentStore, *, account_id: str, token_id: str, now: datetime
) -> None:
    tokens = store.collection(FAN_TOKENS)
    doc = await tokens.update_one(
        {"id": token_id, "account_id": account_id, "revoked_at": None},
        {"$set": {"revoked_at": rfc3339(now)}},
    ) or await tokens.find_one({"id": token_id, "account_id": account_id})
    if doc is None:
        raise NotFound("fan_token", token_id)


async def revoke_fan_tokens(
    store: DocumentStore, *, account_id: str, fan_id: str, now: datetime
) -> int:
    """Revoke every live token this account minted for one fan (e.g. on logout)."""
    return await store.collection(FAN_TOKENS).update_many(
        {
            "account_id": account_id,
            "fan_id": fan_id,
            "revoked_at": None,
            "expires_at": {"$gt": rfc3339(now)},
        },
        {"$set": {"revoked_at": rfc3339(now)}},
    )


async def purge_expired_tokens(store: DocumentStore, *, now: datetime) -> int:
    """Forget tokens a day past expiry: the signature's expiry already refuses them, so the
    revocation mark is no longer needed."""
    cutoff = rfc3339(now - timedelta(days=1))
    return await store.collection(FAN_TOKENS).delete_many({"expires_at": {"$lte": cutoff}})
