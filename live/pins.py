"""What a room pins above its chat (DESIGN §5 ``pin`` / ``unpin``): for now the host's
announcement, one at a time — pinning another replaces it. A pin is kept after it is taken
down (who took it down, and when), so the room's pins stay on record.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Conflict, Invalid, NotFound
from live.rooms import Room, State
from store.clock import rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index

PINS = "room_pins"
MAX_TEXT = 300  # characters of an announcement

INDEXES = [Index(PINS, ("room_id", "unpinned_at"))]


class Kind(enum.StrEnum):
    ANNOUNCEMENT = "announcement"


@dataclass(frozen=True)
class Pin:
    id: str
    room_id: str
    account_id: str
    kind: Kind
    text: str
    by: str  # the staff member, or "key:<id>" for an API key
    at: str
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
            unpinned_at=doc.get("unpinned_at"),
            unpinned_by=doc.get("unpinned_by"),
        )

    def event(self) -> dict[str, Any]:
        """What viewers see of it (a ``pin`` event, and in a snapshot's ``pins``)."""
        return {"id": self.id, "kind": self.kind.value, "text": self.text, "at": self.at}


def clean_text(text: Any) -> str:
    if not isinstance(text, str) or not (text := text.strip()):
        raise Invalid("write the announcement as a non-empty 'text'", field="text")
    if len(text) > MAX_TEXT:
        raise Invalid(f"an announcement is at most {MAX_TEXT} characters", field="text")
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\u200d" for c in text):
        raise Invalid("an announcement holds no control characters", field="text")
    return text


async def pinned(store: DocumentStore, room_id: str) -> list[Pin]:
    """The room's pins up now, oldest first."""
    docs = await store.collection(PINS).find(
        {"room_id": room_id, "unpinned_at": None}, sort=(("at", 1), ("id", 1))
    )
    return [Pin.from_doc(d) for d in docs]


async def pin(
    store: DocumentStore, room: Room, *, kind: Any, text: Any, by: str, now: datetime
) -> tuple[Pin, list[Pin]]:
    """Pin an announcement in ``room``: the new pin, and the pins it took down (the previous
    announcement). 409 ``room_ended`` once the room is over."""
    try:
        what = Kind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in Kind)
        raise Invalid(f"kind is one of {allowed}", field="kind") from None
    text = clean_text(text)
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
