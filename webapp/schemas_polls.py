"""Shapes of the poll routes (issue 8; DESIGN §7's `<la-poll>`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from live.polls import LONGEST_S, MAX_OPTION, MAX_QUESTION, MOST_OPTIONS, SHORTEST_S
from webapp.schemas import In, Out

# A line: not only spaces, no control characters.
LINE = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"


class PollIn(In):
    question: str = Field(min_length=1, max_length=MAX_QUESTION, pattern=LINE)
    options: list[Annotated[str, Field(min_length=1, max_length=MAX_OPTION, pattern=LINE)]] = Field(
        min_length=2,
        max_length=MOST_OPTIONS,
        json_schema_extra={"uniqueItems": True},
        description=f"2–6 different answers, each ≤ {MAX_OPTION} characters",
    )
    closes_in_s: int = Field(ge=SHORTEST_S, le=LONGEST_S, description="open for this long")
    min_tier: int = Field(0, ge=0, le=100, description="the lowest member tier that may vote")
    room_id: str | None = Field(
        None, description="one of the account's rooms: the poll rides its channel"
    )


class PollOut(Out):
    id: str
    account_id: str
    room_id: str | None
    question: str
    options: list[str]
    counts: list[int] = Field(description="votes for each option, in order")
    total: int
    min_tier: int
    closes_at: str
    state: str = Field(description="open | closed")
    mine: int | None = Field(None, description="with a fan token: the option the fan chose")


class PollsOut(Out):
    items: list[PollOut]


class VoteIn(In):
    option: int = Field(ge=0, le=MOST_OPTIONS - 1, description="the index of the answer")


class VoteOut(PollOut):
    option: int = Field(description="the fan's answer")
    repeat: bool = Field(description="the fan had voted this before: nothing was counted")
