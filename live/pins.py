"""What a room pins above its chat (DESIGN §5 ``pin`` / ``unpin``): the host's announcement,
a service link into the brand's mini-program, one of the account's coupons, or a card of one
of its published contents — one of each kind at a time: pinning another of a kind replaces
it. A pin is kept after it is taken down (who took it down, and when), so the room's pins,
and their clicks, stay on record.

A click on a pinned service or content card goes through ``/go/{click_id}`` like a content's
link (``content.clicks``): each viewer asks for a click id of its own (the channel's ``click``
op, or its HTTP twin), minted without a store write; following it records the click once per
id and counts it on the pin and on the room. The brand's service receives the id as
``la_click`` and may report the order it led to (``content.conversions``), which then carries
the room. A coupon card is claimed in the room (the channel's ``claim`` op), not clicked.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from accounts.errors import Conflict, Invalid, NotFound
from content import clicks
from content.contents import Content, get_public_content
from content.coupons import check_coupon_id, get_coupon
from content.links import ServiceLink, parse_service_link
from live.rooms import ROOMS, Room, State
from store.clock import rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index, retry_if_raced

PINS = "room_pins"
MAX_TEXT = 300  # characters of an announcement
TITLE_CHARS = 40  # a post has no title: its text's start stands in

INDEXES = [
    Index(PINS, ("room_id", "unpinned_at")),
    Index(clicks.CLICKS, ("room_id", "at")),
]


class Kind(enum.StrEnum):
    ANNOUNCEMENT = "announcement"
    SERVICE = "service"
    COUPON = "coupon"
    CONTENT = "content"


CLICKABLE = (Kind.SERVICE, Kind.CONTENT)


@dataclass(frozen=True)
class Pin:
    id: str
    room_id: str
    account_id: str
    kind: Kind
    text: str  # the announcement; for a card, its title as pinned
    by: str  # the staff member, or "key:<id>" for an API key
    at: str
    target: dict[str, Any]  # a card's: the service link, {"coupon_id"} or {"content_id", …}
    clicks: int = 0
    unpinned_at: str | None = None
    unpinned_by: str | None = None

    @classmethod
    def from_doc(cls, doc: Doc) -> Pin:
        return cls(
            id=doc["id"],
            room_id=doc["room_id"],
            account_id=doc["account_id"],
            kind=Kind(doc["kind"]),
            text=doc["text"],
            by=doc["by"],
            at=doc["at"],
            target=doc.get("target") or {},
            clicks=int(doc.get("clicks", 0)),
            unpinned_at=doc.get("unpinned_at"),
            unpinned_by=doc.get("unpinned_by"),
        )

    @property
    def link(self) -> ServiceLink | None:
        return ServiceLink.from_doc(self.target) if self.kind is Kind.SERVICE else None

    def event(self) -> dict[str, Any]:
        """What viewers see of it (a ``pin`` event, and in a snapshot's ``pins``): a card
        shows its title and picture, never where it leads (a click asks for that)."""
        shown: dict[str, Any] = {"id": self.id, "kind": self.kind.value, "text": self.text}
        if self.kind is Kind.SERVICE:
            shown["service"] = {
                "app_id": self.target["app_id"],
                "title": self.target["title"],
                "image": self.target.get("image"),
            }
        elif self.kind is Kind.COUPON:
            shown["coupon"] = {k: self.target[k] for k in COUPON_SHOWN}
        elif self.kind is Kind.CONTENT:
            shown["content"] = {k: self.target[k] for k in ("id", "kind", "title")}
        return {**shown, "at": self.at}


COUPON_SHOWN = ("id", "title", "description", "total", "stock", "per_fan_limit", "valid_until")


def clean_text(text: Any) -> str:
    if not isinstance(text, str) or not (text := text.strip()):
        raise Invalid("write the announcement as a non-empty 'text'", field="text")
    if len(text) > MAX_TEXT:
        raise Invalid(f"an announcement is at most {MAX_TEXT} characters", field="text")
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\u200d" for c in text):
        raise Invalid("an announcement holds no control characters", field="text")
    return text


async def pinned(store: DocumentStore, room_id: str) -> list[Pin]:
    """The room's pins up now, oldest first; a coupon card with its stock as it is now."""
    docs = await store.collection(PINS).find(
        {"room_id": room_id, "unpinned_at": None}, sort=(("at", 1), ("id", 1))
    )
    up = [Pin.from_doc(d) for d in docs]
    return [await _fresh(store, p) for p in up]


async def _fresh(store: DocumentStore, pin: Pin) -> Pin:
    if pin.kind is not Kind.COUPON:
        return pin
    coupon = await get_coupon(store, pin.target["id"])
    return replace(pin, target={**pin.target, "stock": coupon.stock})


async def _target(store: DocumentStore, room: Room, what: Kind, asked: dict[str, Any]) -> Doc:
    """What a card of kind ``what`` pins, checked: errors name the request's field."""
    if what is Kind.SERVICE:
        return parse_service_link(asked.get("service"), field="service").to_doc()
    if what is Kind.COUPON:
        coupon_id = await check_coupon_id(
            store, room.account_id, asked.get("coupon_id"), field="coupon_id"
        )
        coupon = await get_coupon(store, coupon_id)
        if coupon.stock < 1:
            raise Conflict("every coupon of it is claimed", code="coupon_out_of_stock")
        return {k: getattr(coupon, k) for k in COUPON_SHOWN}
    content_id = asked.get("content_id")
    if not isinstance(content_id, str):
        raise Invalid("content_id names a published content of the account", field="content_id")
    try:
        content = await get_public_content(store, content_id)
    except NotFound:
        content = None
    if content is None or content.account_id != room.account_id:
        raise Invalid(
            f"no published content {content_id!r} on this account",
            code="unknown_content",
            field="content_id",
        )
    return {"id": content.id, "kind": content.kind.value, "title": _title(content)}


def _title(content: Content) -> str:
    return content.title or content.text[:TITLE_CHARS] or content.caption[:TITLE_CHARS]


FIELDS = {
    Kind.ANNOUNCEMENT: "text",
    Kind.SERVICE: "service",
    Kind.COUPON: "coupon_id",
    Kind.CONTENT: "content_id",
}


async def pin(
    store: DocumentStore, room: Room, *, kind: Any, by: str, now: datetime, **asked: Any
) -> tuple[Pin, list[Pin]]:
    """Pin something in ``room``: ``text`` for an announcement, ``service`` (a service link)
    for a service card, ``coupon_id`` for a coupon, ``content_id`` for a content card. The
    new pin, and the pins it took down (the previous one of its kind). 409 ``room_ended``
    once the room is over."""
    try:
        what = Kind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in Kind)
        raise Invalid(f"kind is one of {allowed}", field="kind") from None
    for other, name in FIELDS.items():
        if other is not what and asked.get(name) is not None:
            raise Invalid(f"a {what.value} pin has no {name}", field=name)
    if what is Kind.ANNOUNCEMENT:
        text, target = clean_text(asked.get("text")), {}
    else:
        target = await _target(store, room, what, asked)
        text = target["title"]
    if room.state is State.ENDED:
        raise Conflict("the room has ended; nothing more is pinned", code="room_ended")
    replaced = []
    for old in await pinned(store, room.id):
        if old.kind is what and (down := await _take_down(store, {"id": old.id}, by=by, now=now)):
            replaced.append(down)
    doc: Doc = {
        "id": new_id("pin"),
        "room_id": room.id,
        "account_id": room.account_id,
        "kind": what.value,
        "text": text,
        "target": target,
        "clicks": 0,
        "by": by,
        "at": rfc3339(now),
        "unpinned_at": None,
    }
    await store.collection(PINS).insert(doc)
    return Pin.from_doc(doc), replaced


async def unpin(store: DocumentStore, room: Room, pin_id: str, *, by: str, now: datetime) -> Pin:
    """Take a pin of ``room`` down; 404 when it is not up."""
    taken = await _take_down(store, {"id": pin_id, "room_id": room.id}, by=by, now=now)
    if taken is None:
        raise NotFound("pin", pin_id)
    return taken


async def _take_down(store: DocumentStore, which: Doc, *, by: str, now: datetime) -> Pin | None:
    """Take the pin ``which`` names down, unless it is down already (then None)."""
    doc = await store.collection(PINS).update_one(
        {**which, "unpinned_at": None},
        {"$set": {"unpinned_at": rfc3339(now), "unpinned_by": by}},
    )
    return None if doc is None else Pin.from_doc(doc)


async def get_pin(store: DocumentStore, pin_id: str) -> Pin:
    doc = await store.collection(PINS).get(pin_id)
    if doc is None:
        raise NotFound("pin", pin_id)
    return Pin.from_doc(doc)


# -- clicks -----------------------------------------------------------------------------------
def _fingerprint(pin: Pin) -> bytes:
    if pin.link is not None:
        return clicks.fingerprint(pin.link)
    canonical = f"{pin.kind.value}:{pin.target.get('id', '')}".encode()
    return hashlib.sha256(canonical).digest()[: clicks.FINGERPRINT_BYTES]


def mint_click(secret: bytes, pin: Pin) -> str:
    """A fresh click id for one viewer's click on a pinned card that is up; no store write.
    409 ``pin_not_clickable`` for an announcement or a coupon (a coupon is claimed)."""
    if pin.kind not in CLICKABLE:
        raise Conflict(
            f"a {pin.kind.value} pin is not clicked through"
            + ("; claim the coupon instead" if pin.kind is Kind.COUPON else ""),
            code="pin_not_clickable",
        )
    if pin.unpinned_at is not None:
        raise NotFound("pin", pin.id)
    return clicks.mint(secret, pin.id, _fingerprint(pin))


def is_pin_click(ref: clicks.ClickRef) -> bool:
    return ref.subject_id.startswith("pin_")


async def resolve_click(store: DocumentStore, secret: bytes, click_id: str) -> Pin:
    """The pin a click id names, recording nothing. A pin taken down since still leads where
    it did: the viewer saw it up when it asked for the id."""
    ref = clicks.read_click_id(secret, click_id)
    unknown = NotFound("click", click_id[: clicks.MAX_CLICK_ID], field="click_id")
    if not is_pin_click(ref):
        raise unknown
    try:
        pin = await get_pin(store, ref.subject_id)
    except NotFound:
        raise unknown from None
    if pin.kind not in CLICKABLE or not hmac.compare_digest(_fingerprint(pin), ref.fingerprint):
        raise unknown
    return pin


@dataclass(frozen=True)
class Followed:
    pin: Pin
    click: clicks.Click
    repeat: bool  # the id had been followed before: nothing was counted this time


async def follow_click(
    store: DocumentStore, secret: bytes, click_id: str, *, now: datetime
) -> Followed:
    """Record a click on a pin once per id, counted on the pin and on its room; a second
    follow of the same id answers the first with ``repeat``."""
    return await retry_if_raced(("click_id",), lambda: _follow(store, secret, click_id, now))


async def _follow(store: DocumentStore, secret: bytes, click_id: str, now: datetime) -> Followed:
    records = store.collection(clicks.CLICKS)
    async with store.transaction():
        pin = await resolve_click(store, secret, click_id)
        seen = await records.find_one({"click_id": click_id})
        if seen is not None:
            return Followed(pin, clicks.Click.from_doc(seen), True)
        doc = {
            "id": new_id("clk"),
            "click_id": click_id,
            "content_id": None,
            "account_id": pin.account_id,
            "link_index": None,
            "room_id": pin.room_id,
            "pin_id": pin.id,
            "app_id": pin.target.get("app_id"),
            "at": rfc3339(now),
        }
        await records.insert(doc)
        counted = await store.collection(PINS).update_one({"id": pin.id}, {"$inc": {"clicks": 1}})
        await store.collection(ROOMS).update_one({"id": pin.room_id}, {"$inc": {"pin_clicks": 1}})
    assert counted is not None
    return Followed(Pin.from_doc(counted), clicks.Click.from_doc(doc), False)


async def room_pins(store: DocumentStore, room_id: str, *, limit: int = 100) -> list[Pin]:
    """Every pin the room had, newest first, with its clicks (the host's record)."""
    docs = await store.collection(PINS).find(
        {"room_id": room_id}, sort=(("at", -1), ("id", -1)), limit=limit
    )
    return [Pin.from_doc(d) for d in docs]
