"""Request and response bodies of coupons, conversions and stats (DESIGN §8). The domain
checks the rules a schema cannot state (a window that ends after it starts, a click of the
caller's own account) and names the field at fault; these models pin the shape."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from content.conversions import MAX_AMOUNT, MAX_ORDER_ID
from content.coupons import MAX_DESCRIPTION, MAX_PER_FAN, MAX_STOCK, MAX_TITLE
from webapp.schemas import In, Out, PageQuery

Time = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="RFC 3339 with its offset",
        json_schema_extra={"format": "date-time"},
    ),
]


class CouponIn(In):
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE, examples=["满100减20"])]
    stock: Annotated[int, Field(ge=1, le=MAX_STOCK, examples=[1000])]
    per_fan_limit: Annotated[
        int, Field(ge=1, le=MAX_PER_FAN, description="claims per fan", examples=[1])
    ]
    valid_from: Annotated[Time, Field(examples=["2026-01-01T00:00:00Z"])]
    valid_until: Annotated[
        Time, Field(description="exclusive; after valid_from", examples=["2099-01-01T00:00:00Z"])
    ]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] | None = None


class CouponOut(Out):
    id: str
    account_id: str
    title: str
    description: str
    total: int = Field(description="the stock it was created with")
    stock: int = Field(description="what is left to claim")
    claimed_count: int = Field(description="claims of every fan")
    per_fan_limit: int
    valid_from: str
    valid_until: str
    created_at: str
    claimed: int | None = Field(None, description="only with a fan token: this fan's claims")


class CouponPageOut(Out):
    items: list[CouponOut]
    next_cursor: str | None


class ClaimOut(Out):
    id: str
    coupon_id: str
    account_id: str
    number: int = Field(description="this fan's n-th claim of the coupon, 1..per_fan_limit")
    at: str


class ClaimResultOut(ClaimOut):
    repeat: bool = Field(description="a retry of an Idempotency-Key: the first claim")
    stock: int = Field(description="what is left to claim")


class ClaimPageOut(Out):
    items: list[ClaimOut]
    next_cursor: str | None


class MyCouponsQuery(PageQuery):
    account_id: str | None = Field(None, max_length=64, description="only this account's")


class ConversionIn(In):
    click_id: Annotated[
        str,
        Field(min_length=1, max_length=200, description="the la_click your service received"),
    ]
    order_id: Annotated[
        str, Field(min_length=1, max_length=MAX_ORDER_ID, examples=["order-20261126-0001"])
    ]
    amount: Annotated[
        int, Field(ge=0, le=MAX_AMOUNT, description="minor units (fen)", examples=[12900])
    ]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])] | None = Field(
        None, description="ISO 4217; default CNY"
    )


class ConversionOut(Out):
    id: str
    click_id: str
    content_id: str | None = Field(description="the content whose link was clicked")
    room_id: str | None = Field(None, description="the room whose pinned card was clicked")
    order_id: str
    amount: int
    currency: str
    at: str
    repeat: bool = Field(description="the order was reported before: the first report")


class ContentStatsOut(Out):
    content_id: str
    kind: str
    status: str
    title: str
    published_at: str | None
    views: int
    plays: int
    play_completions: int
    completion_rate: float = Field(description="play_completions / plays, 0..1")
    likes: int
    comments: int
    clicks: int
    conversions: int
    amount: int = Field(description="minor units, every currency added")
    amounts: dict[str, int] = Field(description="minor units per currency")


class StatsOut(Out):
    account_id: str
    followers: int
    contents: list[ContentStatsOut] = Field(description="newest first, a page at a time")
    next_cursor: str | None
