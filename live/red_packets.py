"""Red packets (DESIGN §6): the host drops points from the account's budget into the room,
split up front from a secret seed, and fans grab one share each.

Points are on the ledger at every step: the drop moves the total from ``budget`` to the
packet's own book (``packet:<id>``), each grab moves one share from there to the fan's
wallet, and the expiry moves what is left back to ``budget`` — each once, by its own
idempotency key. A grab takes the packet's next share index and records the fan's grab in one
transaction with its ledger entry, so a share goes to one fan, a fan gets one share, and
what was acknowledged is written. The seed and shares stay secret until the packet finishes
(all grabbed, or expired); then the reveal lets anyone check the split (``live.split``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from accounts import ledger
from accounts.errors import Conflict, Forbidden, Invalid, NotFound
from accounts.tiers import member_tiers
from content.fields import check_int
from live import split
from live.groups import Groups
from live.rooms import Room, State
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index

PACKETS = "red_packets"
SHARES = "red_packet_shares"  # the split, CHUNK shares a document: a grab reads one
GRABS = "red_packet_grabs"
CHUNK = 100
MAX_COUNT = 10_000
MAX_TOTAL = 100_000_000
INDEXES = [
    Index(PACKETS, ("room_id", "created_at")),
    Index(PACKETS, ("opened_told", "opens_at")),
    Index(PACKETS, ("state", "expires_at")),
    Index(GRABS, ("packet_id", "fan_id"), unique=True),
    Index(GRABS, ("packet_id", "n"), unique=True),
]


class PacketState(StrEnum):
    PENDING = "pending"  # counting down to its opening
    OPEN = "open"
    FINISHED = "finished"  # every share grabbed, or expired (what was left refunded)


def book(packet_id: str) -> str:
    return f"packet:{packet_id}"


@dataclass(frozen=True)
class Packet:
    id: str
    room_id: str
    account_id: str
    total: int
    count: int
    mode: str
    generator: str
    min_tier: int
    commitment: str
    opens_at: str
    expires_at: str
    grabbed_count: int
    grabbed_total: int
    finished_at: str | None
    refunded: int | None
    seed_hex: str  # secret until finished
    created_at: str
    shares: tuple[int, ...] = ()  # secret until finished; read for finished packets only

    @classmethod
    def from_doc(cls, doc: Doc, shares: tuple[int, ...] = ()) -> Packet:
        return cls(
            id=doc["id"],
            room_id=doc["room_id"],
            account_id=doc["account_id"],
            total=doc["total"],
            count=doc["count"],
            mode=doc["mode"],
            generator=doc["generator"],
            min_tier=doc["min_tier"],
            commitment=doc["commitment"],
            opens_at=doc["opens_at"],
            expires_at=doc["expires_at"],
            grabbed_count=doc["grabbed_count"],
            grabbed_total=doc["grabbed_total"],
            finished_at=doc.get("finished_at"),
            refunded=doc.get("refunded"),
            seed_hex=doc["seed_hex"],
            created_at=doc["created_at"],
            shares=shares,
        )

    def state(self, now: datetime) -> PacketState:
        if self.finished_at is not None:
            return PacketState.FINISHED
        if now < parse_rfc3339(self.opens_at):
            return PacketState.PENDING
        return PacketState.OPEN

    def reveal(self) -> dict[str, Any] | None:
        """The seed and the shares, once the packet finished; None before. The packet must
        have been read ``with_shares``."""
        if self.finished_at is None:
            return None
        assert len(self.shares) == self.count, "read the packet with_shares for its reveal"
        return {"seed": self.seed_hex, "shares": list(self.shares)}


@dataclass(frozen=True)
class Grab:
    packet: Packet
    fan_id: str
    n: int  # the share index this grab took
    amount: int
    repeat: bool  # the fan had grabbed this packet already: the same share again

    @property
    def last(self) -> bool:
        """This grab took the packet's last share (and finished it): one grab ever is."""
        return not self.repeat and self.n == self.packet.count - 1


async def drop(
    store: DocumentStore,
    room: Room,
    *,
    total: Any,
    count: Any,
    mode: Any,
    min_tier: Any = 0,
    opens_in_s: Any = 0,
    expires_in_s: Any = 300,
    now: datetime,
) -> Packet:
    """Drop a packet in a live room: the budget pays the total now (409
    ``insufficient_points`` when it cannot), the split is fixed and committed to."""
    count = check_int(count, field="count", least=1, most=MAX_COUNT)
    total = check_int(total, field="total", least=1, most=MAX_TOTAL)
    if total < count:
        raise Invalid("every share is at least 1 point: total ≥ count", field="total")
    if mode not in split.GENERATORS:
        raise Invalid("mode is random or equal", field="mode")
    min_tier = check_int(min_tier, field="min_tier", least=0, most=100)
    opens_in_s = check_int(opens_in_s, field="opens_in_s", least=0, most=3600)
    expires_in_s = check_int(expires_in_s, field="expires_in_s", least=10, most=86_400)
    if room.state is not State.LIVE:
        raise Conflict("red packets drop while the room is live", code="room_not_live")
    seed = secrets.token_bytes(32)
    shares = split.split(seed, total, count, mode)
    opens = now + timedelta(seconds=opens_in_s)
    doc: Doc = {
        "id": new_id("rpk"),
        "room_id": room.id,
        "account_id": room.account_id,
        "total": total,
        "count": count,
        "mode": mode,
        "generator": split.GENERATORS[mode],
        "min_tier": min_tier,
        "seed_hex": seed.hex(),
        "commitment": split.commitment(seed.hex(), shares),
        "opens_at": rfc3339(opens),
        "expires_at": rfc3339(opens + timedelta(seconds=expires_in_s)),
        "grabbed_count": 0,
        "grabbed_total": 0,
        "state": PacketState.OPEN.value,  # as stored: open until finished
        "finished_at": None,
        "refunded": None,
        "opened_told": opens_in_s == 0,  # a countdown's end is told by the sweep
        "created_at": rfc3339(now),
    }
    async with store.transaction():
        await ledger.transfer(
            store,
            account_id=room.account_id,
            debit=ledger.BUDGET,
            credit=book(doc["id"]),
            points=total,
            reason="red packet drop",
            reference=doc["id"],
            idempotency_key=f"packet-drop:{doc['id']}",
            now=now,
        )
        await store.collection(PACKETS).insert(doc)
        for start in range(0, count, CHUNK):
            await store.collection(SHARES).insert(
                {"id": f"{doc['id']}/{start // CHUNK}", "shares": shares[start : start + CHUNK]}
            )
    return Packet.from_doc(doc)


async def get_packet(store: DocumentStore, packet_id: str, *, with_shares: bool = False) -> Packet:
    """The packet; ``with_shares``, a finished one carries its shares (for the reveal)."""
    doc = await store.collection(PACKETS).get(packet_id)
    if doc is None:
        raise NotFound("red_packet", packet_id)
    if not with_shares or doc.get("finished_at") is None:
        return Packet.from_doc(doc)
    chunks = await store.collection(SHARES).find({"id": {"$in": _chunk_ids(doc)}})
    by_id = {c["id"]: c["shares"] for c in chunks}
    shares = tuple(s for cid in _chunk_ids(doc) for s in by_id[cid])
    return Packet.from_doc(doc, shares)


def _chunk_ids(doc: Doc) -> list[str]:
    return [f"{doc['id']}/{k}" for k in range((doc["count"] + CHUNK - 1) // CHUNK)]


async def grab_of(store: DocumentStore, packet_id: str, fan_id: str) -> Doc | None:
    return await store.collection(GRABS).find_one({"packet_id": packet_id, "fan_id": fan_id})


async def grab(store: DocumentStore, packet_id: str, *, fan_id: str, now: datetime) -> Grab:
    """The fan's share of the packet: the next one, once; a fan who grabbed it already gets
    the same share with ``repeat`` (even after it emptied or expired).

    Grabs of one packet that arrive together are written together (``live.groups``): one
    transaction takes the next shares for the whole group, in arrival order. Not for use
    inside an open store transaction.
    """
    return await _GRABS.ask(store, packet_id, _Ask(fan_id, now))


@dataclass(frozen=True)
class _Ask:
    fan_id: str
    now: datetime


async def _take_shares(
    store: DocumentStore, packet_id: str, group: list[_Ask]
) -> list[Grab | Exception]:
    """One transaction: the group's fans in arrival order each get the next share, their
    own share again, or the reason they get none. The transaction holds the store's write
    lock from its first read (another process's grab waits for it), so what it reads stays
    true until it commits; the unique indexes on (packet, fan) and (packet, n) stand behind
    that."""
    packets = store.collection(PACKETS)
    fans = list(dict.fromkeys(a.fan_id for a in group))
    async with store.transaction():
        doc = await packets.get(packet_id)
        if doc is None:
            raise NotFound("red_packet", packet_id)
        packet = Packet.from_doc(doc)
        had = {
            g["fan_id"]: g
            for g in await store.collection(GRABS).find(
                {"packet_id": packet_id, "fan_id": {"$in": fans}}
            )
        }
        tiers = await member_tiers(store, packet.account_id, fans) if packet.min_tier else {}
        taking: dict[str, Doc] = {}
        refused: dict[str, Exception] = {}
        for ask in group:
            if ask.fan_id in had or ask.fan_id in taking or ask.fan_id in refused:
                continue
            refusal = _refusal(packet, packet.grabbed_count + len(taking), ask.now)
            if refusal is None and tiers.get(ask.fan_id, 0) < packet.min_tier:
                refusal = Forbidden(
                    f"this red packet is for members of tier {packet.min_tier} and up",
                    code="tier_required",
                )
            if refusal is not None:
                refused[ask.fan_id] = refusal
                continue
            n = packet.grabbed_count + len(taking)
            taking[ask.fan_id] = {
                "id": f"{packet_id}/{ask.fan_id}",
                "packet_id": packet_id,
                "fan_id": ask.fan_id,
                "n": n,
                "amount": 0,  # read from its chunk of the split below
                "at": rfc3339(ask.now),
            }
        if taking:
            done = await _record(store, packet, list(taking.values()), group[-1].now)
        else:
            done = doc
        if done.get("finished_at") is not None and taking:
            # The last share went: read the reveal in the same transaction, so a failure
            # here takes nothing rather than leave grabs written but unanswered.
            after = await get_packet(store, packet_id, with_shares=True)
        else:
            after = Packet.from_doc(done)
    answers: list[Grab | Exception] = []
    told: set[str] = set()
    for ask in group:
        fan = ask.fan_id
        if fan in refused:
            answers.append(refused[fan])
            continue
        mine = taking.get(fan) or had[fan]
        answers.append(
            Grab(after, fan, mine["n"], mine["amount"], repeat=fan not in taking or fan in told)
        )
        told.add(fan)
    return answers


def _refusal(packet: Packet, taken: int, now: datetime) -> Exception | None:
    if packet.state(now) is PacketState.PENDING:
        return Conflict(f"the red packet opens at {packet.opens_at}", code="red_packet_not_open")
    if taken >= packet.count:
        return Conflict("every share of the red packet is taken", code="red_packet_empty")
    if packet.finished_at is not None or now >= parse_rfc3339(packet.expires_at):
        return Conflict("the red packet expired", code="red_packet_finished")
    return None


async def _record(store: DocumentStore, packet: Packet, taking: list[Doc], now: datetime) -> Doc:
    """Write the grabs (their amounts filled in from the split), the packet's counts and the
    ledger's payments; inside the group's transaction."""
    chunks = {
        c["id"]: c["shares"]
        for c in await store.collection(SHARES).find(
            {"id": {"$in": sorted({f"{packet.id}/{g['n'] // CHUNK}" for g in taking})}}
        )
    }
    for g in taking:
        g["amount"] = int(chunks[f"{packet.id}/{g['n'] // CHUNK}"][g["n"] % CHUNK])
    await store.collection(GRABS).insert_many(taking)
    update: Doc = {
        "$inc": {"grabbed_count": len(taking), "grabbed_total": sum(g["amount"] for g in taking)}
    }
    if packet.grabbed_count + len(taking) == packet.count:  # the last share: done, revealed
        update["$set"] = {
            "finished_at": rfc3339(now),
            "state": PacketState.FINISHED.value,
            "refunded": 0,
        }
    done = await store.collection(PACKETS).update_one(
        {"id": packet.id, "finished_at": None, "grabbed_count": packet.grabbed_count}, update
    )
    assert done is not None, "the packet changed inside its own transaction"
    await ledger.pay_out(
        store,
        account_id=packet.account_id,
        debit=book(packet.id),
        payments=[
            ledger.Payment(
                ledger.wallet(g["fan_id"]), g["amount"], f"packet-grab:{packet.id}:{g['fan_id']}"
            )
            for g in taking
        ],
        reason="red packet grab",
        reference=packet.id,
        now=now,
    )
    return done


async def expire(store: DocumentStore, packet_id: str, *, now: datetime) -> Packet | None:
    """Finish an expired packet and refund what is left to the budget, exactly once (two
    sweepers racing: one refunds, the other finds it done). None when it is not due, or
    finished already."""
    packet = await get_packet(store, packet_id)
    if packet.finished_at is not None or now < parse_rfc3339(packet.expires_at):
        return None
    packets = store.collection(PACKETS)
    async with store.transaction():
        done = await packets.update_one(
            {"id": packet_id, "finished_at": None},
            {"$set": {"finished_at": rfc3339(now), "state": PacketState.FINISHED.value}},
        )
        if done is None:
            return None
        left = done["total"] - done["grabbed_total"]
        done = await packets.update_one({"id": packet_id}, {"$set": {"refunded": left}})
        assert done is not None
        if left:
            await ledger.transfer(
                store,
                account_id=packet.account_id,
                debit=book(packet_id),
                credit=ledger.BUDGET,
                points=left,
                reason="red packet refund",
                reference=packet_id,
                idempotency_key=f"packet-refund:{packet_id}",
                now=now,
            )
    return await get_packet(store, packet_id, with_shares=True)


def told(packet: Packet, now: datetime) -> dict[str, Any]:
    """What viewers know of a packet (the ``red_packet`` events, a snapshot's list)."""
    return {
        "id": packet.id,
        "state": packet.state(now).value,
        "total": packet.total,
        "count": packet.count,
        "mode": packet.mode,
        "generator": packet.generator,
        "min_tier": packet.min_tier,
        "commitment": packet.commitment,
        "opens_at": packet.opens_at,
        "expires_at": packet.expires_at,
        "grabbed_count": packet.grabbed_count,
        "grabbed_total": packet.grabbed_total,
        "reveal": packet.reveal(),
    }


async def unfinished(store: DocumentStore, room_id: str) -> list[Packet]:
    docs = await store.collection(PACKETS).find(
        {"room_id": room_id, "finished_at": None}, sort=(("created_at", 1),)
    )
    return [Packet.from_doc(d) for d in docs]


async def opening(store: DocumentStore, *, now: datetime) -> list[Packet]:
    """Packets whose countdown ended and whose opening no one has told yet: each is marked
    told here, so one process tells it."""
    found = []
    docs = await store.collection(PACKETS).find(
        {"opened_told": False, "finished_at": None, "opens_at": {"$lte": rfc3339(now)}},
        limit=100,
    )
    for doc in docs:
        marked = await store.collection(PACKETS).update_one(
            {"id": doc["id"], "opened_told": False}, {"$set": {"opened_told": True}}
        )
        if marked is not None:
            found.append(Packet.from_doc(marked))
    return found


async def due(store: DocumentStore, *, now: datetime, limit: int = 100) -> list[str]:
    """Packets past their expiry that have not finished."""
    docs = await store.collection(PACKETS).find(
        {"state": PacketState.OPEN.value, "expires_at": {"$lte": rfc3339(now)}},
        sort=(("expires_at", 1),),
        limit=limit,
    )
    return [d["id"] for d in docs]


async def grabs(store: DocumentStore, packet_id: str) -> list[Doc]:
    """Every grab of the packet, in share order (the audit a reveal is checked against)."""
    return await store.collection(GRABS).find({"packet_id": packet_id}, sort=(("n", 1),))


_GRABS: Groups[_Ask, Grab] = Groups(_take_shares, most=256)
