"""Polls: the account's staff ask a question with two to six answers; fans vote once each
until it closes. A poll may belong to one of the account's rooms, where its results ride the
room channel (``poll`` events); elsewhere a widget reads them.

A vote is one document per (poll, fan) — a unique index — written in the same transaction
as the poll's count of that answer, so the counts always add up to the votes. Asking again
with the same answer is the first vote again (``repeat``); another answer is refused: a fan
votes once. The tier is read at each vote, never taken from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from accounts.errors import Conflict, Forbidden, Invalid, NotFound
from accounts.tiers import member_tier
from content.fields import check_int, check_list, clean_line
from live.rooms import Room, State
from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Index, retry_if_raced

POLLS = "polls"
VOTES = "poll_votes"
INDEXES = [
    Index(POLLS, ("account_id", "created_at")),
    Index(POLLS, ("room_id", "created_at")),
    Index(VOTES, ("poll_id", "fan_id"), unique=True),
]
MAX_QUESTION = 120
MAX_OPTION = 40
LEAST_OPTIONS, MOST_OPTIONS = 2, 6
LONGEST_S = 30 * 86_400  # a poll is open a month at most
SHORTEST_S = 10


@dataclass(frozen=True)
class Poll:
    id: str
    account_id: str
    room_id: str | None
    question: str
    options: tuple[str, ...]
    counts: tuple[int, ...]
    min_tier: int
    closes_at: str
    created_at: str

    @classmethod
    def from_doc(cls, doc: Doc) -> Poll:
        options = tuple(doc["options"])
        return cls(
            id=doc["id"],
            account_id=doc["account_id"],
            room_id=doc.get("room_id"),
            question=doc["question"],
            options=options,
            counts=tuple(int(doc["counts"].get(f"o{i}", 0)) for i in range(len(options))),
            min_tier=doc["min_tier"],
            closes_at=doc["closes_at"],
            created_at=doc["created_at"],
        )

    @property
    def total(self) -> int:
        return sum(self.counts)

    def open(self, now: datetime) -> bool:
        return now < parse_rfc3339(self.closes_at)

    def told(self, now: datetime) -> dict[str, Any]:
        """What anyone sees of it (a ``poll`` event, a widget's read)."""
        return {
            "id": self.id,
            "question": self.question,
            "options": list(self.options),
            "counts": list(self.counts),
            "total": self.total,
            "min_tier": self.min_tier,
            "closes_at": self.closes_at,
            "state": "open" if self.open(now) else "closed",
        }


@dataclass(frozen=True)
class Vote:
    poll: Poll
    option: int
    repeat: bool


async def create_poll(
    store: DocumentStore,
    account_id: str,
    *,
    question: Any,
    options: Any,
    closes_in_s: Any,
    min_tier: Any = 0,
    room: Room | None = None,
    now: datetime,
) -> Poll:
    """A poll of the account (in ``room`` when given: one of the account's, not ended)."""
    question = clean_line(question, field="question", longest=MAX_QUESTION)
    listed = check_list(options, field="options", most=MOST_OPTIONS)
    if len(listed) < LEAST_OPTIONS:
        raise Invalid(f"a poll has {LEAST_OPTIONS} to {MOST_OPTIONS} options", field="options")
    answers = [
        clean_line(o, field=f"options.{i}", longest=MAX_OPTION) for i, o in enumerate(listed)
    ]
    for i, answer in enumerate(answers):
        if answer in answers[:i]:
            raise Invalid("each option is different", field=f"options.{i}")
    seconds = check_int(closes_in_s, field="closes_in_s", least=SHORTEST_S, most=LONGEST_S)
    min_tier = check_int(min_tier, field="min_tier", least=0, most=100)
    if room is not None:
        if room.account_id != account_id:
            raise Invalid("the room is another account's", code="unknown_room", field="room_id")
        if room.state is State.ENDED:
            raise Conflict("the room has ended", code="room_ended")
    doc: Doc = {
        "id": new_id("pol"),
        "account_id": account_id,
        "room_id": room.id if room else None,
        "question": question,
        "options": answers,
        "counts": {},
        "min_tier": min_tier,
        "closes_at": rfc3339(now + timedelta(seconds=seconds)),
        "created_at": rfc3339(now),
    }
    await store.collection(POLLS).insert(doc)
    return Poll.from_doc(doc)


async def get_poll(store: DocumentStore, poll_id: str) -> Poll:
    doc = await store.collection(POLLS).get(poll_id)
    if doc is None:
        raise NotFound("poll", poll_id)
    return Poll.from_doc(doc)


async def vote_of(store: DocumentStore, poll_id: str, fan_id: str) -> int | None:
    doc = await store.collection(VOTES).get(f"{poll_id}/{fan_id}")
    return None if doc is None else int(doc["option"])


async def vote(
    store: DocumentStore, poll_id: str, *, fan_id: str, option: Any, now: datetime
) -> Vote:
    """The fan's vote, once: the same answer again is the first vote (``repeat``); another
    is 409 ``already_voted``; 409 ``poll_closed`` after it closes; 403 ``tier_required``."""
    poll = await get_poll(store, poll_id)
    option = check_int(option, field="option", least=0, most=len(poll.options) - 1)
    # The same fan's other vote may win the race (the vote's id is poll/fan).
    return await retry_if_raced(("id", "fan_id"), lambda: _vote(store, poll, fan_id, option, now))


async def _vote(store: DocumentStore, poll: Poll, fan_id: str, option: int, now: datetime) -> Vote:
    first = await vote_of(store, poll.id, fan_id)
    if first is not None:
        if first != option:
            raise Conflict(
                f"you voted for {poll.options[first]!r} already; a fan votes once",
                code="already_voted",
                field="option",
            )
        return Vote(await get_poll(store, poll.id), first, repeat=True)
    if not poll.open(now):
        raise Conflict(f"the poll closed at {poll.closes_at}", code="poll_closed")
    if await member_tier(store, poll.account_id, fan_id) < poll.min_tier:
        raise Forbidden(
            f"this poll is for members of tier {poll.min_tier} and up", code="tier_required"
        )
    async with store.transaction():
        await store.collection(VOTES).insert(
            {
                "id": f"{poll.id}/{fan_id}",
                "poll_id": poll.id,
                "fan_id": fan_id,
                "option": option,
                "at": rfc3339(now),
            }
        )
        done = await store.collection(POLLS).update_one(
            {"id": poll.id}, {"$inc": {f"counts.o{option}": 1}}
        )
    assert done is not None
    return Vote(Poll.from_doc(done), option, repeat=False)


async def account_polls(store: DocumentStore, account_id: str, *, limit: int = 20) -> list[Poll]:
    docs = await store.collection(POLLS).find(
        {"account_id": account_id}, sort=(("created_at", -1), ("id", -1)), limit=limit
    )
    return [Poll.from_doc(d) for d in docs]


async def room_polls(store: DocumentStore, room_id: str, *, now: datetime) -> list[Poll]:
    """The room's polls still open (a snapshot's ``polls``)."""
    docs = await store.collection(POLLS).find(
        {"room_id": room_id, "closes_at": {"$gt": rfc3339(now)}}, sort=(("created_at", 1),)
    )
    return [Poll.from_doc(d) for d in docs]
