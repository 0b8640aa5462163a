"""Views and plays of published contents, and the completion rate shown with the counters.

A **view** is a content shown to someone (its page or card opened). One viewer's views of one
content count once per :data:`WINDOW` (fixed 30-minute windows). The viewer is the fan, staff
member or brand backend behind the credential; an anonymous viewer is the client-chosen
``viewer`` id *together with* the client's address, so a client cannot pose as someone else
elsewhere. And since an anonymous client can make up ids at will, each address counts at most
:data:`PER_SOURCE` views of a content per window, whoever it claims to be.

A **play** is a video started by the player, in the order a player sends them:

1. on its first ``playing`` event, ``POST …/plays`` → a ``play_id``; the play counts (up to
   :data:`PLAYS_PER_VIEWER` per viewer and :data:`PER_SOURCE` per address per window, so a
   replay counts and a loop cannot inflate without bound);
2. as it plays (e.g. on ``timeupdate`` once it passes 90%, and on ``ended`` with
   ``completed``), ``PATCH …/plays/{play_id} {watched_s}``: seconds played. When they reach
   :data:`COMPLETE_AT` of the video's duration, the play counts one completion, once per play,
   and only for a play that counted.

The server does not take ``watched_s`` on trust: a play cannot have played more than
:data:`MAX_RATE` times the time since it started (the fastest playback rate a player offers)
plus :data:`SLACK`, so a completion sent at once after the start is not one.

``completion_rate`` is completions / plays, computed when read; counters are integers.
Counter moves happen in one transaction with the records that dedupe them, and keep the
content's discover score in step (``content.discover``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from accounts.errors import Conflict, Invalid, NotFound
from content import discover
from content.blocks import Kind
from content.contents import CONTENTS, COUNTERS, Counters, Status, load
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, DuplicateKeyError, Index

MARKS = "engagement_marks"  # per (what, content, viewer or address, window): how many counted
PLAYS = "plays"
STATE = "engagement_state"
INDEXES = [Index(MARKS, ("expires_at",)), Index(PLAYS, ("started_at",))]
WINDOW = timedelta(minutes=30)
VIEWS_PER_VIEWER = 1
PLAYS_PER_VIEWER = 10
PER_SOURCE = 200  # per address: generous, as an office or a carrier's NAT shares one
COMPLETE_AT = 0.9
MAX_RATE = 2.0
SLACK = timedelta(seconds=2)
MAX_WATCHED_S = 86400.0
PLAY_TTL = timedelta(hours=6)  # a play left open longer can no longer complete
PURGE_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class ViewResult:
    counted: bool  # false: this viewer's view in this window was counted already
    counters: Counters


@dataclass(frozen=True)
class PlayResult:
    play_id: str
    counted: bool  # start: the play counted; report: this report counted the completion
    completed: bool
    watched_s: float
    counters: Counters


def completion_rate(counters: Counters) -> float:
    if counters.plays <= 0:
        return 0.0
    return round(min(1.0, counters.play_completions / counters.plays), 4)


def counters_doc(counters: Counters) -> dict[str, int | float]:
    """The counters as shown to clients: the integers and the completion rate."""
    shown: dict[str, int | float] = {name: getattr(counters, name) for name in COUNTERS}
    shown["completion_rate"] = completion_rate(counters)
    return shown


def _counters(doc: Doc) -> Counters:
    return Counters(**{name: int(doc.get(name, 0)) for name in COUNTERS})


async def _published(store: DocumentStore, content_id: str) -> Doc:
    doc = await load(store, content_id)
    if doc["status"] != Status.PUBLISHED:
        raise NotFound("content", content_id, field="content_id")
    return doc


def _video(doc: Doc) -> float | None:
    """A played content's duration in seconds (None while unknown)."""
    if doc["kind"] != Kind.VIDEO:
        raise Conflict("only a video is played", code="not_a_video", field="content_id")
    duration = (doc.get("media") or {}).get("duration_s")
    return float(duration) if isinstance(duration, int | float) and duration > 0 else None


def _window(now: datetime) -> tuple[int, datetime]:
    """The fixed window ``now`` falls in: its number and its end."""
    size = WINDOW.total_seconds()
    number = int(now.timestamp() // size)
    return number, datetime.fromtimestamp((number + 1) * size, tz=now.tzinfo)


async def _take(
    store: DocumentStore, what: str, content_id: str, who: str, limit: int, now: datetime
) -> bool:
    """Count one more ``what`` for ``who`` in this window if fewer than ``limit`` did."""
    number, ends = _window(now)
    key = "\x00".join((what, content_id, who, str(number)))
    mark_id = "mk_" + hashlib.sha256(key.encode()).hexdigest()[:40]
    marks = store.collection(MARKS)
    await marks.update_one(
        {"id": mark_id}, {"$setOnInsert": {"count": 0, "expires_at": rfc3339(ends)}}, upsert=True
    )
    taken = await marks.update_one({"id": mark_id, "count": {"$lt": limit}}, {"$inc": {"count": 1}})
    return taken is not None


async def _bump(store: DocumentStore, content_id: str, counter: str) -> Doc:
    after = await store.collection(CONTENTS).update_one({"id": content_id}, {"$inc": {counter: 1}})
    assert after is not None  # read in this transaction
    return await discover.store_score(store, after)


async def record_view(
    store: DocumentStore, content_id: str, *, viewer: str, source: str, now: datetime
) -> ViewResult:
    """Count a view of a published content by ``viewer`` from ``source`` (an opaque key of
    the client's address) unless it was counted in this window or the address used its own."""
    async with store.transaction():
        doc = await _published(store, content_id)
        counted = await _take(
            store, "view", content_id, viewer, VIEWS_PER_VIEWER, now
        ) and await _take(store, "view-source", content_id, source, PER_SOURCE, now)
        if counted:
            doc = await _bump(store, content_id, "views")
    await _purge_now_and_then(store, now)
    return ViewResult(counted, _counters(doc))


async def start_play(
    store: DocumentStore, content_id: str, *, viewer: str, source: str, now: datetime
) -> PlayResult:
    """A player started a published video: a new play, counted within the limits."""
    async with store.transaction():
        doc = await _published(store, content_id)
        _video(doc)
        counted = await _take(
            store, "play", content_id, viewer, PLAYS_PER_VIEWER, now
        ) and await _take(store, "play-source", content_id, source, PER_SOURCE, now)
        play: Doc = {
            "id": new_id("ply"),
            "content_id": content_id,
            "counted": counted,
            "started_at": rfc3339(now),
            "watched_s": 0.0,
            "completed_at": None,
        }
        await store.collection(PLAYS).insert(play)
        if counted:
            doc = await _bump(store, content_id, "plays")
    await _purge_now_and_then(store, now)
    return PlayResult(play["id"], counted, False, 0.0, _counters(doc))


def _seconds(value: Any) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_WATCHED_S
    ):
        raise Invalid(f"seconds played, from 0 to {MAX_WATCHED_S:g}", field="watched_s")
    return float(value)


async def report_play(
    store: DocumentStore,
    content_id: str,
    play_id: str,
    *,
    watched_s: Any,
    completed: bool = False,
    now: datetime,
) -> PlayResult:
    """How far a play got: ``watched_s`` seconds played; ``completed`` when the player ended.

    Reaching :data:`COMPLETE_AT` of the duration counts one completion, at most once per play;
    a report for a play that already completed, or never counted, counts nothing."""
    watched = _seconds(watched_s)
    plays = store.collection(PLAYS)
    async with store.transaction():
        doc = await _published(store, content_id)
        duration = _video(doc)
        play = await plays.find_one({"id": play_id, "content_id": content_id})
        if play is None:
            raise NotFound("play", play_id, field="play_id")
        if completed and duration is not None:
            watched = max(watched, duration)
        started = parse_rfc3339(play["started_at"])
        possible = max(timedelta(0), now - started) * MAX_RATE + SLACK
        watched = max(float(play["watched_s"]), min(watched, possible.total_seconds()))
        if duration is None:
            reached = completed  # no duration to compare with: the player's word only
        else:
            reached = watched >= COMPLETE_AT * duration
        changes: dict[str, Any] = {"watched_s": watched}
        counted = False
        if reached and play["completed_at"] is None:
            changes["completed_at"] = rfc3339(now)
            done = await plays.update_one({"id": play_id, "completed_at": None}, {"$set": changes})
            counted = done is not None and bool(play["counted"])
            if counted:
                doc = await _bump(store, content_id, "play_completions")
        elif watched > float(play["watched_s"]):
            await plays.update_one({"id": play_id}, {"$set": changes})
    return PlayResult(
        play_id,
        counted,
        reached or play["completed_at"] is not None,
        watched,
        _counters(doc),
    )


async def purge(store: DocumentStore, *, now: datetime) -> int:
    """Forget the records that no longer matter: windows that ended and plays too old to
    complete. Returns how many went."""
    marks = await store.collection(MARKS).delete_many({"expires_at": {"$lte": rfc3339(now)}})
    plays = await store.collection(PLAYS).delete_many(
        {"started_at": {"$lt": rfc3339(now - PLAY_TTL)}}
    )
    return marks + plays


async def _purge_now_and_then(store: DocumentStore, now: datetime) -> None:
    """Purge at most once per :data:`PURGE_EVERY` across every process: the one whose guarded
    update moves the next time on does it. One read by id on the usual path."""
    state = store.collection(STATE)
    found = await state.get("purge")
    if found is not None and found["next_at"] > rfc3339(now):
        return
    after = rfc3339(now + PURGE_EVERY)
    if found is None:
        try:
            await state.insert({"id": "purge", "next_at": after})
        except DuplicateKeyError:
            return  # another request just started the schedule
        return
    moved = await state.update_one(
        {"id": "purge", "next_at": found["next_at"]}, {"$set": {"next_at": after}}
    )
    if moved is not None:
        await purge(store, now=now)
