"""Routes of the accounts domain (DESIGN §8): parse → call the domain → serialize."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from accounts import apikeys, fans, follows, ledger, staff, tiers
from accounts.accounts import Account, Tier, get_account, update_profile
from accounts.errors import NotFound
from accounts.minting import mint_fan_token as mint_fan_token_for
from accounts.signup import sign_up
from accounts.staff import Role
from webapp import schemas as s
from webapp.api import Call, Endpoint, Reply
from webapp.auth import SESSION_COOKIE, Kind, log_in, session_cookie_options

STAFF_OR_KEY = frozenset({Kind.STAFF, Kind.API_KEY})
FAN = frozenset({Kind.FAN})
OWNER = frozenset({Role.OWNER})
OWNER_EDITOR = frozenset({Role.OWNER, Role.EDITOR})
ANY_ROLE = frozenset(Role)


def base_url(request: Request, configured: str) -> str:
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def account_url(call: Call, account: Account) -> str:
    return f"{base_url(call.request, call.services.settings.base_url)}/@{account.handle}"


def _session_cookie(call: Call, session: staff.Session) -> tuple[str, str, dict[str, Any]]:
    options = session_cookie_options(call.services.settings.cookie_secure)
    return (SESSION_COOKIE, session.token, options)


# -- sign-up and sessions ---------------------------------------------------------------------
async def signup(call: Call) -> Reply:
    body: s.SignupIn = call.body
    services = call.services
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


async def login(call: Call) -> Reply:
    body: s.SessionIn = call.body
    store = call.services.store
    address = call.request.client.host if call.request.client else "unknown"
    who = await log_in(call.services, email=body.email, password=body.password, address=address)
    session = await staff.open_session(store, who, now=call.now)
    return Reply(await _session_out(call, session), cookies=[_session_cookie(call, session)])


async def current_session(call: Call) -> s.SessionOut:
    assert call.caller.token_id is not None
    session = await staff.session_for(call.services.store, call.caller.token_id, now=call.now)
    assert session is not None
    return await _session_out(call, session)


async def logout(call: Call) -> Reply:
    assert call.caller.token_id is not None
    await staff.close_session(call.services.store, call.caller.token_id)
    return Reply(None, status=204, delete_cookies=[SESSION_COOKIE])


# -- accounts -------------------------------------------------------------------------------
async def _account_out(call: Call, account: Account) -> s.AccountOut:
    extra: dict[str, Any] = {}
    caller = call.caller
    if caller.kind is Kind.FAN:
        extra["following"] = await follows.is_following(call.services.store, account.id, caller.id)
    elif (
        caller.kind is Kind.API_KEY
        and caller.account_id == account.id
        or (
            caller.kind is Kind.STAFF
            and await staff.role_of(call.services.store, account.id, caller.id) is not None
        )
    ):
        extra["budget"] = await ledger.balance(call.services.store, account.id, ledger.BUDGET)
    return s.AccountOut(
        id=account.id,
        handle=account.handle,
        name=account.name,
        bio=account.bio,
        avatar_url=account.avatar_url,
        url=account_url(call, account),
        follower_count=account.follower_count,
        live_room_id=account.live_room_id,
        tiers=[s.TierOut(rank=t.rank, name=t.name) for t in account.tiers],
        keywords=list(account.keywords),
        embed_origins=list(account.embed_origins),
        created_at=account.created_at,
        **extra,
    )


async def read_account(call: Call) -> s.AccountOut:
    account = await get_account(call.services.store, call.params["account_id"])
    return await _account_out(call, account)


async def patch_account(call: Call) -> s.AccountOut:
    body: s.AccountPatch = call.body
    account = await update_profile(
        call.services.store,
        call.params["account_id"],
        now=call.now,
        name=body.name,
        bio=body.bio,
        avatar_url=body.avatar_url,
        embed_origins=body.embed_origins,
        keywords=body.keywords,
    )
    return await _account_out(call, account)


# -- fan tokens -------------------------------------------------------------------------------
async def mint_fan_token(call: Call) -> s.FanTokenOut:
    body: s.FanTokenIn = call.body
    fan, token = await mint_fan_token_for(
        call.services.store,
        call.services.secret,
        account_id=call.params["account_id"],
        external_id=body.external_id,
        name=body.name,
        tier=body.tier,
        ttl_s=body.ttl_s or call.services.settings.fan_token_ttl_s,
        now=call.now,
    )
    return s.FanTokenOut(
        id=token.id, token=token.token, fan_id=fan.id, expires_at=token.expires_at, tier=body.tier
    )


async def revoke_fan_token(call: Call) -> Reply:
    await fans.revoke_token(
        call.services.store,
        account_id=call.params["account_id"],
        token_id=call.params["token_id"],
        now=call.now,
    )
    return Reply(None, status=204)


async def revoke_fan_tokens(call: Call) -> s.RevokedOut:
    store, account_id, fan_id = (
        call.services.store,
        call.params["account_id"],
        call.params["fan_id"],
    )
    await fans.get_own_fan(store, account_id, fan_id)
    count = await fans.revoke_fan_tokens(store, account_id=account_id, fan_id=fan_id, now=call.now)
    return s.RevokedOut(revoked=count)


# -- tiers and members ----------------------------------------------------------------------
async def read_tiers(call: Call) -> s.TiersOut:
    account = await get_account(call.services.store, call.params["account_id"])
    return s.TiersOut(tiers=[s.TierOut(rank=t.rank, name=t.name) for t in account.tiers])


async def put_tiers(call: Call) -> s.TiersOut:
    body: s.TiersIn = call.body
    ladder = await tiers.set_ladder(
        call.services.store,
        call.params["account_id"],
        [Tier(t.rank, t.name) for t in body.tiers],
        now=call.now,
    )
    return s.TiersOut(tiers=[s.TierOut(rank=t.rank, name=t.name) for t in ladder])


def _member_out(member: tiers.Member) -> s.MemberOut:
    return s.MemberOut(
        fan_id=member.fan_id,
        tier=member.tier,
        tier_name=member.tier_name,
        updated_at=member.updated_at,
    )


async def put_member(call: Call) -> s.MemberOut:
    body: s.MemberIn = call.body
    member = await tiers.set_member_tier(
        call.services.store,
        call.params["account_id"],
        call.params["fan_id"],
        body.tier,
        now=call.now,
    )
    return _member_out(member)


async def read_member(call: Call) -> s.MemberOut:
    member = await tiers.get_member(
        call.services.store, call.params["account_id"], call.params["fan_id"]
    )
    return _member_out(member)


# -- follows --------------------------------------------------------------------------------
async def follow(call: Call) -> s.FollowOut:
    state = await follows.follow(
        call.services.store, call.params["account_id"], call.caller.id, now=call.now
    )
    return s.FollowOut(following=state.following, follower_count=state.follower_count)


async def unfollow(call: Call) -> s.FollowOut:
    state = await follows.unfollow(call.services.store, call.params["account_id"], call.caller.id)
    return s.FollowOut(following=state.following, follower_count=state.follower_count)


async def list_followers(call: Call) -> s.FollowerPage:
    q: s.PageQuery = call.query
    page = await follows.followers(
        call.services.store, call.params["account_id"], limit=q.limit, cursor=q.cursor
    )
    return s.FollowerPage(
        items=[
            s.FollowerOut(fan_id=f.fan_id, name=f.name, followed_at=f.followed_at)
            for f in page.items
        ],
        next_cursor=page.next_cursor,
    )


async def my_follows(call: Call) -> s.FollowingPage:
    q: s.PageQuery = call.query
    items, cursor = await follows.following(
        call.services.store, call.caller.id, limit=q.limit, cursor=q.cursor
    )
    return s.FollowingPage(
        items=[s.FollowingOut(account_id=a, followed_at=at) for a, at in items], next_cursor=cursor
    )


# -- points ---------------------------------------------------------------------------------
async def credit_wallet(call: Call) -> s.BalanceOut:
    body: s.WalletCreditIn = call.body
    store, account_id, fan_id = (
        call.services.store,
        call.params["account_id"],
        call.params["fan_id"],
    )
    await fans.get_own_fan(store, account_id, fan_id)
    assert call.idempotency_key is not None
    move = await ledger.transfer(
        store,
        account_id=account_id,
        debit=ledger.ISSUED,
        credit=ledger.wallet(fan_id),
        points=body.points,
        reason=body.reason,
        reference=body.reference or call.idempotency_key,
        idempotency_key=f"wallet-credit:{call.idempotency_key}",
        now=call.now,
    )
    return s.BalanceOut(balance=move.balance, entry_id=move.entry.id)


async def read_wallet(call: Call) -> s.WalletOut:
    store, account_id, fan_id = (
        call.services.store,
        call.params["account_id"],
        call.params["fan_id"],
    )
    await get_account(store, account_id)
    await fans.get_fan(store, fan_id)
    points = await ledger.balance(store, account_id, ledger.wallet(fan_id))
    return s.WalletOut(account_id=account_id, fan_id=fan_id, balance=points)


async def credit_budget(call: Call) -> s.BudgetOut:
    body: s.BudgetCreditIn = call.body
    assert call.idempotency_key is not None
    move = await ledger.transfer(
        call.services.store,
        account_id=call.params["account_id"],
        debit=ledger.ISSUED,
        credit=ledger.BUDGET,
        points=body.points,
        reason=body.reason or "budget top-up",
        reference=body.reference or call.idempotency_key,
        idempotency_key=f"budget-credit:{call.idempotency_key}",
        now=call.now,
    )
    return s.BudgetOut(budget=move.balance, entry_id=move.entry.id)


def _entry_out(e: ledger.Entry) -> s.EntryOut:
    return s.EntryOut(
        id=e.id,
        debit=e.debit,
        credit=e.credit,
        points=e.points,
        reason=e.reason,
        reference=e.reference,
        at=e.at,
    )


async def list_ledger(call: Call) -> s.EntryPage:
    q: s.LedgerQuery = call.query
    account_id = call.params["account_id"]
    await get_account(call.services.store, account_id)
    items, cursor = await ledger.entries_page(
        call.services.store, account_id, book=q.book, limit=q.limit, cursor=q.cursor
    )
    return s.EntryPage(items=[_entry_out(e) for e in items], next_cursor=cursor)


async def my_wallets(call: Call) -> s.MyWallets:
    wallets = await ledger.fan_wallets(call.services.store, call.caller.id)
    return s.MyWallets(items=[s.MyWalletOut(account_id=a, balance=b) for a, b in wallets])


async def me(call: Call) -> s.MeOut:
    fan = await fans.get_fan(call.services.store, call.caller.id)
    assert call.caller.account_id is not None and call.caller.token_id is not None
    return s.MeOut(
        fan_id=fan.id,
        name=fan.name,
        issuer_account_id=call.caller.account_id,
        token_id=call.caller.token_id,
    )


# -- api keys and staff ---------------------------------------------------------------------
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


async def accept_invitation(call: Call) -> Reply:
    body: s.AcceptIn = call.body
    who, member = await staff.accept_invitation(
        call.services.store,
        call.services.passwords,
        token=body.token,
        password=body.password,
        now=call.now,
    )
    session = await staff.open_session(call.services.store, who, now=call.now)
    out = s.AcceptOut(
        staff=s.StaffOut(id=who.id, email=who.email, role=member.role.value),
        account_id=member.account_id,
        role=member.role.value,
    )
    return Reply(out, cookies=[_session_cookie(call, session)])


async def list_staff(call: Call) -> s.StaffList:
    people = await staff.account_staff(call.services.store, call.params["account_id"])
    return s.StaffList(items=[s.StaffOut(id=p.id, email=p.email, role=r.value) for p, r in people])


A = "/api/v1/accounts/{account_id}"
E400, E401, E403, E404, E409, E422 = 400, 401, 403, 404, 409, 422

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
        errors=(E409, E422),
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
        errors=(E401, E422, 429),
    ),
    Endpoint(
        "GET",
        "/api/v1/session",
        current_session,
        "The current staff session",
        "sessions",
        response=s.SessionOut,
        allow=frozenset({Kind.STAFF}),
        errors=(E401,),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/session",
        logout,
        "Log out",
        "sessions",
        status=204,
        allow=frozenset({Kind.STAFF}),
        errors=(E401, E403),
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
        errors=(E401, E404, E409, E422),
    ),
    Endpoint(
        "GET",
        A,
        read_account,
        "An account's public profile",
        "accounts",
        response=s.AccountOut,
        errors=(E404,),
        description="With a fan token also `following`; staff and the account's API keys "
        "also see `budget`.",
    ),
    Endpoint(
        "PATCH",
        A,
        patch_account,
        "Edit the profile, embed origins and keywords",
        "accounts",
        response=s.AccountOut,
        body=s.AccountPatch,
        allow=STAFF_OR_KEY,
        roles=OWNER_EDITOR,
        errors=(E403, E404, E422),
    ),
    Endpoint(
        "POST",
        f"{A}/fan-tokens",
        mint_fan_token,
        "Mint a fan token",
        "fans",
        response=s.FanTokenOut,
        body=s.FanTokenIn,
        status=201,
        allow=frozenset({Kind.API_KEY}),
        errors=(E403, E404, E422),
        description="The same external_id always maps to the same fan_id. Tokens live "
        "for ttl_s seconds (default 3600) and can be revoked.",
    ),
    Endpoint(
        "DELETE",
        f"{A}/fan-tokens/{{token_id}}",
        revoke_fan_token,
        "Revoke a fan token",
        "fans",
        status=204,
        allow=frozenset({Kind.API_KEY}),
        errors=(E403, E404),
    ),
    Endpoint(
        "POST",
        f"{A}/fans/{{fan_id}}/revoke-tokens",
        revoke_fan_tokens,
        "Revoke every live token of one fan",
        "fans",
        response=s.RevokedOut,
        allow=frozenset({Kind.API_KEY}),
        errors=(E403, E404),
    ),
    Endpoint(
        "GET",
        f"{A}/tiers",
        read_tiers,
        "The tier ladder",
        "tiers",
        response=s.TiersOut,
        errors=(E404,),
    ),
    Endpoint(
        "PUT",
        f"{A}/tiers",
        put_tiers,
        "Replace the tier ladder",
        "tiers",
        response=s.TiersOut,
        body=s.TiersIn,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404, E409, E422),
    ),
    Endpoint(
        "GET",
        f"{A}/members/{{fan_id}}",
        read_member,
        "A fan's tier in this account",
        "tiers",
        response=s.MemberOut,
        allow=STAFF_OR_KEY,
        roles=ANY_ROLE,
        errors=(E403, E404),
    ),
    Endpoint(
        "PUT",
        f"{A}/members/{{fan_id}}",
        put_member,
        "Set a fan's tier",
        "tiers",
        response=s.MemberOut,
        body=s.MemberIn,
        allow=frozenset({Kind.API_KEY}),
        errors=(E403, E404, E422),
    ),
    Endpoint(
        "POST",
        f"{A}/follow",
        follow,
        "Follow (fan)",
        "follows",
        response=s.FollowOut,
        allow=FAN,
        errors=(E401, E403, E404),
        description="Idempotent.",
    ),
    Endpoint(
        "DELETE",
        f"{A}/follow",
        unfollow,
        "Unfollow (fan)",
        "follows",
        response=s.FollowOut,
        allow=FAN,
        errors=(E401, E403, E404),
        description="Idempotent.",
    ),
    Endpoint(
        "GET",
        f"{A}/followers",
        list_followers,
        "Followers, newest first",
        "follows",
        response=s.FollowerPage,
        query=s.PageQuery,
        allow=STAFF_OR_KEY,
        roles=ANY_ROLE,
        errors=(E400, E403, E404, E422),
    ),
    Endpoint(
        "POST",
        f"{A}/wallets/{{fan_id}}/credits",
        credit_wallet,
        "Grant points to a fan's wallet",
        "points",
        response=s.BalanceOut,
        body=s.WalletCreditIn,
        status=201,
        allow=frozenset({Kind.API_KEY}),
        idempotency="required",
        errors=(E403, E404, E409, E422, 428),
    ),
    Endpoint(
        "GET",
        f"{A}/wallets/{{fan_id}}",
        read_wallet,
        "A fan's balance",
        "points",
        response=s.WalletOut,
        allow=STAFF_OR_KEY,
        roles=ANY_ROLE,
        errors=(E403, E404),
    ),
    Endpoint(
        "POST",
        f"{A}/budget/credits",
        credit_budget,
        "Add points to the account budget",
        "points",
        response=s.BudgetOut,
        body=s.BudgetCreditIn,
        status=201,
        allow=frozenset({Kind.API_KEY}),
        idempotency="required",
        errors=(E403, E404, E409, E422, 428),
    ),
    Endpoint(
        "GET",
        f"{A}/ledger",
        list_ledger,
        "Ledger entries, newest first",
        "points",
        response=s.EntryPage,
        query=s.LedgerQuery,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E400, E403, E404, E422),
    ),
    Endpoint(
        "GET",
        "/api/v1/me",
        me,
        "Who this fan token speaks for",
        "me",
        response=s.MeOut,
        allow=FAN,
        errors=(E401, E403),
    ),
    Endpoint(
        "GET",
        "/api/v1/me/wallets",
        my_wallets,
        "The fan's wallets",
        "me",
        response=s.MyWallets,
        allow=FAN,
        errors=(E401, E403),
    ),
    Endpoint(
        "GET",
        "/api/v1/me/follows",
        my_follows,
        "Accounts the fan follows",
        "me",
        response=s.FollowingPage,
        query=s.PageQuery,
        allow=FAN,
        errors=(E400, E401, E403),
    ),
    Endpoint(
        "POST",
        f"{A}/api-keys",
        create_api_key,
        "Create an API key",
        "api keys",
        response=s.ApiKeyOut,
        body=s.ApiKeyIn,
        status=201,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404, E422),
    ),
    Endpoint(
        "GET",
        f"{A}/api-keys",
        list_api_keys,
        "API keys (never their secrets)",
        "api keys",
        response=s.ApiKeyList,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404),
    ),
    Endpoint(
        "DELETE",
        f"{A}/api-keys/{{key_id}}",
        revoke_api_key,
        "Revoke an API key",
        "api keys",
        response=s.ApiKeyOut,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404),
    ),
    Endpoint(
        "GET",
        f"{A}/staff",
        list_staff,
        "Staff and their roles",
        "staff",
        response=s.StaffList,
        allow=STAFF_OR_KEY,
        roles=ANY_ROLE,
        errors=(E403, E404),
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
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404, E422),
    ),
    Endpoint(
        "GET",
        f"{A}/invitations",
        list_invitations,
        "Invitations",
        "staff",
        response=s.InvitationList,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404),
    ),
    Endpoint(
        "DELETE",
        f"{A}/invitations/{{invitation_id}}",
        revoke_invitation,
        "Withdraw an invitation",
        "staff",
        status=204,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(E403, E404),
    ),
]
