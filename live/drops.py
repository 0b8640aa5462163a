"""Collectible drops (DESIGN §6): a numbered series the host drops in a live room — N
editions of one collectible, each fan at most one. A claim takes the next edition and records
it with its signed certificate in one transaction, so an edition goes to one fan and a fan
gets one edition, exactly once under any race or retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Conflict, Forbidden, NotFound
from accounts.tiers import member_tier
from content.fields import check_int, clean_line
from content.uploads import check_http_url
from live.certificates import Signer
from live.rooms import Room, State
from store.clock import rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, DuplicateKeyError, Index

DROPS = "drops"
CLAIMS = "drop_claims"
MAX_EDITIONS = 100_000
MAX_NAME = 60
INDEXES = [
    Index(DROPS, ("room_id", "created_at")),
    Index(CLAIMS, ("drop_id", "fan_id"), unique=True),
    Index(CLAIMS, ("drop_id", "edition"), unique=True),
    Index(CLAIMS, ("fan_id", "at")),
]


@dataclass(frozen=True)
class Drop:
    id: str
    room_id: str
    account_id: str
    name: str
    image: str | None
    editions: int
    min_tier: int
    claimed: int
    created_at: str

    @classmethod
    def from_doc(cls, doc: Doc) -> Drop:
        return cls(
            id=doc["id"],
            room_id=doc["room_id"],
            account_id=doc["account_id"],
            name=doc["name"],
            image=doc.get("image"),
            editions=doc["editions"],
            min_tier=doc["min_tier"],
            claimed=doc["claimed"],
            created_at=doc["created_at"],
        )

    def told(self) -> dict[str, Any]:
        """What viewers see of it (``drop`` events, a snapshot's list)."""
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "editions": self.editions,
            "min_tier": self.min_tier,
            "claimed": self.claimed,
        }


@dataclass(frozen=True)
class Claim:
    drop: Drop
    fan_id: str
    edition: int  # 1..editions
    certificate: str
    at: str
    repeat: bool  # the fan had claimed it already: the same edition again


async def create_drop(
    store: DocumentStore,
    room: Room,
    *,
    name: Any,
    editions: Any,
    image: Any = None,
    min_tier: Any = 0,
    now: datetime,
) -> Drop:
    doc: Doc = {
        "id": new_id("drp"),
        "room_id": room.id,
        "account_id": room.account_id,
        "name": clean_line(name, field="name", longest=MAX_NAME),
        "image": None if image is None else check_http_url(image, field="image"),
        "editions": check_int(editions, field="editions", least=1, most=MAX_EDITIONS),
        "min_tier": check_int(min_tier, field="min_tier", least=0, most=100),
        "claimed": 0,
        "created_at": rfc3339(now),
    }
    if room.state is not State.LIVE:
        raise Conflict("collectibles drop while the room is live", code="room_not_live")
    await store.collection(DROPS).insert(doc)
    return Drop.from_doc(doc)


async def get_drop(store: DocumentStore, drop_id: str) -> Drop:
    doc = await store.collection(DROPS).get(drop_id)
    if doc is None:
        raise NotFound("drop", drop_id)
    return Drop.from_doc(doc)


def _claim(drop: Drop, doc: Doc, repeat: bool) -> Claim:
    return Claim(drop, doc["fan_id"], doc["edition"], doc["certificate"], doc["at"], repeat)


async def claim_of(store: DocumentStore, drop: Drop, fan_id: str) -> Claim | None:
    """The fan's edition of ``drop``, if it claimed one."""
    doc = await store.collection(CLAIMS).find_one({"drop_id": drop.id, "fan_id": fan_id})
    return None if doc is None else _claim(drop, doc, repeat=True)


async def claim(
    store: DocumentStore, drop_id: str, *, fan_id: str, signer: Signer, now: datetime
) -> Claim:
    """The fan's edition: the next one, once, with its certificate; a fan who claimed already
    gets the same edition with ``repeat``. 409 ``sold_out`` when every edition is taken."""
    drop = await get_drop(store, drop_id)
    claims = store.collection(CLAIMS)
    mine = await claim_of(store, drop, fan_id)
    if mine is not None:
        return mine
    if drop.claimed >= drop.editions:
        raise Conflict("every edition is taken", code="sold_out")
    if await member_tier(store, drop.account_id, fan_id) < drop.min_tier:
        raise Forbidden(
            f"this collectible is for members of tier {drop.min_tier} and up",
            code="tier_required",
        )
    try:
        async with store.transaction():
            taken = await store.collection(DROPS).update_one(
                {"id": drop_id, "claimed": {"$lt": drop.editions}}, {"$inc": {"claimed": 1}}
            )
            if taken is None:
                raise Conflict("every edition is taken", code="sold_out")
            edition = int(taken["claimed"])
            certificate = signer.sign(
                {
                    "v": 1,
                    "drop_id": drop_id,
                    "account_id": drop.account_id,
                    "room_id": drop.room_id,
                    "name": drop.name,
                    "edition": edition,
                    "of": drop.editions,
                    "fan_id": fan_id,
                    "issued_at": rfc3339(now),
                }
            )
            doc: Doc = {
                "id": f"{drop_id}/{fan_id}",
                "drop_id": drop_id,
                "fan_id": fan_id,
                "edition": edition,
                "certificate": certificate,
                "at": rfc3339(now),
            }
            await claims.insert(doc)
    except DuplicateKeyError:
        # The same fan's other claim won the race; this transaction took nothing.
        won = await claim_of(store, drop, fan_id)
        assert won is not None
        return won
    return _claim(Drop.from_doc(taken), doc, repeat=False)


async def unfinished(store: DocumentStore, room_id: str) -> list[Drop]:
    docs = await store.collection(DROPS).find({"room_id": room_id}, sort=(("created_at", 1),))
    return [d for d in map(Drop.from_doc, docs) if d.claimed < d.editions]


async def collection(store: DocumentStore, fan_id: str) -> list[tuple[Drop, Claim]]:
    """The fan's collectibles, newest first."""
    docs = await store.collection(CLAIMS).find({"fan_id": fan_id}, sort=(("at", -1),))
    ids = list({d["drop_id"] for d in docs})
    by_id = {
        d["id"]: Drop.from_doc(d) for d in await store.collection(DROPS).find({"id": {"$in": ids}})
    }
    return [(by_id[d["drop_id"]], _claim(by_id[d["drop_id"]], d, repeat=True)) for d in docs]
