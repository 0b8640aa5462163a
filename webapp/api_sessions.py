"""Routes for signing up, staff sessions and accepting invitations (DESIGN §4, §8)."""

from __future__ import annotations

from typing import Any

from accounts import staff
from accounts.accounts import get_account
from accounts.errors import NotFound, Unauthorized
from accounts.signup import sign_up
from webapp import schemas as s
from webapp.api import (
    Call,
    Endpoint,
    Reply,
)
from webapp.auth import (
    SESSION_COOKIE,
    Kind,
    client_address,
    count_attempt,
    log_in,
    session_cookie_options,
)


def _session_cookie(call: Call, session: staff.Session) -> tuple[str, str, dict[str, Any]]:
    options = session_cookie_options(call.services.settings.cookie_secure)
    return (SESSION_COOKIE, session.token, options)


async def _session_out(call: Call, session: staff.Session) -> s.SessionOut:
    mine = await staff.memberships(call.services.store, session.staff.id)
    accounts = []
    for m in mine:
        try:
            account = await get_account(call.services.store, m.account_id)
        except NotFound:
            continue
        accounts.append(
            s.MembershipOut(
                account_id=account.id, handle=account.handle, name=account.name, role=m.role.value
            )
        )
    return s.SessionOut(
        staff=s.StaffOut(id=session.staff.id, email=session.staff.email),
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
        accounts=accounts,
    )


async def signup(call: Call) -> Reply:
    body: s.SignupIn = call.body
    services = call.services
    count_attempt(services.signup_throttle, client_address(call.request))
    done = await sign_up(
        services.store,
        services.passwords,
        email=body.email,
        password=body.password,
        account_name=body.account.name,
        handle=body.account.handle,
        now=call.now,
    )
    session = await staff.open_session(services.store, done.staff, now=call.now)
    assert done.api_key.secret is not None
    out = s.SignupOut(
        account=s.AccountRef(
            id=done.account.id, handle=done.account.handle, name=done.account.name
        ),
        staff=s.StaffOut(id=done.staff.id, email=done.staff.email, role="owner"),
        api_key=done.api_key.secret,
        csrf_token=session.csrf_token,
    )
    return Reply(out, cookies=[_session_cookie(call, session)])


async def login(call: Call) -> Reply:
    body: s.SessionIn = call.body
    store = call.services.store
    who = await log_in(
        call.services,
        email=body.email,
        password=body.password,
        address=client_address(call.request),
    )
    session = await staff.open_session(store, who, now=call.now)
    return Reply(await _session_out(call, session), cookies=[_session_cookie(call, session)])


async def current_session(call: Call) -> s.SessionOut:
    assert call.caller.token_id is not None
    session = await staff.session_for(call.services.store, call.caller.token_id, now=call.now)
    if session is None:  # ended between the check of the cookie and now
        raise Unauthorized("the session has ended; log in again", code="session_expired")
    return await _session_out(call, session)


async def logout(call: Call) -> Reply:
    assert call.caller.token_id is not None
    await staff.close_session(call.services.store, call.caller.token_id)
    return Reply(None, status=204, delete_cookies=[SESSION_COOKIE])


async def accept_invitation(call: Call) -> Reply:
    body: s.AcceptIn = call.body
    # Accepting may verify an existing login's password: throttled like a log-in.
    address = client_address(call.request)
    count_attempt(call.services.address_throttle, address)
    who, member = await staff.accept_invitation(
        call.services.store,
        call.services.passwords,
        token=body.token,
        password=body.password,
        now=call.now,
    )
    call.services.address_throttle.forgive(address)
    session = await staff.open_session(call.services.store, who, now=call.now)
    out = s.AcceptOut(
        staff=s.StaffOut(id=who.id, email=who.email, role=member.role.value),
        account_id=member.account_id,
        role=member.role.value,
    )
    return Reply(out, cookies=[_session_cookie(call, session)])


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/api/v1/signup",
        signup,
        "Sign up an owner and an account",
        "sessions",
        response=s.SignupOut,
        body=s.SignupIn,
        status=201,
        allow=frozenset({Kind.ANONYMOUS, Kind.STAFF}),
        errors=(409, 422, 429),
        description="Creates the owner's login, the account and its first API key (shown "
        "once), and opens a console session.",
    ),
    Endpoint(
        "POST",
        "/api/v1/session",
        login,
        "Log in (staff)",
        "sessions",
        response=s.SessionOut,
        body=s.SessionIn,
        allow=frozenset({Kind.ANONYMOUS, Kind.STAFF}),
        errors=(401, 422, 429),
    ),
    Endpoint(
        "GET",
        "/api/v1/session",
        current_session,
        "The current staff session",
        "sessions",
        response=s.SessionOut,
        allow=frozenset({Kind.STAFF}),
        errors=(401,),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/session",
        logout,
        "Log out",
        "sessions",
        status=204,
        allow=frozenset({Kind.STAFF}),
        errors=(401, 403),
    ),
    Endpoint(
        "POST",
        "/api/v1/invitations/accept",
        accept_invitation,
        "Accept a staff invitation",
        "staff",
        response=s.AcceptOut,
        body=s.AcceptIn,
        status=201,
        allow=frozenset({Kind.ANONYMOUS, Kind.STAFF}),
        errors=(401, 404, 409, 422, 429),
    ),
]
