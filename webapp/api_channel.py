"""The room channel's HTTP side (DESIGN §5, §8): tickets that let staff speak on a room's
channel as staff, the announcement pinned above the chat, and the HTTP twins of the channel's
ops (chat, like) for clients without a websocket — the same domain function, and the op id
doubles as the Idempotency-Key, so a retry over either transport happens once. Moderation and
chat rules are beside the room's other routes (``api_rooms``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from accounts.errors import Conflict
from live import pins, rooms, tickets
from live.channel import ANONYMOUS, Channel, Viewer
from webapp import schemas_rooms as s
from webapp.api import FAN, STAFF_OR_KEY, Call, Endpoint, Reply, base_url
from webapp.api_contents import speaks_for
from webapp.api_rooms import MODERATOR_ROLES, R, hosted, moderated_room, speaker_of, urls_of
from webapp.auth import Kind


def channel_of(call: Call) -> Channel:
    if call.services.channel is None:
        raise Conflict("the room channel is not running", code="channel_unavailable")
    return call.services.channel


def _pin_out(pin: pins.Pin, *, staff: bool, replaced: Sequence[pins.Pin] = ()) -> s.PinOut:
    shown = pin.event()
    return s.PinOut(
        id=pin.id,
        kind=pin.kind.value,
        text=pin.text,
        at=pin.at,
        service=shown.get("service"),
        coupon=shown.get("coupon"),
        content=shown.get("content"),
        target=pin.target if staff and pin.kind is pins.Kind.SERVICE else None,
        clicks=pin.clicks if staff else None,
        by=pin.by if staff else None,
        replaced=[p.id for p in replaced],
    )


async def viewer_of(call: Call, room_id: str) -> Viewer:
    """The caller as the channel sees it in ``room_id``: a fan, staff (or the API key)
    speaking as the account, or an anonymous viewer."""
    if call.caller.kind is Kind.ANONYMOUS:
        return ANONYMOUS
    if call.caller.kind is Kind.FAN:
        return await channel_of(call).fan(call.caller.id)
    return await channel_of(call).staff(speaker_of(call.caller), room_id)


async def run_op(call: Call, fields: dict[str, Any], room_id: str | None = None) -> dict[str, Any]:
    """Run a channel op in ``room_id`` (default: the path's room) for the caller, as the
    channel would: a fan by its token, staff by their session (with CSRF) or the API key.
    The Idempotency-Key is the op id, so a retry gets the first answer; without one, asking
    again is a new op (a grab or claim then answers the same share with ``repeat``)."""
    room_id = room_id or call.params["room_id"]
    viewer = await viewer_of(call, room_id)
    op_id = call.idempotency_key or f"http-{secrets.token_hex(12)}"
    return await channel_of(call).perform(room_id, viewer, op_id, fields)


async def say(call: Call) -> s.ChatSaidOut:
    body: s.ChatIn = call.body
    result = await run_op(call, {"op": "chat", "text": body.text})
    return s.ChatSaidOut(seq=result["seq"])


async def tap(call: Call) -> s.LikedOut:
    body: s.LikeIn = call.body
    result = await run_op(call, {"op": "like", "count": body.count})
    return s.LikedOut(count=result["count"])


async def issue_ticket(call: Call) -> s.TicketOut:
    room = await moderated_room(call)
    role = await channel_of(call).speaks(speaker_of(call.caller), room.account_id)
    if role is None:  # moderated_room let the caller through: it holds a role
        raise Conflict("the caller works no role at the account", code="role_required")
    ticket = tickets.Ticket(speaker=speaker_of(call.caller), role=role, room_id=room.id)
    token, expires_at = tickets.mint(call.services.secret, ticket, now=call.now)
    base = base_url(call.request, call.services.settings.base_url)
    return s.TicketOut(
        ticket=token,
        expires_at=expires_at,
        role=role,
        channel_url=urls_of(call.services, base, room.id)["channel_url"],
    )


async def pin(call: Call) -> s.PinOut:
    room = await hosted(call)
    body: s.PinIn = call.body
    new, replaced = await channel_of(call).pin(
        room,
        speaker_of(call.caller),
        kind=body.kind,
        text=body.text,
        service=body.service,
        coupon_id=body.coupon_id,
        content_id=body.content_id,
    )
    return _pin_out(new, staff=True, replaced=replaced)


async def click_pin(call: Call) -> Reply:
    result = await run_op(call, {"op": "click", "pin_id": call.params["pin_id"]})
    base = base_url(call.request, call.services.settings.base_url)
    out = s.PinClickOut(
        pin_id=result["pin_id"], click_id=result["click_id"], go=base + result["go"]
    )
    return Reply(out, status=201)


async def list_pins(call: Call) -> s.PinsOut:
    room = await rooms.get_room(call.services.store, call.params["room_id"])
    staff = await speaks_for(call.services.store, call.caller, room.account_id, MODERATOR_ROLES)
    up = await pins.pinned(call.services.store, room.id)
    return s.PinsOut(items=[_pin_out(p, staff=staff) for p in up])


async def unpin(call: Call) -> Reply:
    room = await hosted(call)
    await channel_of(call).unpin(room, speaker_of(call.caller), call.params["pin_id"])
    return Reply(None, status=204)


OP_ERRORS = (401, 403, 404, 409, 422, 429)

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{R}/chat-messages",
        say,
        "Say a line in the room's chat (the channel's chat op over HTTP)",
        "rooms",
        response=s.ChatSaidOut,
        body=s.ChatIn,
        status=201,
        allow=FAN | STAFF_OR_KEY,
        idempotency="optional",
        errors=OP_ERRORS,
        description="The twin of the channel op `chat`, for a client without a websocket: "
        "the same rules (length, rate limit and slow mode, chat mode, mutes and bans, the "
        "sensitive words) and the same `chat` event to every viewer. A fan token speaks as "
        "the fan; staff (session and CSRF token) or the API key as the account, marked. The "
        "Idempotency-Key is the op id: a retry, over HTTP or the channel with that id, "
        "answers the first line's seq and says nothing again.",
    ),
    Endpoint(
        "POST",
        f"{R}/likes",
        tap,
        "Like the live (the channel's like op over HTTP)",
        "rooms",
        response=s.LikedOut,
        body=s.LikeIn,
        allow=FAN,
        idempotency="optional",
        errors=OP_ERRORS,
        description="The twin of the channel op `like`: `count` taps (1–100), added into the "
        "room's next `likes` event. Fans only. The Idempotency-Key is the op id.",
    ),
    Endpoint(
        "POST",
        f"{R}/channel-tickets",
        issue_ticket,
        "A ticket for staff to speak on the room's channel",
        "rooms",
        response=s.TicketOut,
        status=201,
        allow=STAFF_OR_KEY,
        errors=(403, 404),
        description="The account's owners, editors, hosts and moderators (with the session "
        "and its CSRF token), or the API key. Send it as the hello's token within a minute "
        '(`{"op": "hello", "token": ticket}`): the connection chats as staff — under the '
        "account's name, marked with `staff` (the role, or `brand` for an API key) and not "
        "held to the room's chat mode or slow mode. The hello checks the role again.",
    ),
    Endpoint(
        "POST",
        f"{R}/pins",
        pin,
        "Pin an announcement, a service, a coupon or a content above the room's chat",
        "rooms",
        response=s.PinOut,
        body=s.PinIn,
        status=201,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409, 422),
        description="Owners, editors, hosts and the API key; until the room ends (409 "
        "room_ended). `kind` says what: an announcement (`text`), a service card (`service`: "
        "a service link), a coupon card (`coupon_id`, one of the account's with stock left) "
        "or a content card (`content_id`, one of its published contents). One of each kind "
        "at a time: a new one takes the previous one of its kind down (`replaced`). Viewers "
        "get `unpin` for the old and `pin` for the new, and a snapshot's `pins`; they click "
        "a card through `POST …/pins/{pin_id}/clicks` (or the channel's click op) and claim a "
        "coupon with the claim op.",
    ),
    Endpoint(
        "GET",
        f"{R}/pins",
        list_pins,
        "What the room has pinned now",
        "rooms",
        response=s.PinsOut,
        errors=(404,),
        description="Public; `by` only for the account's staff and API key.",
    ),
    Endpoint(
        "DELETE",
        f"{R}/pins/{{pin_id}}",
        unpin,
        "Take a pin down",
        "rooms",
        status=204,
        allow=STAFF_OR_KEY,
        errors=(403, 404),
        description="Viewers get `unpin`. 404 when the pin is not up.",
    ),
    Endpoint(
        "POST",
        f"{R}/pins/{{pin_id}}/clicks",
        click_pin,
        "A click id for a pinned card (the channel's click op over HTTP)",
        "rooms",
        response=s.PinClickOut,
        status=201,
        idempotency="optional",
        errors=(404, 409),
        description="The twin of the channel op `click`, for anyone (anonymous viewers "
        "too): a click id of the caller's own for a pinned service or content card that is "
        "up, minted without a write. Send the viewer to `go`: following it records the click "
        "once and counts it on the pin and the room (the room's `pin_clicks`), then redirects "
        "to the service's H5 entry, the page that opens the mini-program, or the content. The "
        "service receives the id as `la_click` for its conversion reports. 409 "
        "pin_not_clickable for an announcement or a coupon (claim a coupon instead).",
    ),
]
