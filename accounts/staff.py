"""Staff: people who work an account in the console, their roles, sessions and invitations."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from accounts.accounts import get_account
from accounts.errors import Conflict, Invalid, NotFound, Unauthorized
from accounts.passwords import MAX_LENGTH, MIN_LENGTH, Passwords
from accounts.tokens import digest
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

STAFF = "staff"
ROLES = "staff_roles"
SESSIONS = "sessions"
INVITATIONS = "invitations"
INDEXES = [
    Index(STAFF, ("email",), unique=True),
    Index(ROLES, ("account_id", "staff_id"), unique=True),
    Index(ROLES, ("staff_id",)),
    Index(SESSIONS, ("staff_id",)),
    Index(SESSIONS, ("expires_at",)),
    Index(INVITATIONS, ("account_id", "created_at")),
    Index(INVITATIONS, ("token_hash",), unique=True),
]

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
SESSION_TTL = timedelta(days=7)
INVITATION_TTL = timedelta(days=7)


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    HOST = "host"
    MODERATOR = "moderator"


@dataclass(frozen=True)
class Staff:
    id: str
    email: str
    created_at: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Staff:
        return cls(id=doc["id"], email=doc["email"], created_at=doc["created_at"])


@dataclass(frozen=True)
class Membership:
    account_id: str
    staff_id: str
    role: Role


@dataclass(frozen=True)
class Session:
    token: str
    staff: Staff
    csrf_token: str
    expires_at: str


@dataclass(frozen=True)
class Invitation:
    id: str
    account_id: str
    email: str
    role: Role
    expires_at: str
    created_at: str
    accepted_at: str | None
    token: str | None = None  # only when just created

    @classmethod
    def from_doc(cls, doc: dict[str, Any], token: str | None = None) -> Invitation:
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            email=doc["email"],
            role=Role(doc["role"]),
            expires_at=doc["expires_at"],
            created_at=doc["created_at"],
            accepted_at=doc.get("accepted_at"),
            token=token,
        )


def normalize_email(email: str, *, field: str = "email") -> str:
    value = email.strip().lower()
    if not EMAIL.match(value) or len(value) > 254:
        raise Invalid(f"{email!r} is not an email address", field=field)
    return value


def check_password(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"a password needs at least {MIN_LENGTH} characters", field=field)
    if len(password) > MAX_LENGTH:
        raise Invalid(f"a password has at most {MAX_LENGTH} characters", field=field)


async def create_staff(
    store: DocumentStore, *, email: str, password_hash: str, now: datetime
) -> Staff:
    """Create a login. Hash the password (``Passwords.hash``) before any transaction: it is
    slow on purpose and must not hold the store's writer."""
    email = normalize_email(email)
    if await store.collection(STAFF).find_one({"email": email}) is not None:
        raise Conflict(
            "that email already has a login; log in instead", code="email_taken", field="email"
        )
    doc = {
        "id": new_id("stf"),
        "email": email,
        "password_hash": password_hash,
        "created_at": rfc3339(now),
    }
    await store.collection(STAFF).insert(doc)
    return Staff.from_doc(doc)


async def grant_role(
    store: DocumentStore, *, account_id: str, staff_id: str, role: Role, now: datetime
) -> Membership:
    await store.collection(ROLES).update_one(
        {"account_id": account_id, "staff_id": staff_id},
        {"$set": {"role": role.value}, "$setOnInsert": {"id": new_id("rol"), "at": rfc3339(now)}},
        upsert=True,
    )
    return Membership(account_id=account_id, staff_id=staff_id, role=role)


async def role_of(store: DocumentStore, account_id: str, staff_id: str) -> Role | None:
    doc = await store.collection(ROLES).find_one({"account_id": account_id, "staff_id": staff_id})
    return Role(doc["role"]) if doc else None


async def memberships(store: DocumentStore, staff_id: str) -> list[Membership]:
    docs = await store.collection(ROLES).find({"staff_id": staff_id}, sort=[("at", 1)])
    return [Membership(d["account_id"], d["staff_id"], Role(d["role"])) for d in docs]


async def account_staff(store: DocumentStore, account_id: str) -> list[tuple[Staff, Role]]:
    roles = await store.collection(ROLES).find({"account_id": account_id}, sort=[("at", 1)])
    people = await store.collection(STAFF).find({"id": {"$in": [r["staff_id"] for r in roles]}})
    by_id = {p["id"]: Staff.from_doc(p) for p in people}
    return [(by_id[r["staff_id"]], Role(r["role"])) for r in roles if r["staff_id"] in by_id]


async def authenticate(
    store: DocumentStore, passwords: Passwords, *, email: str, password: str
) -> Staff:
    doc = await store.collection(STAFF).find_one({"email": email.strip().lower()})
    ok = await passwords.verify(doc["password_hash"] if doc else await passwords.decoy(), password)
    if doc is None or not ok:
        raise Unauthorized("the email or password is wrong", code="invalid_credentials")
    return Staff.from_doc(doc)


async def open_session(store: DocumentStore, staff: Staff, *, now: datetime) -> Session:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = rfc3339(now + SESSION_TTL)
    await store.collection(SESSIONS).insert(
        {
            "id": digest(token),
            "staff_id": staff.id,
            "csrf_token": csrf,
            "expires_at": expires,
            "created_at": rfc3339(now),
        }
    )
    return Session(token=token, staff=staff, csrf_token=csrf, expires_at=expires)


async def session_for(store: DocumentStore, token: str, *, now: datetime) -> Session | None:
    doc = await store.collection(SESSIONS).get(digest(token))
    if doc is None or parse_rfc3339(doc["expires_at"]) <= now:
        return None
    staff = await store.collection(STAFF).get(doc["staff_id"])
    if staff is None:
        return None
    return Session(
        token=token,
        staff=Staff.from_doc(staff),
        csrf_token=doc["csrf_token"],
        expires_at=doc["expires_at"],
    )


async def close_session(store: DocumentStore, token: str) -> None:
    await store.collection(SESSIONS).delete_one({"id": digest(token)})


async def purge_expired_sessions(store: DocumentStore, *, now: datetime) -> int:
    return await store.collection(SESSIONS).delete_many({"expires_at": {"$lte": rfc3339(now)}})


async def invite(
    store: DocumentStore, *, account_id: str, email: str, role: Role, now: datetime
) -> Invitation:
    await get_account(store, account_id)
    email = normalize_email(email)
    token = secrets.token_urlsafe(32)
    doc = {
        "id": new_id("inv"),
        "account_id": account_id,
        "email": email,
        "role": role.value,
        "token_hash": digest(token),
        "created_at": rfc3339(now),
        "expires_at": rfc3339(now + INVITATION_TTL),
        "accepted_at": None,
    }
    await store.collection(INVITATIONS).insert(doc)
    return Invitation.from_doc(doc, token=token)


async def invitations(store: DocumentStore, account_id: str) -> list[Invitation]:
    docs = await store.collection(INVITATIONS).find(
        {"account_id": account_id}, sort=[("created_at", -1)], limit=100
    )
    return [Invitation.from_doc(d) for d in docs]


async def revoke_invitation(store: DocumentStore, account_id: str, invitation_id: str) -> None:
    gone = await store.collection(INVITATIONS).delete_one(
        {"id": invitation_id, "account_id": account_id, "accepted_at": None}
    )
    if gone is None:
        raise NotFound("invitation", invitation_id)


async def accept_invitation(
    store: DocumentStore, passwords: Passwords, *, token: str, password: str, now: datetime
) -> tuple[Staff, Membership]:
    """Join the inviting account; a new email gets a login with this password, a known email
    proves itself with its existing password. The slow hashing happens first; the claim of
    the invitation, the new login and the role are then written together or not at all."""
    doc = await store.collection(INVITATIONS).find_one({"token_hash": digest(token)})
    if doc is None or doc.get("accepted_at") or parse_rfc3339(doc["expires_at"]) <= now:
        raise NotFound("invitation", "(token)", field="token")
    existing = await store.collection(STAFF).find_one({"email": doc["email"]})
    if existing is None:
        check_password(password)
        hashed = await passwords.hash(password)
    elif not await passwords.verify(existing["password_hash"], password):
        raise Unauthorized(
            "this email already has a login: enter its password", code="invalid_credentials"
        )
    async with store.transaction():
        claimed = await store.collection(INVITATIONS).update_one(
            {"id": doc["id"], "accepted_at": None}, {"$set": {"accepted_at": rfc3339(now)}}
        )
        if claimed is None:
            raise Conflict(
                "this invitation was already used", code="invitation_used", field="token"
            )
        if existing is None:
            staff = await create_staff(store, email=doc["email"], password_hash=hashed, now=now)
        else:
            staff = Staff.from_doc(existing)
        member = await grant_role(
            store, account_id=doc["account_id"], staff_id=staff.id, role=Role(doc["role"]), now=now
        )
    return staff, member
