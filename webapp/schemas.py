"""Request and response bodies of the accounts API (DESIGN §8), as strict pydantic models.

Requests forbid unknown fields and do not coerce types (``"5"`` is not 5, ``5.0`` is not 5);
their limits are the documented ones, so the OpenAPI document and the checks cannot drift.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from accounts.ledger import MAX_POINTS

Points = Annotated[int, Field(ge=1, le=MAX_POINTS, description="whole points, 1 to 10^9")]
Rank = Annotated[int, Field(ge=0, le=1000, description="a tier rank; 0 is every fan's default")]
# The shape accounts.staff.normalize_email accepts, documented so clients can check it first.
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$",
        examples=["owner@brand.example"],
    ),
]
Password = Annotated[str, Field(min_length=8, max_length=256, examples=["correct horse battery"])]
Handle = Annotated[
    str,
    Field(
        min_length=3, max_length=30, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", examples=["tea-house"]
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=60, examples=["Tea House 茶馆"])]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryIn(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PageQuery(QueryIn):
    limit: int = Field(20, ge=1, le=100, description="items per page, 1-100")
    cursor: str | None = Field(None, max_length=2000, description="next_cursor of the last page")


class LedgerQuery(PageQuery):
    book: str | None = Field(
        None, max_length=100, description="only entries touching this book, e.g. budget"
    )


# -- sign-up and sessions ---------------------------------------------------------------------
class NewAccount(In):
    name: Name
    handle: Handle


class SignupIn(In):
    email: Email
    password: Password
    account: NewAccount


class AccountRef(Out):
    id: str
    handle: str
    name: str


class StaffOut(Out):
    id: str
    email: str
    role: str | None = None


class SignupOut(Out):
    account: AccountRef
    staff: StaffOut
    api_key: str = Field(description="shown once; store it in your backend")
    csrf_token: str = Field(description="the session is open: send this as X-CSRF-Token")


class SessionIn(In):
    email: Email
    password: Annotated[
        str, Field(min_length=1, max_length=256, examples=["correct horse battery"])
    ]


class MembershipOut(Out):
    account_id: str
    handle: str
    name: str
    role: str


class SessionOut(Out):
    staff: StaffOut
    csrf_token: str
    expires_at: str | None = None
    accounts: list[MembershipOut] = []


# -- accounts -------------------------------------------------------------------------------
class TierOut(Out):
    rank: int
    name: str


class AccountOut(Out):
    id: str
    handle: str
    name: str
    bio: str
    avatar_url: str | None
    url: str
    follower_count: int
    live_room_id: str | None
    tiers: list[TierOut]
    keywords: list[str]
    embed_origins: list[str]
    chat_words: Literal["mask", "block"] = Field(
        description="chat in its rooms that holds a sensitive word: starred, or refused"
    )
    created_at: str
    following: bool | None = Field(None, description="only with a fan token")
    budget: int | None = Field(None, description="only for staff and API keys")


class AccountPatch(In):
    name: Name | None = None
    bio: Annotated[str, Field(max_length=500)] | None = None
    avatar_url: Annotated[str, Field(max_length=500)] | None = None
    embed_origins: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20)]
        | None
    ) = None
    keywords: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=20)]], Field(max_length=20)]
        | None
    ) = None
    chat_words: Literal["mask", "block"] | None = None


# -- fan tokens -------------------------------------------------------------------------------
class FanTokenIn(In):
    external_id: Annotated[str, Field(min_length=1, max_length=128, examples=["user-42"])]
    name: Name
    tier: Rank | None = None
    ttl_s: Annotated[int, Field(ge=60, le=86400)] | None = Field(
        None, description="lifetime in seconds; default 3600"
    )


class FanTokenOut(Out):
    id: str = Field(description="the token's id, to revoke it")
    token: str
    fan_id: str
    expires_at: str
    tier: int | None = None


class RevokedOut(Out):
    revoked: int


# -- tiers and members ----------------------------------------------------------------------
class TierIn(In):
    rank: Rank
    name: Annotated[str, Field(min_length=1, max_length=20)]


class TiersIn(In):
    tiers: Annotated[list[TierIn], Field(min_length=1, max_length=20)]


class TiersOut(Out):
    tiers: list[TierOut]


class MemberIn(In):
    tier: Rank


class MemberOut(Out):
    fan_id: str
    tier: int
    tier_name: str
    updated_at: str | None


# -- follows --------------------------------------------------------------------------------
class FollowOut(Out):
    following: bool
    follower_count: int


class FollowerOut(Out):
    fan_id: str
    name: str
    followed_at: str


class FollowerPage(Out):
    items: list[FollowerOut]
    next_cursor: str | None


class FollowingOut(Out):
    account_id: str
    followed_at: str


class FollowingPage(Out):
    items: list[FollowingOut]
    next_cursor: str | None


# -- points ---------------------------------------------------------------------------------
class WalletCreditIn(In):
    points: Points
    reason: Annotated[str, Field(min_length=1, max_length=200, examples=["order 1001 reward"])]
    reference: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class BudgetCreditIn(In):
    points: Points
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    reference: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class BalanceOut(Out):
    balance: int
    entry_id: str


class BudgetOut(Out):
    budget: int
    entry_id: str


class EntryOut(Out):
    id: str
    debit: str
    credit: str
    points: int
    reason: str
    reference: str
    at: str


class EntryPage(Out):
    items: list[EntryOut]
    next_cursor: str | None


class WalletOut(Out):
    account_id: str
    fan_id: str
    balance: int


class MyWalletOut(Out):
    account_id: str
    balance: int


class MyWallets(Out):
    items: list[MyWalletOut]


class MeOut(Out):
    fan_id: str
    name: str
    issuer_account_id: str
    token_id: str


# -- api keys and staff ---------------------------------------------------------------------
class ApiKeyIn(In):
    name: Annotated[str, Field(min_length=1, max_length=60, examples=["order service"])]


class ApiKeyOut(Out):
    id: str
    name: str
    hint: str
    created_at: str
    revoked_at: str | None
    key: str | None = Field(None, description="only in the answer that creates it")


class ApiKeyList(Out):
    items: list[ApiKeyOut]


class InvitationIn(In):
    email: Email
    role: Literal["owner", "editor", "host", "moderator"]


class InvitationOut(Out):
    id: str
    email: str
    role: str
    created_at: str
    expires_at: str
    accepted_at: str | None
    token: str | None = Field(None, description="only in the answer that creates it")
    accept_url: str | None = None


class InvitationList(Out):
    items: list[InvitationOut]


class AcceptIn(In):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password


class AcceptOut(Out):
    staff: StaffOut
    account_id: str
    role: str


class StaffList(Out):
    items: list[StaffOut]


class HealthOut(Out):
    status: Literal["ok", "degraded"]
    store: str
    broker: str
    media: str
