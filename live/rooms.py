"""Live rooms: an account's scheduled, live and ended sessions, and each room's stream key.

A room only moves forward (DESIGN §1)::

    scheduled ──go_live──▶ live ──end──▶ ended
        └────────────────end───────────────▲

``go_live`` is what a WHIP publish (and ``POST …/start``, for a chat-only warm-up) does;
``end`` is the host's or the brand backend's button, or ``end_abandoned`` once the
publisher has been gone longer than the grace period (issue 5). Every move is a guarded
update that names the state it leaves, so racing callers (two processes sweeping abandoned
rooms, a host ending while the sweep runs) move a room once, on any engine.

The stream key is ``lsk_<room id>_<secret>``: 256 random bits, shown once (at creation and at
each rotation) and stored as the SHA-256 of the whole key, so a leaked table holds nothing
usable. The room id in the key lets a person (or a log line) tell which room a key is for;
the check itself looks the room up by the id in the path and compares digests, which have
one length whatever was sent, in constant time.

The account's ``live_room_id`` ("live now", DESIGN §8) is set when a room goes live and,
when it ends, passed to another live room of the account or cleared.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from accounts.accounts import get_account, set_live_room
from accounts.errors import Conflict, DomainError, Invalid, NotFound, Unauthorized
from accounts.tokens import digest, same
from content.blocks import Kind
from content.contents import get_content
from content.fields import check_int, check_object, clean_line, parse_time
from content.uploads import check_image, usable_upload
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index

ROOMS = "rooms"
INDEXES = [
    Index(ROOMS, ("account_id", "listing")),  # an account's rooms, in listing order
    Index(ROOMS, ("account_id", "state", "listing")),  # … in one state
    Index(ROOMS, ("state", "publisher_gone_at")),  # the abandoned-room sweep
]
ID_PREFIX = "room_"
KEY_PREFIX = "lsk_"
MAX_TITLE = 60
MAX_AHEAD = timedelta(days=365)  # a schedule further out is a typo, not a plan
MAX_VIEWERS = 1_000_000_000
SWEEP_BATCH = 100
# The listing order is one integer, so one index and keyset pagination serve it: live rooms
# (newest start first), then scheduled ones (soonest first, those without a time after),
# then ended ones (newest end first). Each band is SPAN wide; times are epoch milliseconds,
# below SPAN until the year 5138.
SPAN = 10**14


class State(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class EndReason(StrEnum):
    HOST = "host"  # a staff member pressed end
    API = "api"  # the brand's backend (an API key) ended it
    PUBLISHER_GONE = "publisher_gone"  # the publisher left and did not come back in time


class ChatMode(StrEnum):
    ALL = "all"  # every signed-in fan
    FOLLOWERS = "followers"  # fans who follow the account
    TIER = "tier"  # members at min_tier or above


MAX_SLOW_MODE_S = 600


@dataclass(frozen=True)
class ChatRules:
    """Who may chat in a room, and how often (on top of the channel's own rate limit)."""

    mode: ChatMode = ChatMode.ALL
    min_tier: int = 0
    slow_mode_s: int = 0

    @classmethod
    def from_doc(cls, doc: Doc) -> ChatRules:
        return cls(
            mode=ChatMode(doc.get("mode", "all")),
            min_tier=int(doc.get("min_tier", 0)),
            slow_mode_s=int(doc.get("slow_mode_s", 0)),
        )


@dataclass(frozen=True)
class Room:
    id: str
    account_id: str
    title: str
    cover: str | None  # an http(s) URL or an image upload id of the account
    state: State
    scheduled_at: str | None
    started_at: str | None
    ended_at: str | None
    ended_reason: EndReason | None
    replay_content_id: str | None
    peak_viewers: int
    publisher_gone_at: str | None  # while live: when the publisher left, if it has
    created_at: str
    updated_at: str
    stream_key: str | None = None  # only in the answers that create or rotate it
    likes: int = 0  # taps on the room's like button, all told
    pin_clicks: int = 0  # clicks followed on its pinned cards (live.pins)
    chat: ChatRules = field(default_factory=lambda: ChatRules())

    @classmethod
    def from_doc(cls, doc: Doc, stream_key: str | None = None) -> Room:
        reason = doc.get("ended_reason")
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            title=doc["title"],
            cover=doc.get("cover"),
            state=State(doc["state"]),
            scheduled_at=doc.get("scheduled_at"),
            started_at=doc.get("started_at"),
            ended_at=doc.get("ended_at"),
            ended_reason=EndReason(reason) if reason else None,
            replay_content_id=doc.get("replay_content_id"),
            peak_viewers=int(doc.get("peak_viewers", 0)),
            publisher_gone_at=doc.get("publisher_gone_at"),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            stream_key=stream_key,
            likes=int(doc.get("likes", 0)),
            pin_clicks=int(doc.get("pin_clicks", 0)),
            chat=ChatRules.from_doc(doc.get("chat") or {}),
        )


@dataclass(frozen=True)
class RoomPage:
    items: list[Room]
    next_cursor: str | None


def room_ended(room_id: str) -> Conflict:
    return Conflict(f"room {room_id} has ended; schedule a new room", code="room_ended")


def _ms(text: str) -> int:
    return int(parse_rfc3339(text).timestamp() * 1000)


def _listing(doc: Doc) -> int:
    state = State(doc["state"])
    if state is State.LIVE:
        return SPAN - _ms(doc["started_at"])
    if state is State.SCHEDULED:
        if doc.get("scheduled_at"):
            return SPAN + _ms(doc["scheduled_at"])
        return 2 * SPAN + _ms(doc["created_at"])
    return 4 * SPAN - _ms(doc["ended_at"])


def _new_key(room_id: str) -> str:
    return f"{KEY_PREFIX}{room_id.removeprefix(ID_PREFIX)}_{secrets.token_urlsafe(32)}"


def _title(value: Any) -> str:
    return clean_line(value, field="title", longest=MAX_TITLE)


async def _cover(store: DocumentStore, account_id: str, value: Any) -> str | None:
    """A cover is an http(s) URL, or an image upload that is the account's own and complete
    (its resize is queued by the caller, as for a post's images)."""
    if value is None:
        return None
    cover = check_image(value, field="cover")
    if "://" not in cover:
        try:
            await usable_upload(store, cover, account_id=account_id)
        except DomainError as exc:
            exc.field = "cover"
            raise
    return cover


def _scheduled_at(value: Any, now: datetime) -> str | None:
    if value is None:
        return None
    moment = parse_time(value, field="scheduled_at")
    if moment <= now:
        raise Invalid("scheduled_at has passed; choose a time ahead", field="scheduled_at")
    if moment > now + MAX_AHEAD:
        raise Invalid("at most a year ahead", field="scheduled_at")
    return rfc3339(moment)


async def create_room(
    store: DocumentStore,
    account_id: str,
    *,
    title: Any,
    cover: Any = None,
    scheduled_at: Any = None,
    now: datetime,
) -> Room:
    """Schedule a room; the answer carries its stream key, which is never shown again."""
    doc: Doc = {
        "id": new_id(ID_PREFIX.rstrip("_")),
        "account_id": account_id,
        "title": _title(title),
        "scheduled_at": _scheduled_at(scheduled_at, now),
        "state": State.SCHEDULED.value,
        "started_at": None,
        "ended_at": None,
        "ended_reason": None,
        "replay_content_id": None,
        "peak_viewers": 0,
        "likes": 0,
        "publisher_gone_at": None,
        "created_at": rfc3339(now),
        "updated_at": rfc3339(now),
    }
    await get_account(store, account_id)
    doc["cover"] = await _cover(store, account_id, cover)
    key = _new_key(doc["id"])
    doc["stream_key_digest"] = digest(key)
    doc["listing"] = _listing(doc)
    await store.collection(ROOMS).insert(doc)
    return Room.from_doc(doc, stream_key=key)


async def _load(store: DocumentStore, room_id: str) -> Doc:
    doc = await store.collection(ROOMS).get(room_id)
    if doc is None:
        raise NotFound("room", room_id)
    return doc


async def get_room(store: DocumentStore, room_id: str) -> Room:
    """Any room: every room is public (a schedule is an announcement); only its stream key
    is secret, and that is never stored."""
    return Room.from_doc(await _load(store, room_id))


async def account_rooms(
    store: DocumentStore,
    account_id: str,
    *,
    state: State | None = None,
    limit: int,
    cursor: str | None,
) -> RoomPage:
    """An account's rooms: live (newest first), scheduled (soonest first), ended (newest
    first); or only those in ``state``, in the same order."""
    await get_account(store, account_id)
    filter: dict[str, Any] = {"account_id": account_id}
    if state is not None:
        filter["state"] = state.value
    page = await store.collection(ROOMS).page(
        filter, sort=[("listing", 1)], limit=limit, cursor=cursor
    )
    return RoomPage([Room.from_doc(d) for d in page.items], page.next_cursor)


async def edit_room(
    store: DocumentStore, room_id: str, body: Mapping[str, Any], *, now: datetime
) -> Room:
    """Change the fields ``body`` names: ``title`` and ``cover`` until the room ends,
    ``scheduled_at`` while it is scheduled (``null`` clears a cover or a time)."""
    check_object(body, field="", allowed={"title", "cover", "scheduled_at"})
    doc = await _load(store, room_id)
    state = State(doc["state"])
    if state is State.ENDED:
        raise room_ended(room_id)
    changes: dict[str, Any] = {}
    if "title" in body:
        changes["title"] = _title(body["title"])
    if "scheduled_at" in body:
        if state is not State.SCHEDULED:
            raise Conflict(
                "the room is live: its time can no longer change",
                code="room_not_scheduled",
                field="scheduled_at",
            )
        changes["scheduled_at"] = _scheduled_at(body["scheduled_at"], now)
    if "cover" in body:
        changes["cover"] = await _cover(store, doc["account_id"], body["cover"])
    changes["listing"] = _listing({**doc, **changes})
    changes["updated_at"] = rfc3339(now)
    saved = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": state.value}, {"$set": changes}
    )
    if saved is None:
        raise Conflict("the room changed meanwhile; reload it and try again", code="room_changed")
    return Room.from_doc(saved)


async def check_stream_key(store: DocumentStore, room_id: str, key: str | None) -> Room:
    """The room a publisher may publish to with ``key``: 404 ``room_not_found`` for an
    unknown room (whatever the key), 401 ``stream_key_required`` without a key and
    ``stream_key_invalid`` for any other key than the room's current one."""
    doc = await _load(store, room_id)
    if not key:
        raise Unauthorized(
            "send the room's stream key as 'Authorization: Bearer <stream key>'",
            code="stream_key_required",
            field="Authorization",
        )
    # Digests are compared, not keys: both sides are 64 hex characters whatever was sent, so
    # the time taken says nothing about how much of a guess was right.
    if not same(digest(key), doc["stream_key_digest"]):
        raise Unauthorized(
            "the stream key is not this room's; copy it again or rotate it",
            code="stream_key_invalid",
            field="Authorization",
        )
    return Room.from_doc(doc)


async def rotate_stream_key(store: DocumentStore, room_id: str, *, now: datetime) -> Room:
    """A new stream key, shown in this answer only; the old one stops working at once (a
    publisher already connected is the media side's to drop)."""
    key = _new_key(room_id)
    rotated = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": {"$ne": State.ENDED.value}},
        {"$set": {"stream_key_digest": digest(key), "updated_at": rfc3339(now)}},
    )
    if rotated is None:
        await _load(store, room_id)
        raise room_ended(room_id)
    return Room.from_doc(rotated, stream_key=key)


async def go_live(store: DocumentStore, room_id: str, *, now: datetime) -> Room:
    """Open the room: scheduled → live (its ``started_at`` is now); a live room stays as it
    is; an ended room answers 409 ``room_ended``. The account shows it as live now."""
    rooms = store.collection(ROOMS)
    async with store.transaction():
        doc = await _load(store, room_id)
        state = State(doc["state"])
        if state is State.ENDED:
            raise room_ended(room_id)
        if state is State.LIVE:
            return Room.from_doc(doc)
        at = rfc3339(now)
        opened = {"state": State.LIVE.value, "started_at": at, "updated_at": at}
        moved = await rooms.update_one(
            {"id": room_id, "state": State.SCHEDULED.value},
            {"$set": {**opened, "listing": _listing({**doc, **opened})}},
        )
        if moved is None:  # another caller moved it first: answer what it did
            return await go_live(store, room_id, now=now)
        await set_live_room(store, doc["account_id"], room_id)
    return Room.from_doc(moved)


async def end_room(store: DocumentStore, room_id: str, *, reason: EndReason, now: datetime) -> Room:
    """End a scheduled or live room for ``reason``. Idempotent: ending an ended room answers
    it as it ended (its first reason and time)."""
    room, _ = await _end(store, room_id, {"state": {"$ne": State.ENDED.value}}, reason, now)
    return room


async def _end(
    store: DocumentStore, room_id: str, guard: dict[str, Any], reason: EndReason, now: datetime
) -> tuple[Room, bool]:
    """End the room if it still matches ``guard`` (true: this call ended it); else answer it
    as it is."""
    at = rfc3339(now)
    closed = {
        "state": State.ENDED.value,
        "ended_at": at,
        "ended_reason": reason.value,
        "updated_at": at,
        "listing": 4 * SPAN - _ms(at),
    }
    async with store.transaction():
        ended = await store.collection(ROOMS).update_one({"id": room_id, **guard}, {"$set": closed})
        if ended is None:
            return Room.from_doc(await _load(store, room_id)), False
        await _pass_live_mark(store, ended["account_id"], room_id)
    return Room.from_doc(ended), True


async def _pass_live_mark(store: DocumentStore, account_id: str, room_id: str) -> None:
    """The account's "live now" leaves an ended room for its latest other live room."""
    others = await store.collection(ROOMS).find(
        {"account_id": account_id, "state": State.LIVE.value, "id": {"$ne": room_id}},
        sort=[("listing", 1)],
        limit=1,
    )
    await set_live_room(store, account_id, others[0]["id"] if others else None, if_room=room_id)


async def publisher_gone(store: DocumentStore, room_id: str, *, at: datetime) -> Room:
    """The publisher of a live room left (its WHIP session closed or failed) at ``at``. The
    first departure counts: reporting it again does not lengthen the grace period. Nothing
    changes in a room that is not live or has no publisher on (``publisher_back`` marks it)."""
    gone = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": State.LIVE.value, "publishing": True},
        {"$set": {"publisher_gone_at": rfc3339(at), "publishing": False}},
    )
    return Room.from_doc(gone) if gone else await get_room(store, room_id)


async def publishers_lost(store: DocumentStore, *, at: datetime) -> list[str]:
    """The process that holds the publishers starts (after a crash, or a stop): no publisher
    is connected to it, so each live room that counted one as connected lost it ``at``, and
    its grace period runs (a room opened without video, by ``go_live`` alone, had none and
    stays as it is). Returns the ids of the live rooms that have had a publisher and wait
    for one now."""
    live = store.collection(ROOMS)
    await live.update_many(
        {"state": State.LIVE.value, "publishing": True},
        {"$set": {"publisher_gone_at": rfc3339(at), "publishing": False}},
    )
    rooms = await live.find({"state": State.LIVE.value})
    return [doc["id"] for doc in rooms if doc.get("publisher_gone_at") is not None]


async def publisher_back(store: DocumentStore, room_id: str) -> Room:
    """A publisher is (again) on a live room, within the grace period: the room stays live.
    409 ``room_ended`` when the sweep ended it first, ``room_not_live`` before ``go_live``."""
    back = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": State.LIVE.value},
        {"$set": {"publisher_gone_at": None, "publishing": True}},
    )
    if back is not None:
        return Room.from_doc(back)
    room = await get_room(store, room_id)
    if room.state is State.ENDED:
        raise room_ended(room_id)
    raise Conflict("the room is not live yet; go live first", code="room_not_live")


async def end_abandoned(store: DocumentStore, *, now: datetime, grace: timedelta) -> list[Room]:
    """End every live room whose publisher has been gone longer than ``grace``; returns the
    rooms this caller ended. Each end is guarded by the departure it saw, so racing sweeps
    end a room once, and a publisher back meanwhile keeps the room live."""
    cutoff = rfc3339(now - grace)
    ended: list[Room] = []
    while True:
        due = await store.collection(ROOMS).find(
            {"state": State.LIVE.value, "publisher_gone_at": {"$lt": cutoff}},
            limit=SWEEP_BATCH,
        )
        if not due:
            return ended
        for doc in due:
            guard = {"state": State.LIVE.value, "publisher_gone_at": doc["publisher_gone_at"]}
            room, mine = await _end(store, doc["id"], guard, EndReason.PUBLISHER_GONE, now)
            if mine:
                ended.append(room)


async def set_replay(store: DocumentStore, room_id: str, content_id: str) -> Room:
    """Link an ended room to its replay, a video content of the same account (the recording
    once it went through the content pipeline). Setting it again replaces it."""
    doc = await _load(store, room_id)
    if doc["state"] != State.ENDED:
        raise Conflict("a replay belongs to an ended room", code="room_not_ended")
    try:
        content = await get_content(store, content_id)
    except NotFound as exc:
        exc.field = "content_id"
        raise
    if content.account_id != doc["account_id"] or content.kind is not Kind.VIDEO:
        raise Invalid("the replay is a video content of the room's account", field="content_id")
    saved = await store.collection(ROOMS).update_one(
        {"id": room_id}, {"$set": {"replay_content_id": content_id}}
    )
    if saved is None:
        raise NotFound("room", room_id)
    return Room.from_doc(saved)


async def set_chat_rules(
    store: DocumentStore, room_id: str, *, mode: Any, min_tier: Any, slow_mode_s: Any, now: datetime
) -> Room:
    """Who may chat in the room and how often; any time before it ends."""
    try:
        chat_mode = ChatMode(mode)
    except ValueError:
        raise Invalid("mode is all, followers or tier", field="mode") from None
    tier = check_int(min_tier, field="min_tier", least=0, most=100)
    if chat_mode is ChatMode.TIER and tier < 1:
        raise Invalid("a tier-only chat names the lowest tier that may chat", field="min_tier")
    slow = check_int(slow_mode_s, field="slow_mode_s", least=0, most=MAX_SLOW_MODE_S)
    rules = {"mode": chat_mode.value, "min_tier": tier, "slow_mode_s": slow}
    saved = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": {"$ne": State.ENDED.value}},
        {"$set": {"chat": rules, "updated_at": rfc3339(now)}},
    )
    if saved is not None:
        return Room.from_doc(saved)
    await get_room(store, room_id)  # NotFound for no such room
    raise room_ended(room_id)


async def add_likes(store: DocumentStore, room_id: str, taps: int) -> Room:
    """Count ``taps`` more likes of a live room (the channel adds them up first)."""
    if taps < 1:
        raise Invalid("likes come one or more at a time", field="count")
    liked = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": State.LIVE.value}, {"$inc": {"likes": taps}}
    )
    if liked is not None:
        return Room.from_doc(liked)
    await get_room(store, room_id)  # NotFound for no such room
    raise Conflict("likes are counted while the room is live", code="room_not_live")


async def record_viewers(store: DocumentStore, room_id: str, viewers: Any) -> Room:
    """Report how many watch a room now; ``peak_viewers`` keeps the largest report. The
    guarded update (only where the peak is lower) makes racing reports keep the maximum."""
    count = check_int(viewers, field="viewers", least=0, most=MAX_VIEWERS)
    raised = await store.collection(ROOMS).update_one(
        {"id": room_id, "state": {"$ne": State.ENDED.value}, "peak_viewers": {"$lt": count}},
        {"$set": {"peak_viewers": count}},
    )
    return Room.from_doc(raised) if raised else await get_room(store, room_id)
