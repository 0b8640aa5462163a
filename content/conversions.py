"""Conversions: the orders a brand's backend reports for the clicks that led to them, and the
per-content funnel (views → plays → clicks → conversions) an account's stats show.

A conversion names a followed click of the reporting account (the ``la_click`` id its service
received: on a content's link, or on a room's pinned card, then it carries the room) and the
brand's own order id. An order counts once per account (a unique index): a
retried or duplicated report answers the first with ``repeat``. The conversion and its
content's counters move together in one transaction, so a refusal leaves nothing behind.

Amounts are integers in the currency's minor units (fen for CNY, DESIGN §4), summed per
content in total and per currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Invalid
from content.clicks import recorded_click
from content.contents import CONTENTS, Content, Status
from content.fields import check_int
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index, retry_if_raced

CONVERSIONS = "conversions"
INDEXES = [
    Index(CONVERSIONS, ("account_id", "order_id"), unique=True),
    Index(CONVERSIONS, ("content_id", "at")),
    Index(CONVERSIONS, ("room_id", "at")),
]
MAX_ORDER_ID = 128
MAX_AMOUNT = 10**12  # minor units: ten billion yuan in fen
DEFAULT_CURRENCY = "CNY"
CURRENCY = re.compile(r"^[A-Z]{3}$")  # an ISO 4217 alphabetic code
TITLE_CHARS = 40  # a post has no title: its text's start stands in


@dataclass(frozen=True)
class Conversion:
    id: str
    account_id: str
    click_id: str
    content_id: str | None  # the content whose link was clicked, or None for a room's pin
    order_id: str
    amount: int
    currency: str
    at: str
    room_id: str | None = None  # the room whose pin was clicked

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Conversion:
        return cls(
            doc["id"],
            doc["account_id"],
            doc["click_id"],
            doc.get("content_id"),
            doc["order_id"],
            doc["amount"],
            doc["currency"],
            doc["at"],
            doc.get("room_id"),
        )


@dataclass(frozen=True)
class Reported:
    conversion: Conversion
    repeat: bool  # the order had been reported before: the first report is the answer


async def report(
    store: DocumentStore,
    account_id: str,
    *,
    click_id: Any,
    order_id: Any,
    amount: Any,
    currency: Any = None,
    now: datetime,
) -> Reported:
    """Record an order for a click of this account, once per (account, order_id)."""
    if not isinstance(click_id, str) or not click_id:
        raise Invalid("the click id the service received in la_click", field="click_id")
    order = _order_id(order_id)
    cents = check_int(amount, field="amount", least=0, most=MAX_AMOUNT)
    code = DEFAULT_CURRENCY if currency is None else currency
    if not isinstance(code, str) or not CURRENCY.fullmatch(code):
        raise Invalid("an ISO 4217 code in capitals, e.g. CNY", field="currency")
    return await retry_if_raced(
        ("order_id",), lambda: _report(store, account_id, click_id, order, cents, code, now)
    )


def _order_id(value: Any) -> str:
    # Kept exactly as sent (no case or space folding): it is the brand's key, not text.
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ORDER_ID:
        raise Invalid(f"the brand's order id, 1-{MAX_ORDER_ID} characters", field="order_id")
    if value != value.strip() or not value.isprintable():
        raise Invalid("no control characters nor surrounding spaces", field="order_id")
    return value


async def _report(
    store: DocumentStore,
    account_id: str,
    click_id: str,
    order_id: str,
    amount: int,
    currency: str,
    now: datetime,
) -> Reported:
    conversions = store.collection(CONVERSIONS)
    async with store.transaction():
        first = await conversions.find_one({"account_id": account_id, "order_id": order_id})
        if first is not None:
            return Reported(Conversion.from_doc(first), True)
        click = await recorded_click(store, account_id, click_id)
        doc = {
            "id": new_id("cvn"),
            "account_id": account_id,
            "click_id": click.click_id,
            "content_id": click.content_id,
            "room_id": click.room_id,
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
            "at": rfc3339(now),
        }
        await conversions.insert(doc)
        if click.content_id is None:  # a room pin's click: the room counts it (live.pins)
            return Reported(Conversion.from_doc(doc), False)
        await store.collection(CONTENTS).update_one(
            {"id": click.content_id},
            {
                "$inc": {
                    "conversions": 1,
                    "conversion_amount": amount,
                    f"conversion_amounts.{currency}": amount,
                }
            },
        )
    return Reported(Conversion.from_doc(doc), False)


@dataclass(frozen=True)
class ContentStats:
    """One content's funnel. ``amount`` adds every currency's minor units; ``amounts`` splits
    them for an account that reports more than one currency."""

    content_id: str
    kind: str
    status: str
    title: str
    published_at: str | None
    views: int
    plays: int
    play_completions: int
    likes: int
    comments: int
    clicks: int
    conversions: int
    amount: int
    amounts: dict[str, int]

    @property
    def completion_rate(self) -> float:
        """The share of plays watched to the end, 0 before any play."""
        return round(min(self.play_completions / self.plays, 1.0), 4) if self.plays else 0.0

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ContentStats:
        content = Content.from_doc(doc)
        counters = content.counters
        return cls(
            content_id=content.id,
            kind=content.kind.value,
            status=content.status.value,
            title=content.title or content.text[:TITLE_CHARS] or content.caption[:TITLE_CHARS],
            published_at=content.published_at,
            views=counters.views,
            plays=counters.plays,
            play_completions=counters.play_completions,
            likes=counters.likes,
            comments=counters.comments,
            clicks=int(doc.get("clicks", 0)),
            conversions=int(doc.get("conversions", 0)),
            amount=int(doc.get("conversion_amount", 0)),
            amounts={k: int(v) for k, v in (doc.get("conversion_amounts") or {}).items()},
        )


@dataclass(frozen=True)
class StatsPage:
    items: list[ContentStats]
    next_cursor: str | None


async def content_stats(
    store: DocumentStore, account_id: str, *, limit: int, cursor: str | None
) -> StatsPage:
    """Every live content's funnel, newest first (drafts and archived ones included)."""
    page = await store.collection(CONTENTS).page(
        {"account_id": account_id, "status": {"$ne": Status.DELETED.value}},
        sort=[("created_at", -1)],
        limit=limit,
        cursor=cursor,
    )
    return StatsPage([ContentStats.from_doc(d) for d in page.items], page.next_cursor)
