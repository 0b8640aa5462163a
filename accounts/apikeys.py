"""API keys for a brand's own backend: shown once, stored as a SHA-256 digest, revocable.

A key is ``lak_<26-char id>_<43-char secret>``. The secret carries 256 random bits, so a fast
digest is enough to make a leaked table useless (argon2 is for low-entropy passwords and would
cost tens of milliseconds on every API call).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Invalid, NotFound, Unauthorized
from accounts.tokens import digest, same
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

API_KEYS = "api_keys"
INDEXES = [Index(API_KEYS, ("account_id", "created_at"))]
PREFIX = "lak_"
MAX_ACTIVE = 20


@dataclass(frozen=True)
class ApiKey:
    id: str
    account_id: str
    name: str
    hint: str
    created_at: str
    revoked_at: str | None
    secret: str | None = None  # only in the answer that creates it

    @classmethod
    def from_doc(cls, doc: dict[str, Any], secret: str | None = None) -> ApiKey:
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            name=doc["name"],
            hint=doc["hint"],
            created_at=doc["created_at"],
            revoked_at=doc.get("revoked_at"),
            secret=secret,
        )


async def create_key(store: DocumentStore, *, account_id: str, name: str, now: datetime) -> ApiKey:
    active = await store.collection(API_KEYS).count({"account_id": account_id, "revoked_at": None})
    if active >= MAX_ACTIVE:
        raise Invalid(
            f"an account holds at most {MAX_ACTIVE} active keys; revoke one first",
            code="too_many_keys",
            field="name",
        )
    key_id = new_id("key")
    secret = secrets.token_urlsafe(32)
    token = f"{PREFIX}{key_id.removeprefix('key_')}_{secret}"
    doc = {
        "id": key_id,
        "account_id": account_id,
        "name": name.strip() or "default",
        "digest": digest(secret),
        "hint": f"{PREFIX}…{secret[-4:]}",
        "created_at": rfc3339(now),
        "revoked_at": None,
    }
    await store.collection(API_KEYS).insert(doc)
    return ApiKey.from_doc(doc, secret=token)


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


async def authenticate_key(store: DocumentStore, token: str) -> ApiKey:
    body = token.removeprefix(PREFIX)
    key_part, _, secret = body.partition("_")
    if len(key_part) != 26 or not secret:
        raise Unauthorized("the API key is malformed", code="api_key_invalid")
    doc = await store.collection(API_KEYS).get(f"key_{key_part}")
    if doc is None or not same(doc["digest"], digest(secret)):
        raise Unauthorized("the API key is not valid", code="api_key_invalid")
    if doc.get("revoked_at"):
        raise Unauthorized(
            "the API key was revoked; create a new one in the console", code="api_key_revoked"
        )
    return ApiKey.from_doc(doc)


async def get_key(store: DocumentStore, key_id: str) -> ApiKey | None:
    doc = await store.collection(API_KEYS).get(key_id)
    return None if doc is None else ApiKey.from_doc(doc)


async def list_keys(store: DocumentStore, account_id: str) -> list[ApiKey]:
    docs = await store.collection(API_KEYS).find(
        {"account_id": account_id}, sort=[("created_at", -1)], limit=200
    )
    return [ApiKey.from_doc(d) for d in docs]


async def revoke_key(
    store: DocumentStore, *, account_id: str, key_id: str, now: datetime
) -> ApiKey:
    """Revoke a key; revoking it again changes nothing."""
    keys = store.collection(API_KEYS)
    doc = await keys.update_one(
        {"id": key_id, "account_id": account_id, "revoked_at": None},
        {"$set": {"revoked_at": rfc3339(now)}},
    ) or await keys.find_one({"id": key_id, "account_id": account_id})
    if doc is None:
        raise NotFound("api_key", key_id)
    return ApiKey.from_doc(doc)
