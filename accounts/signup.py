"""Sign-up: an owner, an account and a first API key, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.accounts import Account, clean_name, create_account, normalize_handle
from accounts.apikeys import ApiKey, create_key
from accounts.passwords import Passwords
from accounts.staff import Role, Staff, check_password, create_staff, grant_role, normalize_email
from store.port import DocumentStore


@dataclass(frozen=True)
class SignedUp:
    account: Account
    staff: Staff
    api_key: ApiKey


async def sign_up(
    store: DocumentStore,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    account_name: str,
    handle: str,
    now: datetime,
) -> SignedUp:
    # Check the cheap rules before the costly hash so a bad form answers at once.
    normalize_email(email)
    check_password(password)
    normalize_handle(handle)
    clean_name(account_name, "account.name")
    hashed = await passwords.hash(password)
    async with store.transaction():
        staff = await create_staff(store, email=email, password_hash=hashed, now=now)
        account = await create_account(store, name=account_name, handle=handle, now=now)
        await grant_role(store, account_id=account.id, staff_id=staff.id, role=Role.OWNER, now=now)
        key = await create_key(store, account_id=account.id, name="default", now=now)
    return SignedUp(account=account, staff=staff, api_key=key)
