"""Routes an account's owner uses from the console: API keys, staff and invitations.

These take a staff session only: an API key that could mint more keys or invite an owner
would turn one leaked backend secret into the whole account.
"""

from __future__ import annotations

from accounts import apikeys, staff
from accounts.accounts import get_account
from accounts.staff import Role
from webapp import schemas as s
from webapp.api import (
    ACCOUNT_PATH as A,
)
from webapp.api import (
    ANY_ROLE,
    OWNER,
    STAFF,
    Call,
    Endpoint,
    Reply,
    base_url,
)


def _key_out(key: apikeys.ApiKey) -> s.ApiKeyOut:
    # The secret appears only in the answer that creates the key, never as a field after.
    once = {"key": key.secret} if key.secret else {}
    return s.ApiKeyOut(
        id=key.id,
        name=key.name,
        hint=key.hint,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        **once,
    )


async def create_api_key(call: Call) -> s.ApiKeyOut:
    body: s.ApiKeyIn = call.body
    account_id = call.params["account_id"]
    await get_account(call.services.store, account_id)
    key = await apikeys.create_key(
        call.services.store, account_id=account_id, name=body.name, now=call.now
    )
    return _key_out(key)


async def list_api_keys(call: Call) -> s.ApiKeyList:
    keys = await apikeys.list_keys(call.services.store, call.params["account_id"])
    return s.ApiKeyList(items=[_key_out(k) for k in keys])


async def revoke_api_key(call: Call) -> s.ApiKeyOut:
    key = await apikeys.revoke_key(
        call.services.store,
        account_id=call.params["account_id"],
        key_id=call.params["key_id"],
        now=call.now,
    )
    return _key_out(key)


def _invitation_out(call: Call, inv: staff.Invitation) -> s.InvitationOut:
    once: dict[str, str] = {}
    if inv.token:
        base = base_url(call.request, call.services.settings.base_url)
        once = {"token": inv.token, "accept_url": f"{base}/invite#token={inv.token}"}
    return s.InvitationOut(
        id=inv.id,
        email=inv.email,
        role=inv.role.value,
        created_at=inv.created_at,
        expires_at=inv.expires_at,
        accepted_at=inv.accepted_at,
        **once,
    )


async def create_invitation(call: Call) -> s.InvitationOut:
    body: s.InvitationIn = call.body
    inv = await staff.invite(
        call.services.store,
        account_id=call.params["account_id"],
        email=body.email,
        role=Role(body.role),
        now=call.now,
    )
    return _invitation_out(call, inv)


async def list_invitations(call: Call) -> s.InvitationList:
    found = await staff.invitations(call.services.store, call.params["account_id"])
    return s.InvitationList(items=[_invitation_out(call, i) for i in found])


async def revoke_invitation(call: Call) -> Reply:
    await staff.revoke_invitation(
        call.services.store, call.params["account_id"], call.params["invitation_id"]
    )
    return Reply(None, status=204)


async def list_staff(call: Call) -> s.StaffList:
    people = await staff.account_staff(call.services.store, call.params["account_id"])
    return s.StaffList(items=[s.StaffOut(id=p.id, email=p.email, role=r.value) for p, r in people])


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{A}/api-keys",
        create_api_key,
        "Create an API key",
        "api keys",
        response=s.ApiKeyOut,
        body=s.ApiKeyIn,
        status=201,
        allow=STAFF,
        roles=OWNER,
        errors=(403, 404, 422),
    ),
    Endpoint(
        "GET",
        f"{A}/api-keys",
        list_api_keys,
        "API keys (never their secrets)",
        "api keys",
        response=s.ApiKeyList,
        allow=STAFF,
        roles=OWNER,
        errors=(403, 404),
    ),
    Endpoint(
        "DELETE",
        f"{A}/api-keys/{{key_id}}",
        revoke_api_key,
        "Revoke an API key",
        "api keys",
        response=s.ApiKeyOut,
        allow=STAFF,
        roles=OWNER,
        errors=(403, 404),
    ),
    Endpoint(
        "POST",
        f"{A}/invitations",
        create_invitation,
        "Invite a staff member",
        "staff",
        response=s.InvitationOut,
        body=s.InvitationIn,
        status=201,
        allow=STAFF,
        roles=OWNER,
        errors=(403, 404, 422),
    ),
    Endpoint(
        "GET",
        f"{A}/invitations",
        list_invitations,
        "Invitations",
        "staff",
        response=s.InvitationList,
        allow=STAFF,
        roles=OWNER,
        errors=(403, 404),
    ),
    Endpoint(
        "DELETE",
        f"{A}/invitations/{{invitation_id}}",
        revoke_invitation,
        "Withdraw an invitation",
        "staff",
        status=204,
        allow=STAFF,
        roles=OWNER,
        errors=(403, 404),
    ),
    Endpoint(
        "GET",
        f"{A}/staff",
        list_staff,
        "Staff and their roles",
        "staff",
        response=s.StaffList,
        allow=STAFF,
        roles=ANY_ROLE,
        errors=(403, 404),
    ),
]
