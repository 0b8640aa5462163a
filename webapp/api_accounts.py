"""Routes of accounts, fan tokens, tiers, members and follows (DESIGN §8): parse → call
the domain → serialize."""

from __future__ import annotations

from typing import Any

from accounts import fans, follows, ledger, staff, tiers
from accounts.accounts import Account, Tier, get_account, update_profile
from accounts.minting import mint_fan_token as mint_fan_token_for
from webapp import schemas as s
from webapp.api import (
    ACCOUNT_PATH as A,
)
from webapp.api import (
    ANY_ROLE,
    FAN,
    OWNER,
    OWNER_EDITOR,
    STAFF_OR_KEY,
    Call,
    Endpoint,
    Reply,
    base_url,
)
from webapp.auth import Kind


def account_url(call: Call, account: Account) -> str:
    return f"{base_url(call.request, call.services.settings.base_url)}/@{account.handle}"


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
        chat_words="block" if account.chat_words == "block" else "mask",
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
        chat_words=body.chat_words,
    )
    return await _account_out(call, account)


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


async def me(call: Call) -> s.MeOut:
    fan = await fans.get_fan(call.services.store, call.caller.id)
    assert call.caller.account_id is not None and call.caller.token_id is not None
    return s.MeOut(
        fan_id=fan.id,
        name=fan.name,
        issuer_account_id=call.caller.account_id,
        token_id=call.caller.token_id,
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        A,
        read_account,
        "An account's public profile",
        "accounts",
        response=s.AccountOut,
        errors=(404,),
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
        errors=(403, 404, 422),
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
        errors=(403, 404, 422),
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
        errors=(403, 404),
    ),
    Endpoint(
        "POST",
        f"{A}/fans/{{fan_id}}/revoke-tokens",
        revoke_fan_tokens,
        "Revoke every live token of one fan",
        "fans",
        response=s.RevokedOut,
        allow=frozenset({Kind.API_KEY}),
        errors=(403, 404),
    ),
    Endpoint(
        "GET",
        f"{A}/tiers",
        read_tiers,
        "The tier ladder",
        "tiers",
        response=s.TiersOut,
        errors=(404,),
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
        errors=(403, 404, 409, 422),
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
        errors=(403, 404, 422),
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
        errors=(403, 404),
    ),
    Endpoint(
        "POST",
        f"{A}/follow",
        follow,
        "Follow (fan)",
        "follows",
        response=s.FollowOut,
        allow=FAN,
        errors=(401, 403, 404),
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
        errors=(401, 403, 404),
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
        errors=(403, 404, 422),
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
        errors=(401, 403),
    ),
    Endpoint(
        "GET",
        "/api/v1/me",
        me,
        "Who this fan token speaks for",
        "me",
        response=s.MeOut,
        allow=FAN,
        errors=(401, 403),
    ),
]
