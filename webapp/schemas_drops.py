"""Shapes of the collectible drop routes (DESIGN §6, §8)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from live.drops import MAX_EDITIONS, MAX_NAME
from webapp.schemas import In, Out


class DropIn(In):
    name: str = Field(max_length=MAX_NAME)
    editions: int = Field(ge=1, le=MAX_EDITIONS)
    image: str | None = Field(None, description="an http(s) image URL")
    min_tier: int = Field(0, ge=0, le=100)


class ClaimOut(Out):
    edition: int = Field(description="1..of")
    of: int
    certificate: str = Field(description="<payload>.<signature>, Ed25519, base64url")
    repeat: bool


class DropOut(Out):
    id: str
    room_id: str
    name: str
    image: str | None
    editions: int
    min_tier: int
    claimed: int
    mine: ClaimOut | None = None


class CollectibleOut(Out):
    drop_id: str
    name: str
    image: str | None
    edition: int
    of: int
    certificate: str
    at: str


class CollectionOut(Out):
    items: list[CollectibleOut]


class PublicKeyOut(Out):
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str = Field(description="raw 32 bytes, base64url")
