"""Routes of red packets (DESIGN §6, §8): the host's drop, a fan's grab (the HTTP twin of the
channel's ``grab`` op), and the packet with its audit and, once finished, its reveal."""

from __future__ import annotations

from live import red_packets
from webapp import schemas_red_packets as s
from webapp.api import FAN, STAFF_OR_KEY, Call, Endpoint
from webapp.api_channel import channel_of, run_op
from webapp.api_rooms import R, hosted
from webapp.auth import Kind

P = "/api/v1/red-packets/{red_packet_id}"


def _out(packet: red_packets.Packet, call: Call, mine: int | None = None) -> s.RedPacketOut:
    told = red_packets.told(packet, call.now)
    reveal = told.pop("reveal")
    return s.RedPacketOut(
        **told,
        room_id=packet.room_id,
        reveal=None if reveal is None else s.RevealOut(**reveal),
        refunded=packet.refunded,
        mine=mine,
    )


async def drop_red_packet(call: Call) -> s.RedPacketOut:
    room = await hosted(call)
    body: s.DropIn = call.body
    packet = await red_packets.drop(
        call.services.store,
        room,
        total=body.total,
        count=body.count,
        mode=body.mode,
        min_tier=body.min_tier,
        opens_in_s=body.opens_in_s,
        expires_in_s=body.expires_in_s,
        now=call.now,
    )
    await channel_of(call).red_packet_changed(packet, "dropped")
    return _out(packet, call)


async def read_red_packet(call: Call) -> s.RedPacketOut:
    store = call.services.store
    packet = await red_packets.get_packet(store, call.params["red_packet_id"], with_shares=True)
    mine = None
    if call.caller.kind is Kind.FAN:
        grabbed = await red_packets.grab_of(store, packet.id, call.caller.id)
        mine = grabbed["amount"] if grabbed else None
    out = _out(packet, call, mine)
    if packet.finished_at is not None:  # the audit: every grab, in share order
        out.grabs = [
            s.GrabLineOut(n=g["n"], fan_id=g["fan_id"], amount=g["amount"], at=g["at"])
            for g in await red_packets.grabs(store, packet.id)
        ]
    return out


async def grab_red_packet(call: Call) -> s.GrabOut:
    packet = await red_packets.get_packet(call.services.store, call.params["red_packet_id"])
    op = {"op": "grab", "red_packet_id": packet.id}
    return s.GrabOut(**await run_op(call, op, packet.room_id))


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{R}/red-packets",
        drop_red_packet,
        "Drop a red packet in a live room",
        "red packets",
        response=s.RedPacketOut,
        body=s.DropIn,
        status=201,
        allow=STAFF_OR_KEY,
        idempotency="optional",
        errors=(403, 404, 409, 422),
        description="Owners, editors, hosts and the API key. The account's budget pays "
        "`total` now (409 `insufficient_points`); the split is fixed from a secret seed by "
        "the generator in docs/red-packets.md and only its `commitment` is shown until the "
        "packet finishes. Viewers get a `red_packet` event (dropped, opened after "
        "`opens_in_s`, grabbed in batches, finished with the reveal). What is left at "
        "`expires_in_s` returns to the budget, once.",
    ),
    Endpoint(
        "GET",
        P,
        read_red_packet,
        "A red packet: its state, commitment, and once finished its reveal and audit",
        "red packets",
        response=s.RedPacketOut,
        errors=(404,),
        description="Public. With a fan token also `mine`, the fan's share. Once finished, "
        "`reveal` (the seed and the shares) and `grabs` (every grab: its share index, fan "
        "and amount) let anyone recompute the split and the commitment and check each grab.",
    ),
    Endpoint(
        "POST",
        f"{P}/grabs",
        grab_red_packet,
        "Grab a red packet (fan)",
        "red packets",
        response=s.GrabOut,
        allow=FAN,
        idempotency="optional",
        errors=(401, 403, 404, 409),
        description="The twin of the channel op `grab`. The fan's share, once: asking again "
        "answers the same amount with `repeat: true`, even after the packet emptied. 409 "
        "`red_packet_not_open` during the countdown, `red_packet_empty` when every share is "
        "taken, `red_packet_finished` after it expired; 403 `tier_required` below its "
        "`min_tier` (the tier the server holds for the fan).",
    ),
]
