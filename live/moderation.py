"""Chat moderation of a brand's rooms (issue 6): staff delete a message, mute a fan in a room
for a time, ban a fan from every room of the account (and lift it), or clear the chat. Every
action is audited, and the room's channel hears of it as a ``moderation`` event so every
viewer's chat updates; ``check_can_chat`` is what the chat op asks first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from accounts.errors import Forbidden, Invalid, NotFound
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index

MUTES = "chat_mutes"
BANS = "chat_bans"
LOG = "moderation_log"
MAX_MUTE_MINUTES = 7 * 24 * 60

INDEXES = [
    Index(MUTES, ("room_id", "fan_id"), unique=True),
    Index(BANS, ("account_id", "fan_id"), unique=True),
    Index(LOG, ("room_id", "at")),
    Index(LOG, ("room_id", "action")),
]


class Action(enum.StrEnum):
    DELETE = "delete"  # one chat message, by its seq
    MUTE = "mute"  # a fan, in this room, for minutes
    BAN = "ban"  # a fan, from every room of the account
    UNBAN = "unban"
    CLEAR = "clear"  # every chat message so far


@dataclass(frozen=True)
class Record:
    """One audited action, as the log keeps it and the channel tells it."""

    id: str
    room_id: str
    account_id: str
    action: Action
    by: str  # the staff member, or "key:<id>" for an API key
    at: str
    fan_id: str | None = None
    seq: int | None = None
    until: str | None = None

    @classmethod
    def from_doc(cls, doc: Doc) -> Record:
        return cls(
            id=doc["id"],
            room_id=doc["room_id"],
            account_id=doc["account_id"],
            action=Action(doc["action"]),
            by=doc["by"],
            at=doc["at"],
            fan_id=doc.get("fan_id"),
            seq=doc.get("seq"),
            until=doc.get("until"),
        )

    def event(self) -> dict[str, Any]:
        """The ``moderation`` event's data: what viewers' chat must do, not who did it."""
        told: dict[str, Any] = {"action": self.action.value}
        for name in ("fan_id", "seq", "until"):
            if (value := getattr(self, name)) is not None:
                told[name] = value
        return told


def _fan(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("fan_") or len(value) > 64:
        raise Invalid("fan_id names a fan (fan_…)", field="fan_id")
    return value


async def act(
    store: DocumentStore,
    *,
    room_id: str,
    account_id: str,
    action: Any,
    by: str,
    now: datetime,
    fan_id: Any = None,
    seq: Any = None,
    minutes: Any = None,
    chat_seqs: frozenset[int] = frozenset(),
    last_seq: int = 0,
) -> Record:
    """Carry out one moderation action and audit it; the record (for the channel event).
    A delete names one of ``chat_seqs`` (the chat messages the room's history keeps); a
    clear hides everything up to ``last_seq``."""
    try:
        kind = Action(action)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise Invalid(f"action is one of {allowed}", field="action") from None
    doc: Doc = {
        "id": new_id("mod"),
        "room_id": room_id,
        "account_id": account_id,
        "action": kind.value,
        "by": by,
        "at": rfc3339(now),
    }
    if kind is Action.DELETE:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq not in chat_seqs:
            raise Invalid("seq names a chat message of this room", field="seq")
        doc["seq"] = seq
    elif kind is Action.CLEAR:
        doc["seq"] = last_seq  # everything up to here
    else:
        doc["fan_id"] = fan = _fan(fan_id)
        if kind is Action.MUTE:
            if isinstance(minutes, bool) or not isinstance(minutes, int):
                raise Invalid(
                    f"minutes is a whole number up to {MAX_MUTE_MINUTES}", field="minutes"
                )
            if not 1 <= minutes <= MAX_MUTE_MINUTES:
                raise Invalid(f"minutes is from 1 to {MAX_MUTE_MINUTES}", field="minutes")
            until = rfc3339(now + timedelta(minutes=minutes))
            doc["until"] = until
            await store.collection(MUTES).update_one(
                {"room_id": room_id, "fan_id": fan},
                {"$set": {"until": until, "by": by}, "$setOnInsert": {"id": new_id("mut")}},
                upsert=True,
            )
        elif kind is Action.BAN:
            await store.collection(BANS).update_one(
                {"account_id": account_id, "fan_id": fan},
                {"$set": {"by": by, "at": rfc3339(now)}, "$setOnInsert": {"id": new_id("ban")}},
                upsert=True,
            )
        elif (
            await store.collection(BANS).delete_one({"account_id": account_id, "fan_id": fan})
            is None
        ):
            raise NotFound("ban", fan, field="fan_id")
    await store.collection(LOG).insert(doc)
    return Record.from_doc(doc)


async def check_can_chat(
    store: DocumentStore, *, room_id: str, account_id: str, fan_id: str, now: datetime
) -> None:
    """Forbidden ``banned`` or ``muted`` (with until when) for a fan who may not chat."""
    if await store.collection(BANS).find_one({"account_id": account_id, "fan_id": fan_id}):
        raise Forbidden("this account's staff banned you from its rooms' chat", code="banned")
    mute = await store.collection(MUTES).find_one({"room_id": room_id, "fan_id": fan_id})
    if mute is not None and parse_rfc3339(mute["until"]) > now:
        raise Forbidden(f"you are muted in this room until {mute['until']}", code="muted")


async def hidden(store: DocumentStore, room_id: str) -> tuple[set[int], int]:
    """The chat a snapshot leaves out: the seqs deleted, and every seq up to the last clear."""
    log = store.collection(LOG)
    deleted = await log.find({"room_id": room_id, "action": Action.DELETE.value})
    cleared = await log.find(
        {"room_id": room_id, "action": Action.CLEAR.value}, sort=(("at", -1), ("id", -1)), limit=1
    )
    return {int(d["seq"]) for d in deleted}, int(cleared[0]["seq"]) if cleared else 0


async def history(store: DocumentStore, room_id: str, limit: int = 100) -> list[Record]:
    """The room's audit log, newest first."""
    docs = await store.collection(LOG).find(
        {"room_id": room_id}, sort=(("at", -1), ("id", -1)), limit=limit
    )
    return [Record.from_doc(d) for d in docs]
