"""The discover feed (DESIGN §4 ``GET /api/v1/feed/discover``): every account's published
contents, the hottest first.

The ranking is Reddit's "hot" formula, which needs no recomputation as time passes::

    engagement = 3·likes + 4·comments + 2·play_completions + plays + 0.2·views
    score      = log10(1 + engagement) + (published_at − 2025-01-01) / 45000 s

Decay is built in: every 45 000 s (12.5 h) of freshness is worth ten times the engagement, so
a fresh content outranks an older one with the same counts, and an older one needs an order
of magnitude more engagement per 12.5 h of age to stay ahead. Because the time term is fixed
at publication, the ordering between two contents only changes when their counters do, so
the ``score`` is stored on the content (kept with ``$set`` when views and plays move, see
``content.engagement``; caught up by :func:`refresh_scores` for every other counter) and the
feed reads it from an index on ``(status, score)``.

Pagination gives every content exactly once, even while counters move between pages: a
keyset over a score that moves would repeat a content that fell below the cursor and skip one
that rose above it. So the first page takes a *snapshot*, the ids of the
:data:`SNAPSHOT_SIZE` hottest contents in (score, id) order, shared by every caller for
:data:`SNAPSHOT_EVERY` and stored; its cursor is (snapshot, offset). A later page lists the
same snapshot, leaving out what stopped being published meanwhile. The guarantee, then: one
listing shows each content at most once, in the order of the moment it began, and everything
that was published then among the hottest :data:`SNAPSHOT_SIZE`; it ends there, and what is
published later shows up when the listing starts again. A cursor lasts :data:`SNAPSHOT_TTL`.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from content.contents import CONTENTS, COUNTERS, Content, ContentPage, Counters, Status
from store.clock import parse_rfc3339, rfc3339
from store.port import Doc, DocumentStore, DuplicateKeyError, Index, InvalidCursorError

SNAPSHOTS = "discover_snapshots"
INDEXES = [
    Index(CONTENTS, ("status", "score")),  # the ranking
    Index(SNAPSHOTS, ("created_at",)),
]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
GRAVITY_S = 45000.0  # seconds of freshness worth a tenfold engagement (Reddit's constant)
WEIGHTS = {"likes": 3.0, "comments": 4.0, "play_completions": 2.0, "plays": 1.0, "views": 0.2}
SNAPSHOT_SIZE = 500
SNAPSHOT_EVERY = timedelta(minutes=1)
SNAPSHOT_TTL = timedelta(hours=2)
# Likes and comments move counters without knowing about the feed; each snapshot first
# rescores what was published lately (where a counter still moves the order) and whatever has
# no score yet (just published), a bounded batch of each.
RESCORE_WINDOW = timedelta(days=7)
RESCORE_BATCH = 1000


def engagement(counters: Counters) -> float:
    return sum(weight * int(getattr(counters, name)) for name, weight in WEIGHTS.items())


def hot_score(counters: Counters, published_at: str | None) -> float:
    """The time-independent rank of a content (module doc); higher is hotter."""
    published = parse_rfc3339(published_at) if published_at else EPOCH
    age_term = (published - EPOCH).total_seconds() / GRAVITY_S
    return round(math.log10(1.0 + max(0.0, engagement(counters))) + age_term, 9)


def _score_of(doc: Doc) -> float:
    counters = Counters(**{name: int(doc.get(name, 0)) for name in COUNTERS})
    return hot_score(counters, doc.get("published_at"))


async def store_score(store: DocumentStore, doc: Doc) -> Doc:
    """Keep ``doc``'s stored score in step with its counters; returns the document as stored.

    Call it inside the transaction that moved a counter, with the document after the move."""
    score = _score_of(doc)
    if doc.get("score") == score:
        return doc
    after = await store.collection(CONTENTS).update_one(
        {"id": doc["id"]}, {"$set": {"score": score}}
    )
    return after if after is not None else doc


async def rescore(store: DocumentStore, content_id: str) -> None:
    """Bring one content's score up to date (for code that moved a counter by itself)."""
    doc = await store.collection(CONTENTS).get(content_id)
    if doc is not None:
        await store_score(store, doc)


async def refresh_scores(store: DocumentStore, *, now: datetime) -> int:
    """Score what has no score yet and rescore what was published lately; returns how many
    scores changed."""
    contents = store.collection(CONTENTS)
    published = Status.PUBLISHED.value
    unscored = await contents.find({"status": published, "score": None}, limit=RESCORE_BATCH)
    recent = await contents.find(
        {"status": published, "published_at": {"$gte": rfc3339(now - RESCORE_WINDOW)}},
        sort=[("published_at", -1)],
        limit=RESCORE_BATCH,
    )
    changed = 0
    for doc in {d["id"]: d for d in [*unscored, *recent]}.values():
        if (await store_score(store, doc)) is not doc:
            changed += 1
    return changed


def _snapshot_id(now: datetime) -> str:
    bucket = int((now - EPOCH).total_seconds() // SNAPSHOT_EVERY.total_seconds())
    return f"dsc_{bucket}"


async def _snapshot(store: DocumentStore, now: datetime) -> Doc:
    snapshots = store.collection(SNAPSHOTS)
    snapshot_id = _snapshot_id(now)
    found = await snapshots.get(snapshot_id)
    if found is not None:
        return found
    await refresh_scores(store, now=now)
    ranked = await store.collection(CONTENTS).find(
        {"status": Status.PUBLISHED.value},
        sort=[("score", -1), ("id", -1)],
        limit=SNAPSHOT_SIZE,
    )
    doc: Doc = {"id": snapshot_id, "ids": [d["id"] for d in ranked], "created_at": rfc3339(now)}
    try:
        await snapshots.insert(doc)
    except DuplicateKeyError:  # another request took this minute's snapshot first
        return await snapshots.get(snapshot_id) or doc
    await snapshots.delete_many({"created_at": {"$lt": rfc3339(now - SNAPSHOT_TTL)}})
    return doc


def _encode(snapshot_id: str, offset: int) -> str:
    raw = json.dumps([snapshot_id, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        snapshot_id, offset = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("the cursor is not one this server issued") from exc
    if (
        not isinstance(snapshot_id, str)
        or not snapshot_id.startswith("dsc_")
        or len(snapshot_id) > 40
        or not isinstance(offset, int)
        or isinstance(offset, bool)
        or not 0 <= offset <= SNAPSHOT_SIZE
    ):
        raise InvalidCursorError("the cursor is not one this server issued")
    return snapshot_id, offset


async def discover_feed(
    store: DocumentStore, *, limit: int, cursor: str | None, now: datetime
) -> ContentPage:
    """A page of the discover feed (module doc for the order and what a listing guarantees)."""
    if cursor is None:
        snapshot, offset = await _snapshot(store, now), 0
    else:
        snapshot_id, offset = _decode(cursor)
        found = await store.collection(SNAPSHOTS).get(snapshot_id)
        if found is None:
            raise InvalidCursorError("this listing has expired")
        snapshot = found
    ids: list[str] = snapshot["ids"][offset : offset + limit]
    docs: dict[str, Any] = {}
    if ids:
        # By primary key alone: with a status term too, SQLite may prefer the status index
        # and walk every published content for twenty ids.
        found_docs = await store.collection(CONTENTS).find({"id": {"$in": ids}})
        docs = {d["id"]: d for d in found_docs if d["status"] == Status.PUBLISHED}
    end = offset + len(ids)
    return ContentPage(
        [Content.from_doc(docs[i]) for i in ids if i in docs],
        _encode(snapshot["id"], end) if end < len(snapshot["ids"]) else None,
    )
