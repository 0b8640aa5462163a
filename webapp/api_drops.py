"""Routes of collectible drops (DESIGN §6, §8): the host's drop, a fan's claim (the HTTP twin
of the channel's ``claim`` op), the fan's collection, and the public key that checks every
certificate offline."""

from __future__ import annotations

from live import drops
from webapp import schemas_drops as s
from webapp.api import FAN, STAFF_OR_KEY, Call, Endpoint
from webapp.api_channel import channel_of, run_op
from webapp.api_rooms import R, hosted
from webapp.auth import Kind

D = "/api/v1/drops/{drop_id}"


def _out(drop: drops.Drop, mine: drops.Claim | None = None) -> s.DropOut:
    return s.DropOut(
        **drop.told(),
        room_id=drop.room_id,
        mine=None if mine is None else _claim_out(mine),
    )


def _claim_out(claim: drops.Claim) -> s.ClaimOut:
    return s.ClaimOut(
        edition=claim.edition,
        of=claim.drop.editions,
        certificate=claim.certificate,
        repeat=claim.repeat,
    )


async def create_drop(call: Call) -> s.DropOut:
    room = await hosted(call)
    body: s.DropIn = call.body
    drop = await drops.create_drop(
        call.services.store,
        room,
        name=body.name,
        editions=body.editions,
        image=body.image,
        min_tier=body.min_tier,
        now=call.now,
    )
    await channel_of(call).drop_changed(drop, "dropped")
    return _out(drop)


async def read_drop(call: Call) -> s.DropOut:
    store = call.services.store
    drop = await drops.get_drop(store, call.params["drop_id"])
    mine = None
    if call.caller.kind is Kind.FAN:
        mine = await drops.claim_of(store, drop, call.caller.id)
    return _out(drop, mine)


async def claim_drop(call: Call) -> s.ClaimOut:
    drop = await drops.get_drop(call.services.store, call.params["drop_id"])
    op = {"op": "claim", "drop_id": drop.id}
    return s.ClaimOut(**await run_op(call, op, drop.room_id))


async def my_collectibles(call: Call) -> s.CollectionOut:
    kept = await drops.collection(call.services.store, call.caller.id)
    return s.CollectionOut(
        items=[
            s.CollectibleOut(
                drop_id=drop.id,
                name=drop.name,
                image=drop.image,
                edition=claim.edition,
                of=drop.editions,
                certificate=claim.certificate,
                at=claim.at,
            )
            for drop, claim in kept
        ]
    )


async def public_key(call: Call) -> s.PublicKeyOut:
    return s.PublicKeyOut(algorithm="Ed25519", public_key=channel_of(call).signer.public_key())


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{R}/drops",
        create_drop,
        "Drop a numbered collectible in a live room",
        "drops",
        response=s.DropOut,
        body=s.DropIn,
        status=201,
        allow=STAFF_OR_KEY,
        idempotency="optional",
        errors=(403, 404, 409, 422),
        description="Owners, editors, hosts and the API key. `editions` numbered 1..N; each "
        "fan claims at most one (the channel op `claim` or POST …/claims); viewers get "
        "`drop` events (dropped, claimed with the count, sold_out).",
    ),
    Endpoint(
        "GET",
        D,
        read_drop,
        "A collectible drop and how many editions are claimed",
        "drops",
        response=s.DropOut,
        errors=(404,),
        description="Public. With a fan token also `mine`: the fan's edition and certificate.",
    ),
    Endpoint(
        "POST",
        f"{D}/claims",
        claim_drop,
        "Claim an edition (fan)",
        "drops",
        response=s.ClaimOut,
        allow=FAN,
        idempotency="optional",
        errors=(401, 403, 404, 409),
        description="The next edition, exactly once, with a certificate signed by the "
        "deployment's Ed25519 key (`lifeaccount verify CERT --key KEY`, or any Ed25519 "
        "library, checks it offline). Asking again answers the same edition with `repeat`. "
        "409 `sold_out`; 403 `tier_required` below the drop's `min_tier`.",
    ),
    Endpoint(
        "GET",
        "/api/v1/me/collectibles",
        my_collectibles,
        "The fan's collectibles, newest first",
        "drops",
        response=s.CollectionOut,
        allow=FAN,
        errors=(401,),
    ),
    Endpoint(
        "GET",
        "/api/v1/certificates/public-key",
        public_key,
        "The key that signs collectible certificates",
        "drops",
        response=s.PublicKeyOut,
        description="Ed25519, the raw 32-byte public key in base64url. A certificate reads "
        "`<payload>.<signature>` (base64url): the signature is over the payload's bytes, "
        "which are the claim as JSON.",
    ),
]
