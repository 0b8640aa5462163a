"""A room's public page, ``/r/{id}``: what it says to people (the state line) and to machines
(OpenGraph, https://ogp.me), built from plain data by pure functions; ``room.html`` renders
them. The page counts down to a scheduled room (``static/countdown.js``), holds the player of
a live one, and links an ended one to its replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.accounts import Account
from live.rooms import Room, State

SITE_NAME = "lifeaccount"


@dataclass(frozen=True)
class RoomMeta:
    url: str
    title: str
    description: str
    og: list[tuple[str, str]]  # (property, content) in the order the tags appear
    json_ld: dict[str, Any]  # a schema.org BroadcastEvent


def state_line(room: Room) -> str:
    """One line that says where the room stands, for people and link previews."""
    if room.state is State.LIVE:
        return "Live now"
    if room.state is State.SCHEDULED and room.scheduled_at:
        return f"Live at {room.scheduled_at[:16].replace('T', ' ')} UTC"
    if room.state is State.SCHEDULED:
        return "Coming up soon"
    return "This live has ended"


def room_meta(room: Room, account: Account, base: str, cover_url: str | None) -> RoomMeta:
    """The OpenGraph tags of the room's page at ``base``/r/{id}."""
    url = f"{base}/r/{room.id}"
    description = f"{account.name} · {state_line(room)}"
    og = [
        ("og:type", "video.other"),
        ("og:site_name", SITE_NAME),
        ("og:url", url),
        ("og:title", room.title),
        ("og:description", description),
    ]
    if cover_url:
        og.append(("og:image", cover_url))
    json_ld: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "BroadcastEvent",
        "name": room.title,
        "url": url,
        "description": description,
        "isLiveBroadcast": True,
        "publisher": {
            "@type": "Organization",
            "name": account.name,
            "url": f"{base}/@{account.handle}",
        },
    }
    start = room.started_at or room.scheduled_at
    if start:
        json_ld["startDate"] = start
    if room.ended_at:
        json_ld["endDate"] = room.ended_at
    if cover_url:
        json_ld["image"] = cover_url
    return RoomMeta(url, room.title, description, og, json_ld)
