"""Poll routes: the account's staff ask, fans vote once (the HTTP twin of the channel's
``vote`` op when the poll is in a room), anyone reads the results."""

from __future__ import annotations

from typing import Any

from accounts.accounts import get_account
from accounts.errors import Invalid, NotFound
from live import polls, rooms
from live.channel import vote_result
from webapp import schemas_polls as s
from webapp.api import ACCOUNT_PATH, FAN, STAFF_OR_KEY, Call, Endpoint, Reply
from webapp.api_channel import channel_of, run_op
from webapp.api_rooms import HOST_ROLES
from webapp.auth import Kind

P = "/api/v1/polls/{poll_id}"


def _out(poll: polls.Poll, call: Call, mine: int | None = None) -> s.PollOut:
    return s.PollOut(
        **poll.told(call.now), account_id=poll.account_id, room_id=poll.room_id, mine=mine
    )


async def create_poll(call: Call) -> s.PollOut:
    body: s.PollIn = call.body
    store = call.services.store
    room = None
    if body.room_id is not None:
        try:
            room = await rooms.get_room(store, body.room_id)
        except NotFound:
            raise Invalid("no such room", code="unknown_room", field="room_id") from None
    poll = await polls.create_poll(
        store,
        call.params["account_id"],
        question=body.question,
        options=body.options,
        closes_in_s=body.closes_in_s,
        min_tier=body.min_tier,
        room=room,
        now=call.now,
    )
    if room is not None:
        await channel_of(call).poll_changed(poll, "created")
    return _out(poll, call)


async def list_polls(call: Call) -> s.PollsOut:
    account = await get_account(call.services.store, call.params["account_id"])
    found = await polls.account_polls(call.services.store, account.id)
    return s.PollsOut(items=[_out(p, call) for p in found])


async def read_poll(call: Call) -> s.PollOut:
    store = call.services.store
    poll = await polls.get_poll(store, call.params["poll_id"])
    mine = None
    if call.caller.kind is Kind.FAN:
        mine = await polls.vote_of(store, poll.id, call.caller.id)
    return _out(poll, call, mine)


async def cast_vote(call: Call) -> Reply:
    body: s.VoteIn = call.body
    store = call.services.store
    poll = await polls.get_poll(store, call.params["poll_id"])
    if poll.room_id is not None:  # the channel's op, so the room hears the results
        result = await run_op(
            call, {"op": "vote", "poll_id": poll.id, "option": body.option}, poll.room_id
        )
    else:
        got = await polls.vote(
            store, poll.id, fan_id=call.caller.id, option=body.option, now=call.now
        )
        result = vote_result(got, call.now)
    out = s.VoteOut(
        **result, account_id=poll.account_id, room_id=poll.room_id, mine=result["option"]
    )
    return Reply(out, status=200 if result["repeat"] else 201)


def amend_document(document: dict[str, Any]) -> None:
    """What the endpoint table cannot say: a repeated vote answers 200 (the first was 201)."""
    op = document["paths"][f"{P}/votes"]["post"]
    op["responses"]["200"] = {
        **op["responses"]["201"],
        "description": "A repeat: the fan's vote, with repeat true and nothing counted",
    }


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{ACCOUNT_PATH}/polls",
        create_poll,
        "Ask a poll",
        "polls",
        response=s.PollOut,
        body=s.PollIn,
        status=201,
        allow=STAFF_OR_KEY,
        roles=HOST_ROLES,
        idempotency="optional",
        errors=(403, 404, 409, 422),
        description="Owners, editors, hosts and the API key. 2–6 options, open `closes_in_s`, "
        "votes from `min_tier` up. With `room_id` (one of the account's rooms, not ended) the "
        "room's viewers get a `poll` event (created) and the results once a second while "
        "votes come in; `<la-poll poll>` shows it anywhere.",
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/polls",
        list_polls,
        "An account's polls, newest first",
        "polls",
        response=s.PollsOut,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        P,
        read_poll,
        "A poll and its results",
        "polls",
        response=s.PollOut,
        errors=(404,),
        description="Public. With a fan token also `mine`: the option the fan chose.",
    ),
    Endpoint(
        "POST",
        f"{P}/votes",
        cast_vote,
        "Vote in a poll (fan)",
        "polls",
        response=s.VoteOut,
        body=s.VoteIn,
        status=201,
        allow=FAN,
        idempotency="optional",
        errors=(401, 403, 404, 409, 422),
        description="Once per fan: the same option again answers the first vote (200, "
        "`repeat`); another option is 409 already_voted; 409 poll_closed after `closes_at`; "
        "403 tier_required below `min_tier` (read from the account's members at each vote). "
        "In a room, the twin of the channel op `vote` (the Idempotency-Key is the op id).",
    ),
]
