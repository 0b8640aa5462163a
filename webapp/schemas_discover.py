"""Request and response bodies of views, plays, the discover feed and the search box."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from webapp.schemas import In, Out, PageQuery, QueryIn
from webapp.schemas_commerce import CouponOut
from webapp.schemas_content import ContentOut

Viewer = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="an anonymous client's own random id (kept e.g. in localStorage); "
        "ignored with a credential",
        examples=["v-4f1c2a"],
    ),
]
Counters = Annotated[
    dict[str, int | float],
    Field(description="likes, comments, views, plays, play_completions and completion_rate"),
]


class ViewIn(In):
    viewer: Viewer | None = None


class ViewOut(Out):
    counted: bool = Field(description="false when this viewer's view was counted already")
    counters: Counters


class PlayIn(In):
    viewer: Viewer | None = None


class PlayProgressIn(In):
    watched_s: Annotated[
        float,
        Field(
            ge=0,
            le=86400,
            allow_inf_nan=False,
            description="seconds of the video played in this play",
            examples=[11.5],
        ),
    ]
    completed: bool = Field(False, description="the player reached the end (its ended event)")


class PlayOut(Out):
    play_id: str
    counted: bool = Field(
        description="start: the play counted; a report: this report counted the completion"
    )
    completed: bool
    watched_s: float
    counters: Counters


class DiscoverQuery(PageQuery):
    pass


class SearchBoxQuery(QueryIn):
    q: Annotated[str, Field(min_length=1, max_length=64, description="the keyword typed")]


class BoxAccountOut(Out):
    id: str
    handle: str
    name: str
    bio: str
    avatar_url: str | None
    follower_count: int


class BoxLiveOut(Out):
    room_id: str


class BoxOut(Out):
    account: BoxAccountOut
    services: list[dict[str, Any]] = Field(
        description="service links {app_id, page, query, title, image, click_url}"
    )
    coupons: list[CouponOut] = Field(description="claimable now, with stock left")
    contents: list[ContentOut]
    live: BoxLiveOut | None


class SearchBoxOut(Out):
    box: BoxOut | None
