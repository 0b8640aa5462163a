"""Routes of props (DESIGN §6, §8): the account's catalog, a fan's send in a room (the HTTP
twin of the channel's ``send_prop`` op), and the room's supporter board."""

from __future__ import annotations

from typing import Any

from accounts.accounts import get_account
from accounts.tiers import member_tier
from live import props, rooms
from webapp import schemas_props as s
from webapp.api import ACCOUNT_PATH, FAN, OWNER_EDITOR, STAFF_OR_KEY, Call, Endpoint
from webapp.api_channel import run_op
from webapp.api_contents import speaks_for
from webapp.api_rooms import MODERATOR_ROLES, R
from webapp.auth import Kind


def _prop_out(prop: props.Prop, tier: int | None = None) -> s.PropOut:
    return s.PropOut(
        locked=None if tier is None else prop.min_tier > tier,
        id=prop.id,
        name=prop.name,
        icon=prop.icon,
        price=prop.price,
        min_tier=prop.min_tier,
        effect=prop.effect,
        enabled=prop.enabled,
    )


async def set_props(call: Call) -> s.CatalogOut:
    body: s.CatalogIn = call.body
    items: list[dict[str, Any]] = [p.model_dump(exclude_unset=True) for p in body.props]
    made = await props.set_catalog(
        call.services.store, call.params["account_id"], items, now=call.now
    )
    return s.CatalogOut(props=[_prop_out(p) for p in made])


async def list_props(call: Call) -> s.CatalogOut:
    account_id = (await get_account(call.services.store, call.params["account_id"])).id
    staff = await speaks_for(call.services.store, call.caller, account_id, MODERATOR_ROLES)
    listed = await props.catalog(call.services.store, account_id, enabled_only=not staff)
    tier = None
    if call.caller.kind is Kind.FAN:  # the lock the page shows; the send decides again
        tier = await member_tier(call.services.store, account_id, call.caller.id)
    return s.CatalogOut(props=[_prop_out(p, tier) for p in listed])


async def send_prop(call: Call) -> s.SentOut:
    body: s.SendIn = call.body
    fields = {"op": "send_prop", "prop_id": call.params["prop_id"], "count": body.count}
    result = await run_op(call, fields)
    return s.SentOut(**result)


async def supporters(call: Call) -> s.SupportersOut:
    room = await rooms.get_room(call.services.store, call.params["room_id"])
    board = await props.supporters(call.services.store, room.id, limit=call.query.limit)
    points, fans = await props.room_total(call.services.store, room.id)
    return s.SupportersOut(
        items=[s.SupporterOut(fan_id=x.fan_id, name=x.name, points=x.points) for x in board],
        points=points,
        fans=fans,
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "PUT",
        f"{ACCOUNT_PATH}/props",
        set_props,
        "Set the account's prop catalog",
        "props",
        response=s.CatalogOut,
        body=s.CatalogIn,
        allow=STAFF_OR_KEY,
        roles=OWNER_EDITOR,
        errors=(403, 404, 422),
        description="The whole catalog, in the order fans see it. An item with the `id` of a "
        "prop keeps it; a prop left out is retired (its past sends keep naming it). `price` "
        "in points, `min_tier` the lowest member tier that may send it, `effect` the "
        "animation's name the pages show, `enabled` false to hide it for now.",
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/props",
        list_props,
        "The account's props",
        "props",
        response=s.CatalogOut,
        errors=(404,),
        description="Public: the enabled props, each with its `min_tier` (pages show a lock "
        "on what a fan's tier does not reach; the server decides at send). The account's "
        "staff and API key also see disabled ones.",
    ),
    Endpoint(
        "POST",
        f"{R}/props/{{prop_id}}/sends",
        send_prop,
        "Send a prop in a live room (fan)",
        "props",
        response=s.SentOut,
        body=s.SendIn,
        allow=FAN,
        idempotency="required",
        errors=(401, 403, 404, 409, 422, 428),
        description="The twin of the channel op `send_prop`, whose op id is this "
        "Idempotency-Key: a retry over either never pays twice. The server reads the fan's "
        "tier now (403 `tier_required` below the prop's `min_tier`, whatever a token or "
        "request says), takes `price × count` from the fan's wallet (409 "
        "`insufficient_points`) into the account's `takings`, and shows the prop to every "
        "viewer (a `prop` event with the supporter board).",
    ),
    Endpoint(
        "GET",
        f"{R}/supporters",
        supporters,
        "The room's supporter board",
        "props",
        response=s.SupportersOut,
        query=s.BoardQuery,
        errors=(404, 422),
        description="Public: who sent the most points in props, most first, and the room's totals.",
    ),
]
