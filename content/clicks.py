"""Clicks on a content's service links (DESIGN §4: ``GET /go/{click_id}``).

A click id is minted without a store write whenever a page or an API answer shows a published
content's service link: ``ck_`` and, in base64url, the link's fingerprint (4 bytes of a hash
of where it leads: app id, page, query and web url, not its title), a random nonce (8 bytes)
and the content id, then the first 16 bytes of their HMAC-SHA256 under the deployment's secret
(RFC 2104 §5 allows truncating to half the hash). The fingerprint, not a position, names the
link: an edit that reorders the links still credits the one that was shown, and an edit that
changes where a link leads makes its old ids unknown rather than credit another service.

Nothing about a click is stored until it is followed; following it records the click once
per id (a unique index), so a reload, a back button or a link checker's second request counts
once. A forged, altered or
re-spelled id is unknown, never a click.

The brand's service receives the id as ``la_click`` (in its H5 URL's query, or in the
mini-program page's query) and quotes it when it reports the order (``content.conversions``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from accounts.errors import NotFound
from content.blocks import ServiceCard
from content.contents import CONTENTS, Content, get_content
from content.links import ServiceLink
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index, retry_if_raced

CLICKS = "clicks"
INDEXES = [
    Index(CLICKS, ("click_id",), unique=True),
    Index(CLICKS, ("content_id", "at")),
]
PREFIX = "ck_"
PARAM = "la_click"  # the query parameter that carries a click id to the brand's service
FINGERPRINT_BYTES = 4
NONCE_BYTES = 8
MAC_BYTES = 16
MAX_CLICK_ID = 200
# The deployment's secret also signs fan tokens: the purpose prefix keeps a signature made for
# one from ever verifying as the other.
PURPOSE = b"lifeaccount click v1|"
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class ClickRef:
    """What a verified click id names: a content (or a room's pin, ``live.pins``) and the
    fingerprint of where the click leads."""

    subject_id: str
    fingerprint: bytes


@dataclass(frozen=True)
class Click:
    id: str
    click_id: str
    content_id: str | None  # a content's link; None for a room's pin
    account_id: str
    link_index: int | None
    at: str
    room_id: str | None = None  # a pin's click: the room and the pin
    pin_id: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Click:
        return cls(
            doc["id"],
            doc["click_id"],
            doc.get("content_id"),
            doc["account_id"],
            doc.get("link_index"),
            doc["at"],
            doc.get("room_id"),
            doc.get("pin_id"),
        )


@dataclass(frozen=True)
class Followed:
    click: Click
    link: ServiceLink
    repeat: bool  # the id had been followed before: nothing was counted this time


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(secret: bytes, raw: bytes) -> bytes:
    return hmac.new(secret, PURPOSE + raw, hashlib.sha256).digest()[:MAC_BYTES]


def links_of(content: Content) -> list[ServiceLink]:
    """Every link a content shows: those attached to it, then its articles' service cards."""
    cards = [b.service_link for b in content.blocks if isinstance(b, ServiceCard)]
    return [*content.service_links, *cards]


def fingerprint(link: ServiceLink) -> bytes:
    """Where a link leads, in a few bytes: its title and image may change, its target not."""
    target = [link.app_id, link.page, sorted(link.query.items()), link.url]
    canonical = json.dumps(target, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).digest()[:FINGERPRINT_BYTES]


def mint_click_id(secret: bytes, content_id: str, link: ServiceLink) -> str:
    """A fresh click id for one of a content's links; no store write."""
    return mint(secret, content_id, fingerprint(link))


def mint(secret: bytes, subject_id: str, target: bytes) -> str:
    """A fresh click id for ``subject_id`` (an id in ASCII) leading to the ``target``
    fingerprint (FINGERPRINT_BYTES of it)."""
    assert len(target) == FINGERPRINT_BYTES
    raw = target + os.urandom(NONCE_BYTES) + subject_id.encode("ascii")
    return PREFIX + _b64(raw + _mac(secret, raw))


def read_click_id(secret: bytes, click_id: str) -> ClickRef:
    """Verify a click id; anything but an id this deployment minted is ``click_not_found``."""
    unknown = NotFound("click", click_id[:MAX_CLICK_ID], field="click_id")
    body = click_id.removeprefix(PREFIX)
    if body == click_id or len(click_id) > MAX_CLICK_ID or not B64URL.fullmatch(body):
        raise unknown
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, binascii.Error):
        raise unknown from None
    # One id, one spelling: base64 that decodes to the same bytes from other text (spare bits
    # set in the last character) would be a second id for the same click, counted twice.
    if _b64(data) != body:
        raise unknown
    raw, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    head = FINGERPRINT_BYTES + NONCE_BYTES
    if len(raw) <= head or not hmac.compare_digest(mac, _mac(secret, raw)):
        raise unknown
    try:
        subject_id = raw[head:].decode("ascii")
    except UnicodeDecodeError:
        raise unknown from None
    return ClickRef(subject_id, raw[:FINGERPRINT_BYTES])


async def resolve(store: DocumentStore, secret: bytes, click_id: str) -> tuple[Content, int]:
    """The live content a click id names and the index its link has now, recording nothing."""
    ref = read_click_id(secret, click_id)
    try:
        content = await get_content(store, ref.subject_id)
    except NotFound:
        raise NotFound("click", click_id, field="click_id") from None
    for index, link in enumerate(links_of(content)):
        if hmac.compare_digest(fingerprint(link), ref.fingerprint):
            return content, index
    # The link was removed, or now leads elsewhere, since the id was minted.
    raise NotFound("click", click_id, field="click_id")


async def follow(store: DocumentStore, secret: bytes, click_id: str, *, now: datetime) -> Followed:
    """Record a click once per id and count it on its content; a second follow of the same id
    answers the first click with ``repeat``."""
    return await retry_if_raced(("click_id",), lambda: _follow(store, secret, click_id, now))


async def _follow(store: DocumentStore, secret: bytes, click_id: str, now: datetime) -> Followed:
    clicks = store.collection(CLICKS)
    async with store.transaction():
        content, index = await resolve(store, secret, click_id)
        link = links_of(content)[index]
        seen = await clicks.find_one({"click_id": click_id})
        if seen is not None:
            return Followed(Click.from_doc(seen), link, True)
        doc = {
            "id": new_id("clk"),
            "click_id": click_id,
            "content_id": content.id,
            "account_id": content.account_id,
            "link_index": index,
            "app_id": link.app_id,
            "at": rfc3339(now),
        }
        await clicks.insert(doc)
        await store.collection(CONTENTS).update_one({"id": content.id}, {"$inc": {"clicks": 1}})
    return Followed(Click.from_doc(doc), link, False)


async def recorded_click(store: DocumentStore, account_id: str, click_id: str) -> Click:
    """A followed click of this account; another account's click reads as unknown."""
    doc = await store.collection(CLICKS).find_one({"click_id": click_id})
    if doc is None or doc["account_id"] != account_id:
        raise NotFound("click", click_id[:MAX_CLICK_ID], field="click_id")
    return Click.from_doc(doc)


def landing_url(link: ServiceLink, click_id: str) -> str | None:
    """The link's H5 URL with the click id added to its query, or None without one."""
    if link.url is None:
        return None
    parts = urlsplit(link.url)
    added = urlencode({PARAM: click_id})
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def page_query(link: ServiceLink, click_id: str) -> dict[str, str]:
    """The mini-program page's query with the click id, for a host that opens the page."""
    return {**link.query, PARAM: click_id}
