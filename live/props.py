"""Props (DESIGN §6): the gifts a fan sends the host during a live, from the account's own
catalog — a name, an icon, a price in points, the lowest member tier that may send it and the
effect viewers see.

Sending one is a ledger movement (the fan's wallet → the account's ``takings``), exactly once
per idempotency key, decided in the server: the prop must be enabled and the account's, the
fan's tier is read from the store at that moment (a token or a request never says it), and the
wallet must hold the price. In the same transaction the room's supporter board gains the
points, so the board and the ledger never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts import ledger
from accounts.errors import Conflict, Forbidden, Invalid, NotFound
from accounts.tiers import member_tier
from content.fields import check_int, check_list, check_object, clean_line
from content.uploads import check_http_url
from live.rooms import Room, State
from store.clock import rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index

PROPS = "props"
SUPPORTERS = "room_supporters"
TAKINGS = "takings"  # the account's book that props are paid into
MAX_PROPS = 50
MAX_NAME = 40
MAX_PRICE = 1_000_000
MAX_COUNT = 99  # props one send may carry
EFFECT = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")

INDEXES = [
    Index(PROPS, ("account_id", "position")),
    Index(SUPPORTERS, ("room_id", "points")),
]


@dataclass(frozen=True)
class Prop:
    id: str
    account_id: str
    name: str
    icon: str | None
    price: int
    min_tier: int
    effect: str
    enabled: bool
    position: int

    @classmethod
    def from_doc(cls, doc: Doc) -> Prop:
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            name=doc["name"],
            icon=doc.get("icon"),
            price=doc["price"],
            min_tier=doc["min_tier"],
            effect=doc["effect"],
            enabled=doc["enabled"],
            position=doc["position"],
        )


@dataclass(frozen=True)
class Sent:
    prop: Prop
    count: int
    points: int
    balance: int  # the fan's wallet after the send
    repeat: bool  # the idempotency key had sent it already: nothing moved this time


@dataclass(frozen=True)
class Supporter:
    fan_id: str
    name: str
    points: int


def _prop_fields(raw: Any, n: int, known: set[str]) -> Doc:
    at = f"props.{n}"
    item = check_object(
        raw, field=at, allowed={"id", "name", "icon", "price", "min_tier", "effect", "enabled"}
    )
    prop_id = item.get("id")
    if prop_id is not None and prop_id not in known:
        raise Invalid(
            "id names one of the account's props; leave it out for a new one", field=f"{at}.id"
        )
    effect = item.get("effect", "heart")
    if not isinstance(effect, str) or not EFFECT.fullmatch(effect):
        raise Invalid(
            "an effect is a name of lower-case letters, digits and -", field=f"{at}.effect"
        )
    icon = item.get("icon")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Invalid("true or false", field=f"{at}.enabled")
    return {
        "id": prop_id,
        "name": clean_line(item.get("name"), field=f"{at}.name", longest=MAX_NAME),
        "icon": None if icon is None else check_http_url(icon, field=f"{at}.icon"),
        "price": check_int(item.get("price"), field=f"{at}.price", least=1, most=MAX_PRICE),
        "min_tier": check_int(item.get("min_tier", 0), field=f"{at}.min_tier", least=0, most=100),
        "effect": effect,
        "enabled": enabled,
    }


async def set_catalog(
    store: DocumentStore, account_id: str, items: Any, *, now: datetime
) -> list[Prop]:
    """Replace the account's catalog with ``items`` (in their order). An item with the ``id``
    of a prop keeps it (its sends stay its own); a prop left out is retired, never deleted:
    the ledger names it."""
    listed = check_list(items, field="props", most=MAX_PROPS)
    props = store.collection(PROPS)
    current = await props.find({"account_id": account_id, "retired": False})
    known = {d["id"] for d in current}
    wanted = [_prop_fields(raw, n, known) for n, raw in enumerate(listed)]
    ids = [w["id"] for w in wanted if w["id"] is not None]
    if len(ids) != len(set(ids)):
        raise Invalid("each prop appears once", field="props")
    async with store.transaction():
        for position, fields in enumerate(wanted):
            fields["position"] = position
            fields["updated_at"] = rfc3339(now)
            if fields["id"] is None:
                fields.update(id=new_id("prp"), account_id=account_id, retired=False)
                await props.insert(fields)
            else:
                await props.update_one({"id": fields["id"]}, {"$set": fields})
        for gone in known - set(ids):
            await props.update_one(
                {"id": gone},
                {"$set": {"retired": True, "enabled": False, "updated_at": rfc3339(now)}},
            )
    return await catalog(store, account_id)


async def catalog(
    store: DocumentStore, account_id: str, *, enabled_only: bool = False
) -> list[Prop]:
    filter: Doc = {"account_id": account_id, "retired": False}
    if enabled_only:
        filter["enabled"] = True
    docs = await store.collection(PROPS).find(filter, sort=(("position", 1),))
    return [Prop.from_doc(d) for d in docs]


async def send(
    store: DocumentStore,
    room: Room,
    *,
    fan_id: str,
    fan_name: str,
    prop_id: Any,
    count: Any,
    idempotency_key: str,
    now: datetime,
) -> Sent:
    """Send ``count`` of a prop in ``room`` from the fan's wallet, once per key: a retry
    answers what the first send did, whatever changed since (the prop, the tier)."""
    key = f"prop:{room.id}:{fan_id}:{idempotency_key}"
    done = await ledger.moved(store, room.account_id, key)
    if done is not None:
        return await _repeat(store, room, fan_id, done)
    if not isinstance(prop_id, str):
        raise Invalid("prop_id names a prop of the account", field="prop_id")
    count = check_int(1 if count is None else count, field="count", least=1, most=MAX_COUNT)
    doc = await store.collection(PROPS).get(prop_id)
    if doc is None or doc["account_id"] != room.account_id or not doc["enabled"]:
        raise NotFound("prop", prop_id, field="prop_id")
    prop = Prop.from_doc(doc)
    if room.state is not State.LIVE:
        raise Conflict("props are sent while the room is live", code="room_not_live")
    tier = await member_tier(store, room.account_id, fan_id)
    if tier < prop.min_tier:
        raise Forbidden(
            f"{prop.name} is for members of tier {prop.min_tier} and up", code="tier_required"
        )
    points = prop.price * count
    async with store.transaction():
        moved = await ledger.transfer(
            store,
            account_id=room.account_id,
            debit=ledger.wallet(fan_id),
            credit=TAKINGS,
            points=points,
            reason=f"prop {prop.name} ×{count}",
            reference=f"{room.id}/{prop.id}/{count}",  # room, prop, how many
            idempotency_key=key,
            now=now,
        )
        if not moved.repeat:
            await store.collection(SUPPORTERS).update_one(
                {"id": f"{room.id}/{fan_id}"},
                {
                    "$inc": {"points": points, "sends": 1},
                    "$set": {"name": fan_name},
                    "$setOnInsert": {"room_id": room.id, "fan_id": fan_id},
                },
                upsert=True,
            )
    left = await ledger.balance(store, room.account_id, ledger.wallet(fan_id))
    return Sent(prop, count, points, left, repeat=moved.repeat)


async def _repeat(store: DocumentStore, room: Room, fan_id: str, done: ledger.Movement) -> Sent:
    _, prop_id, count = done.entry.reference.split("/")
    doc = await store.collection(PROPS).get(prop_id)
    assert doc is not None  # props are retired, never deleted
    left = await ledger.balance(store, room.account_id, ledger.wallet(fan_id))
    return Sent(Prop.from_doc(doc), int(count), done.entry.points, left, repeat=True)


async def supporters(store: DocumentStore, room_id: str, limit: int = 10) -> list[Supporter]:
    """The room's board: who sent the most points in props, most first."""
    docs = await store.collection(SUPPORTERS).find(
        {"room_id": room_id}, sort=(("points", -1), ("id", 1)), limit=limit
    )
    return [Supporter(d["fan_id"], d.get("name", ""), d["points"]) for d in docs]


async def room_total(store: DocumentStore, room_id: str) -> tuple[int, int]:
    """Points sent in props in the room, and by how many fans."""
    docs = await store.collection(SUPPORTERS).find({"room_id": room_id})
    return sum(d["points"] for d in docs), len(docs)
