"""Shapes of the props routes (DESIGN §8)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from live.props import MAX_COUNT, MAX_NAME, MAX_PRICE, MAX_PROPS
from webapp.schemas import In, Out, QueryIn


class PropIn(In):
    id: str | None = Field(None, description="keep this prop (its id); leave out for a new one")
    name: str = Field(max_length=MAX_NAME)
    icon: str | None = Field(None, description="an http(s) image URL")
    price: int = Field(ge=1, le=MAX_PRICE, description="points per prop")
    min_tier: int = Field(0, ge=0, le=100)
    effect: str = Field("heart", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    enabled: bool = True


class CatalogIn(In):
    props: list[PropIn] = Field(max_length=MAX_PROPS)


class PropOut(Out):
    id: str
    name: str
    icon: str | None
    price: int
    min_tier: int
    effect: str
    enabled: bool
    locked: bool | None = Field(
        None, description="with a fan token: whether the fan's tier is below min_tier now"
    )


class CatalogOut(Out):
    props: list[PropOut]


class SendIn(In):
    count: int = Field(1, ge=1, le=MAX_COUNT)


class SentOut(Out):
    balance: int = Field(description="the fan's wallet after the send")
    points: int = Field(description="what the send cost")
    repeat: bool = Field(description="this key had sent it already: nothing was taken again")


class SupporterOut(Out):
    fan_id: str
    name: str
    points: int


class SupportersOut(Out):
    items: list[SupporterOut]
    points: int = Field(description="points sent in props in the room")
    fans: int = Field(description="fans who sent any")


class BoardQuery(QueryIn):
    model_config = ConfigDict(extra="forbid")  # a misspelt parameter is said, not ignored

    limit: int = Field(10, ge=1, le=100)
