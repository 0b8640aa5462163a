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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from accounts import ledger
from accounts.errors import Conflict, Forbidden, Invalid, NotFound
from accounts.tiers import member_tiers
from content.fields import check_int, check_list, check_object, clean_line
from content.uploads import check_http_url
from live.groups import Groups
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
    answers what the first send did, whatever changed since (the prop, the tier).

    Sends in one room that arrive together are written together (``live.groups``): one
    transaction for the group, each send still standing alone — one the fan cannot pay, or
    may not send, is refused by itself. Not for use inside an open store transaction."""
    if not isinstance(prop_id, str):
        raise Invalid("prop_id names a prop of the account", field="prop_id")
    count = check_int(1 if count is None else count, field="count", least=1, most=MAX_COUNT)
    key = f"prop:{room.id}:{fan_id}:{idempotency_key}"
    return await _SENDS.ask(store, room.id, _Send(room, fan_id, fan_name, prop_id, count, key, now))


@dataclass(frozen=True)
class _Send:
    room: Room
    fan_id: str
    fan_name: str
    prop_id: str
    count: int
    key: str
    now: datetime


async def _send_group(
    store: DocumentStore, room_id: str, group: list[_Send]
) -> list[Sent | Exception]:
    """One transaction for the room's sends that arrived together, in arrival order."""
    room = group[-1].room  # the newest read of the room the askers made
    keys = list(dict.fromkeys(s.key for s in group))
    answers: dict[str, Sent | Exception] = {}
    repeated: dict[str, str] = {}  # key → the fan whose send it repeats
    async with store.transaction():
        for doc in await store.collection(ledger.ENTRIES).find(
            {"account_id": room.account_id, "idempotency_key": {"$in": keys}}
        ):
            first = ledger.Entry.from_doc(doc)
            answers[first.idempotency_key] = await _repeat(store, first)
            repeated[first.idempotency_key] = first.debit.removeprefix("wallet:")
        found = await store.collection(PROPS).find(
            {"id": {"$in": sorted({s.prop_id for s in group})}}
        )
        catalog = {d["id"]: Prop.from_doc(d) for d in found}
        locked = any(p.min_tier for p in catalog.values())
        fans = sorted({s.fan_id for s in group})
        tiers = await member_tiers(store, room.account_id, fans) if locked else {}
        paying: list[tuple[_Send, Prop]] = []
        taking: set[str] = set()
        for s in group:
            if s.key in answers or s.key in taking:
                continue
            prop = catalog.get(s.prop_id)
            refusal = _refusal(room, prop, s, tiers.get(s.fan_id, 0))
            if refusal is not None:
                answers[s.key] = refusal
                continue
            assert prop is not None
            paying.append((s, prop))
            taking.add(s.key)
        moved = await ledger.collect(
            store,
            account_id=room.account_id,
            credit=TAKINGS,
            charges=[
                ledger.Charge(
                    debit=ledger.wallet(s.fan_id),
                    points=prop.price * s.count,
                    idempotency_key=s.key,
                    reason=f"prop {prop.name} ×{s.count}",
                    reference=f"{room.id}/{prop.id}/{s.count}",  # room, prop, how many
                )
                for s, prop in paying
            ],
            now=group[-1].now,
        )
        board = [
            (s, prop, movement)
            for (s, prop), movement in zip(paying, moved, strict=True)
            if isinstance(movement, ledger.Movement)
        ]
        await store.collection(SUPPORTERS).update_each(
            [
                (
                    {"id": f"{room.id}/{s.fan_id}"},
                    {
                        "$inc": {"points": movement.entry.points, "sends": 1},
                        "$set": {"name": s.fan_name},
                        "$setOnInsert": {"room_id": room.id, "fan_id": s.fan_id},
                    },
                )
                for s, _, movement in board
            ],
            upsert=True,
        )
    # The wallets as they are now (after this group), for the sends and the repeats alike.
    wallets = [ledger.wallet(s.fan_id) for s, _ in paying]
    left = await ledger.balances(
        store, room.account_id, [*wallets, *(ledger.wallet(f) for f in repeated.values())]
    )
    for key, fan_id in repeated.items():
        sent = answers[key]
        assert isinstance(sent, Sent)
        answers[key] = replace(sent, balance=left[ledger.wallet(fan_id)])
    for (s, prop), movement in zip(paying, moved, strict=True):
        if isinstance(movement, ledger.Movement):
            points = movement.entry.points
            answers[s.key] = Sent(prop, s.count, points, left[ledger.wallet(s.fan_id)], False)
        else:
            answers[s.key] = movement
    said: set[str] = set()
    out: list[Sent | Exception] = []
    for s in group:  # the same key twice in one group: the second is the first's repeat
        answer = answers[s.key]
        if isinstance(answer, Sent) and s.key in said:
            answer = replace(answer, repeat=True)
        said.add(s.key)
        out.append(answer)
    return out


def _refusal(room: Room, prop: Prop | None, s: _Send, tier: int) -> Exception | None:
    if prop is None or prop.account_id != room.account_id or not prop.enabled:
        return NotFound("prop", s.prop_id, field="prop_id")
    if room.state is not State.LIVE:
        return Conflict("props are sent while the room is live", code="room_not_live")
    if tier < prop.min_tier:
        return Forbidden(
            f"{prop.name} is for members of tier {prop.min_tier} and up", code="tier_required"
        )
    return None


async def _repeat(store: DocumentStore, first: ledger.Entry) -> Sent:
    """What the send that moved ``first`` did (its balance filled in by the caller)."""
    _, prop_id, count = first.reference.split("/")
    doc = await store.collection(PROPS).get(prop_id)
    assert doc is not None  # props are retired, never deleted
    return Sent(Prop.from_doc(doc), int(count), first.points, 0, repeat=True)


_SENDS: Groups[_Send, Sent] = Groups(_send_group, most=256)


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
