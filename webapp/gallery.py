"""The widget gallery, ``/developers/widgets``: every widget live against this deployment's
demo brand (``lifeaccount demo``), with its copy-paste snippets (the script and the embed
page), its attribute, the events it sends, its parts, and the theme's custom properties."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from webapp import demo
from webapp.api import base_url
from webapp.embed_pages import WIDGETS
from webapp.pages import render


@dataclass(frozen=True)
class Entry:
    widget: str  # the embed page's name
    says: str
    events: tuple[str, ...]
    parts: tuple[str, ...]
    field: str  # which demo id it shows: a field of demo.Demo, or the search keyword


ENTRIES = [
    Entry(
        "follow",
        "The account, its followers and a follow button.",
        ("followed", "unfollowed"),
        ("box", "avatar", "title", "count", "button", "note"),
        "account_id",
    ),
    Entry(
        "like", "A like button with the count.", ("liked",), ("box", "button", "note"), "content_id"
    ),
    Entry(
        "comments",
        "The newest comments, staff replies marked, and a box to write one.",
        ("commented",),
        ("box", "list", "comment", "staff", "input", "button", "note"),
        "content_id",
    ),
    Entry(
        "poll",
        "A question, one button per answer, then the results; live in a room.",
        ("voted",),
        ("box", "title", "option", "result", "bar", "count", "note"),
        "poll_id",
    ),
    Entry(
        "content-card",
        "A published content as a card, with its service links.",
        ("navigate",),
        ("box", "picture", "title", "count", "services", "service"),
        "content_id",
    ),
    Entry(
        "live",
        "The live badge (coming up, live with its viewers, ended) and a link to watch.",
        (),
        ("box", "picture", "badge", "count", "title"),
        "room_id",
    ),
    Entry(
        "red-packet",
        "The room's red packet: countdown, grab button, the fan's share.",
        ("grabbed",),
        ("box", "title", "count", "button", "note"),
        "room_id",
    ),
    Entry(
        "coupon",
        "A coupon, what is left, and a claim button.",
        ("claimed",),
        ("box", "title", "count", "button", "note"),
        "coupon_id",
    ),
    Entry(
        "search-box",
        "The brand card a search for a keyword shows.",
        (),
        ("box", "title", "services", "coupons", "contents"),
        "keyword",
    ),
]

THEME = [
    ("--la-accent", "#c2410c", "buttons, bars, links"),
    ("--la-accent-ink", "#fff", "text on the accent"),
    ("--la-ink", "#1d1d1f", "text"),
    ("--la-muted", "#6e6e73", "secondary text"),
    ("--la-bg", "#fff", "the card's background"),
    ("--la-line", "#e3e3e8", "borders"),
    ("--la-radius", "10px", "corners"),
    ("--la-font", "14px/1.4 system-ui", "the font"),
    ("--la-focus", "#1a73e8", "the keyboard focus ring"),
    ("--la-bad", "#b3261e", "errors"),
]
KEYWORD = "demo tea"


async def gallery(request: Request) -> Response:
    services = request.app.state.services
    base = base_url(request, services.settings.base_url)
    seeded = await demo.demo_of(services)
    shown = []
    for entry in ENTRIES:
        kind = WIDGETS[entry.widget]
        subject = None
        if entry.field == "keyword":
            subject = KEYWORD
        elif seeded is not None:
            subject = getattr(seeded, entry.field)
        shown.append((entry, kind, subject))
    build = request.app.state.sdk.current()
    return render(
        request,
        "widgets.html",
        base=base,
        build=build,
        entries=shown,
        theme=THEME,
        seeded=seeded is not None,
        handle=demo.HANDLE,
    )


def routes() -> list[Route]:
    return [Route("/developers/widgets", gallery, methods=["GET"])]
