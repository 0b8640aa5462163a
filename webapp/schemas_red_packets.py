"""Shapes of the red packet routes (DESIGN §6, §8)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from live.red_packets import MAX_COUNT, MAX_TOTAL
from webapp.schemas import In, Out


class DropIn(In):
    total: int = Field(ge=1, le=MAX_TOTAL, description="points, from the account's budget")
    count: int = Field(ge=1, le=MAX_COUNT, description="shares; every share ≥ 1 point")
    mode: Literal["random", "equal"]
    min_tier: int = Field(0, ge=0, le=100)
    opens_in_s: int = Field(0, ge=0, le=3600, description="the countdown before grabs open")
    expires_in_s: int = Field(300, ge=10, le=86_400, description="open this long, then refund")


class RevealOut(Out):
    seed: str = Field(description="the secret seed, hex")
    shares: list[int] = Field(description="the split, in grab order")


class GrabLineOut(Out):
    n: int = Field(description="the share index the grab took")
    fan_id: str
    amount: int
    at: str


class RedPacketOut(Out):
    id: str
    room_id: str
    state: Literal["pending", "open", "finished"]
    total: int
    count: int
    mode: str
    generator: str = Field(description="how the split is made: docs/red-packets.md")
    min_tier: int
    commitment: str = Field(description="sha256 of seed and shares, published at the drop")
    opens_at: str
    expires_at: str
    grabbed_count: int
    grabbed_total: int
    refunded: int | None = Field(description="points returned to the budget at the finish")
    reveal: RevealOut | None
    mine: int | None = Field(None, description="with a fan token: the fan's share, if any")
    grabs: list[GrabLineOut] | None = Field(None, description="once finished: every grab")


class GrabOut(Out):
    amount: int
    repeat: bool
