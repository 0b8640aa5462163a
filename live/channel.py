"""The room channel's rules (DESIGN §5), apart from any transport: who is speaking, what a
snapshot holds, and the ops a viewer may send, each becoming events on the room's topic.

Events go through the broker port (``store.broker``), which numbers them per room and frames
each once; a gateway only relays frames. An op either publishes its event and answers a
result, or raises a :class:`~accounts.errors.DomainError` whose ``code`` the gateway sends in
the op's error. Anonymous viewers read only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from accounts.accounts import get_account
from accounts.apikeys import get_key
from accounts.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized
from accounts.fans import FAN_TOKENS, get_fan, verify_token
from accounts.follows import is_following
from accounts.staff import role_of
from accounts.tiers import member_tier
from content import coupons
from content.sensitive import ReviewPolicy
from live import certificates, drops, moderation, pins, polls, props, red_packets, rooms, tickets
from store.broker import PENDING, Broker, Event
from store.clock import parse_rfc3339, rfc3339
from store.port import DocumentStore

MAX_CHAT = 200  # characters of one chat message
CHAT_EVERY_S = 2.0  # a fan's messages at most this often (DESIGN §5: 1 message / 2 s)
SNAPSHOT_CHAT = 50  # chat lines a snapshot carries
PRUNE_AT = 10_000  # fans' last-message times kept before the stale ones go
STAFF_EVERY_S = 0.5  # staff's messages at most this often, slow mode or not
MAX_TAPS = 100  # likes one op may carry (a held button sends a count, not 100 ops)


Op = Callable[[str, "Viewer", dict[str, Any]], Awaitable[dict[str, Any]]]


def topic(room_id: str) -> str:
    return f"room:{room_id}"


def body(type_: str, data: dict[str, Any], at: datetime) -> bytes:
    """An event's text without its seq (the broker puts that first)."""
    return orjson.dumps({"type": type_, "at": rfc3339(at), "data": data})


CHAT_MARK = b'"type":"chat"'


def is_chat(event: Event) -> bool:
    """Whether ``event`` is a chat line, without parsing it: the broker frames every event
    with its seq then its type first (``{"seq":N,"type":…``)."""
    return event.frame.find(CHAT_MARK, 0, 48) != -1


def _fan(viewer: Viewer, says: str) -> str:
    """The fan an op is for; Forbidden ``read_only`` for a guest (or staff) with ``says``."""
    if viewer.fan_id is None:
        raise Forbidden(says, code="read_only")
    return viewer.fan_id


def _named(op: dict[str, Any], field: str, what: str) -> str:
    """The id an op names in ``field``; Invalid naming the field when it names none."""
    value = op.get(field)
    if not isinstance(value, str):
        raise Invalid(f"{field} names {what}", field=field)
    return value


def _in_room(its_room: str | None, room_id: str, kind: str, thing_id: str) -> None:
    """Another room's thing is not found here: ops reach only their own room's."""
    if its_room != room_id:
        raise NotFound(kind, thing_id, field=f"{kind}_id")


def vote_result(got: polls.Vote, now: datetime) -> dict[str, Any]:
    """A vote's answer: the fan's option and the results as they are now."""
    return {"option": got.option, "repeat": got.repeat, **got.poll.told(now)}


def room_state(room: rooms.Room) -> dict[str, Any]:
    """What viewers know of the room, in a snapshot and in ``room`` events."""
    return {
        "id": room.id,
        "state": room.state.value,
        "title": room.title,
        "started_at": room.started_at,
        "ended_at": room.ended_at,
        "replay_content_id": room.replay_content_id,
        "chat": {
            "mode": room.chat.mode.value,
            "min_tier": room.chat.min_tier,
            "slow_mode_s": room.chat.slow_mode_s,
        },
    }


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Viewer:
    """Who is on a connection: a fan (by a verified token), the account's staff (by a channel
    ticket: ``staff`` is the speaker, ``role`` what chat shows), or nobody (read only)."""

    fan_id: str | None = None
    name: str = ""
    staff: str | None = None
    role: str | None = None
    token_id: str | None = None  # the fan token a connection said hello with

    @property
    def anonymous(self) -> bool:
        return self.fan_id is None and self.staff is None


ANONYMOUS = Viewer()


@dataclass
class Channel:
    store: DocumentStore
    broker: Broker
    secret: bytes
    now: Callable[[], datetime]
    words: ReviewPolicy
    chat_every_s: float = CHAT_EVERY_S
    _last_chat: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _taps: dict[str, int] = field(default_factory=dict)  # likes not yet counted, by room
    _signer: certificates.Signer | None = None
    # Red packets grabbed since the last round: packet id → (room id, the winners' lines).
    _grabbed: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)
    _viewers: dict[str, int] = field(default_factory=dict)  # the last count told, by room
    _voted: set[str] = field(default_factory=set)  # room polls voted on since the last round

    async def viewer(self, token: str | None, room_id: str) -> Viewer:
        """The viewer a hello's token names in ``room_id``: a fan token, a staff member's
        channel ticket, or None / "" for anonymous. Unauthorized (code ``token_invalid`` /
        ``token_expired`` / ``token_revoked``, ``ticket_invalid`` / ``ticket_expired``) for a
        bad one; Forbidden ``role_required`` for staff who no longer work the account."""
        if not token:
            return ANONYMOUS
        if tickets.looks_like_ticket(token):
            ticket = tickets.read(self.secret, token, room_id=room_id, now=self.now())
            return await self.staff(ticket.speaker, room_id)
        ident = await verify_token(self.store, self.secret, token, now=self.now())
        return await self.fan(ident.fan_id, ident.token_id)

    async def fan(self, fan_id: str, token_id: str | None = None) -> Viewer:
        fan = await get_fan(self.store, fan_id)
        return Viewer(fan_id=fan.id, name=fan.name, token_id=token_id)

    async def still(self, room_id: str, viewer: Viewer) -> None:
        """Whoever a connection said hello as must still be so at each op: a fan token
        revoked or expired since, a role taken away, a key revoked — refused from then on."""
        if viewer.token_id is not None:
            doc = await self.store.collection(FAN_TOKENS).get(viewer.token_id)
            if doc is None or doc.get("revoked_at"):
                raise Unauthorized("the fan token was revoked", code="token_revoked")
            if parse_rfc3339(doc["expires_at"]) <= self.now():
                raise Unauthorized(
                    "the fan token has expired; ask the brand's backend for a new one",
                    code="token_expired",
                )
        if viewer.staff is not None:
            room = await rooms.get_room(self.store, room_id)
            if await self.speaks(viewer.staff, room.account_id) is None:
                raise Forbidden("you do not work this room's account", code="role_required")

    async def staff(self, speaker: str, room_id: str) -> Viewer:
        """``speaker`` (a staff id, or ``key:<id>``) in ``room_id``: under the account's name,
        marked with the role held now (asked of the store, not of a ticket); Forbidden
        ``role_required`` for someone who does not work the room's account."""
        room = await rooms.get_room(self.store, room_id)
        role = await self.speaks(speaker, room.account_id)
        if role is None:
            raise Forbidden("you do not work this room's account", code="role_required")
        account = await get_account(self.store, room.account_id)
        return Viewer(name=account.name, staff=speaker, role=role)

    async def speaks(self, speaker: str, account_id: str) -> str | None:
        """The role ``speaker`` (a staff id, or ``key:<id>``) holds at the account now."""
        if speaker.startswith("key:"):
            key = await get_key(self.store, speaker.removeprefix("key:"))
            if key is None or key.account_id != account_id or key.revoked_at:
                return None
            return tickets.BRAND
        role = await role_of(self.store, account_id, speaker)
        return None if role is None else role.value

    async def room(self, room_id: str) -> rooms.Room:
        return await rooms.get_room(self.store, room_id)

    async def snapshot(self, room_id: str) -> tuple[int, bytes]:
        """What a joining viewer sees, and the seq it is as of: events after it follow."""
        room = await rooms.get_room(self.store, room_id)
        name = topic(room_id)
        kept = await self.broker.recent(name)
        seq = kept[-1].seq if kept else await self.broker.last_seq(name)
        deleted, cleared = await moderation.hidden(self.store, room_id)
        chat: list[dict[str, Any]] = []  # newest first, only as many as are shown
        for event in reversed(kept):
            if event.seq <= cleared or len(chat) == SNAPSHOT_CHAT:
                break
            if is_chat(event) and event.seq not in deleted:
                chat.append({**orjson.loads(event.frame)["data"], "seq": event.seq})
        chat.reverse()
        data = {
            "seq": seq,
            "room": room_state(room),
            "viewers": await self.broker.present(name),
            "peak_viewers": room.peak_viewers,
            "likes": room.likes,
            "pins": [p.event() for p in await pins.pinned(self.store, room_id)],
            "supporters": [asdict(s) for s in await props.supporters(self.store, room_id)],
            "drops": [d.told() for d in await drops.unfinished(self.store, room_id)],
            "polls": [
                p.told(self.now())
                for p in await polls.room_polls(self.store, room_id, now=self.now())
            ],
            "red_packets": [
                red_packets.told(p, self.now())
                for p in await red_packets.unfinished(self.store, room_id)
            ],
            "chat": chat,
        }
        return seq, body("snapshot", data, self.now())

    async def perform(
        self, room_id: str, viewer: Viewer, op_id: str, op: dict[str, Any]
    ) -> dict[str, Any]:
        """Run the op ``op["op"]`` for ``viewer`` once per ``op_id`` (DESIGN §8: an op id is
        unique per fan and room): a retry — on the same connection, another one, another
        process, or the op's HTTP twin with the id as its Idempotency-Key — gets the first
        run's result and has no effect. An op that failed had none, so its retry runs again.
        Raises the op's DomainError, or ``unknown_op`` / ``op_in_progress``, or
        ``idempotency_key_reused`` for an id that already ran another op."""
        name = op.get("op")
        handler = self._ops().get(name) if isinstance(name, str) else None
        if handler is None:
            known = ", ".join(sorted(self._ops()))
            raise DomainError(f"unknown op {name!r}; ops: {known}", code="unknown_op")
        who = viewer.fan_id or viewer.staff
        if who is None:  # anonymous: read-only ops (a click id) or a refusal; nothing kept
            return await handler(room_id, viewer, op)
        await self.still(room_id, viewer)
        key = f"{room_id}:{who}:{op_id}"
        kept = await self.broker.claim(key)
        if kept == PENDING:
            raise Conflict("this op is still running; ask again in a moment", code="op_in_progress")
        if kept is not None:
            first = orjson.loads(kept)
            if first["op"] != name:
                raise Invalid(
                    f"this id already ran a {first['op']} op; give each op its own id",
                    code="idempotency_key_reused",
                    field="id",
                )
            result: dict[str, Any] = first["result"]
            return result
        try:
            result = await handler(room_id, viewer, {**op, "id": op_id})
        except BaseException:
            await self.broker.settle(key, None)
            raise
        await self.broker.settle(key, orjson.dumps({"op": name, "result": result}))
        return result

    def _ops(self) -> dict[str, Op]:
        return {
            "chat": self.chat,
            "like": self.like,
            "send_prop": self.send_prop,
            "grab": self.grab,
            "claim": self.claim,
            "click": self.click,
            "vote": self.vote,
        }

    async def chat(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """A chat line from ``viewer``; the result is the event's seq. Staff lines are marked
        with the speaker's role and are not held to the room's chat mode or slow mode."""
        if viewer.anonymous:
            raise Forbidden("sign in to chat: anonymous viewers read only", code="read_only")
        text = op.get("text")
        if not isinstance(text, str) or not (text := text.strip()):
            raise Invalid("send the message as a non-empty 'text'", field="text")
        if len(text) > MAX_CHAT:
            raise Invalid(f"a message is at most {MAX_CHAT} characters", field="text")
        if any(unicodedata.category(c) in ("Cc", "Cf") and c != "\u200d" for c in text):
            raise Invalid("a message holds no control characters", field="text")
        room = await rooms.get_room(self.store, room_id)
        if room.state is not rooms.State.LIVE:
            raise Conflict("chat is open while the room is live", code="room_not_live")
        now = self.now()
        data: dict[str, Any] = {"name": viewer.name}
        if viewer.staff is not None:
            speaker, every = viewer.staff, STAFF_EVERY_S
            data["staff"] = viewer.role
        else:
            assert viewer.fan_id is not None
            speaker = data["fan_id"] = viewer.fan_id
            await moderation.check_can_chat(
                self.store, room_id=room_id, account_id=room.account_id, fan_id=speaker, now=now
            )
            await self._may_chat(room, speaker)
            every = max(self.chat_every_s, float(room.chat.slow_mode_s))
        key = (room_id, speaker)
        last = self._last_chat.get(key)
        if last is not None and (waited := (now - last).total_seconds()) < every:
            wait = round(every - waited, 2)
            raise RateLimited(f"one message every {every:g} s here; wait {wait} s", wait)
        text = await self._screened(room, text)
        if len(self._last_chat) > PRUNE_AT:
            stale = [k for k, at in self._last_chat.items() if (now - at).total_seconds() > 60]
            for k in stale:
                del self._last_chat[k]
        self._last_chat[key] = now
        data["text"] = text
        event: Event = await self.broker.publish(topic(room_id), body("chat", data, now))
        return {"seq": event.seq}

    async def _may_chat(self, room: rooms.Room, fan_id: str) -> None:
        """The room's chat mode: followers only, or members from a tier up."""
        mode = room.chat.mode
        if mode is rooms.ChatMode.FOLLOWERS:
            if not await is_following(self.store, room.account_id, fan_id):
                raise Forbidden(
                    "this room's chat is for followers: follow first", code="followers_only"
                )
        elif mode is rooms.ChatMode.TIER:
            if await member_tier(self.store, room.account_id, fan_id) < room.chat.min_tier:
                raise Forbidden(
                    f"this room's chat is for members of tier {room.chat.min_tier} and up",
                    code="tier_required",
                )

    async def _screened(self, room: rooms.Room, text: str) -> str:
        """The account's and the global sensitive words: starred, or refused when the account
        blocks them (its ``chat_words``)."""
        review = await self.words.review_text(text, account_id=room.account_id)
        if not review.flagged:
            return text
        account = await get_account(self.store, room.account_id)
        if account.chat_words == "block":
            raise Invalid(
                "the message holds a word this room does not allow",
                code="words_blocked",
                field="text",
            )
        starred = list(text)
        for match in review.matches:
            starred[match.start : match.end] = "*" * (match.end - match.start)
        return "".join(starred)

    async def like(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """Taps on the like button: counted now, told to the room in the next ``likes``
        event (a burst of thousands becomes a few events with totals)."""
        _fan(viewer, "likes are fans' taps: sign in as a fan to like")
        count = op.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TAPS:
            raise Invalid(f"count is a whole number from 1 to {MAX_TAPS}", field="count")
        room = await rooms.get_room(self.store, room_id)
        if room.state is not rooms.State.LIVE:
            raise Conflict("likes are counted while the room is live", code="room_not_live")
        self._taps[room_id] = self._taps.get(room_id, 0) + count
        return {"count": count}

    async def send_prop(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """A fan sends a prop: paid from the wallet (once per op id), shown to every viewer
        with its effect (a ``prop`` event carrying the room's supporter board after it)."""
        fan_id = _fan(viewer, "props are sent by fans: sign in as a fan")
        room = await rooms.get_room(self.store, room_id)
        sent = await props.send(
            self.store,
            room,
            fan_id=fan_id,
            fan_name=viewer.name,
            prop_id=op.get("prop_id"),
            count=op.get("count"),
            idempotency_key=str(op["id"]),
            now=self.now(),
        )
        if not sent.repeat:
            board = await props.supporters(self.store, room_id)
            data = {
                "fan_id": viewer.fan_id,
                "name": viewer.name,
                "prop_id": sent.prop.id,
                "prop": sent.prop.name,
                "icon": sent.prop.icon,
                "effect": sent.prop.effect,
                "count": sent.count,
                "points": sent.points,
                "supporters": [asdict(s) for s in board],
            }
            await self.broker.publish(topic(room_id), body("prop", data, self.now()))
        return {"balance": sent.balance, "points": sent.points, "repeat": sent.repeat}

    async def grab(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """A fan grabs a red packet of the room: its share, once (a winner asking again gets
        the same amount with ``repeat``). The room hears of grabs in batches, once a round,
        and at once when the last share goes (``finished``, with the reveal)."""
        fan_id = _fan(viewer, "red packets are for fans: sign in as a fan")
        packet_id = _named(op, "red_packet_id", "a red packet of the room")
        packet = await red_packets.get_packet(self.store, packet_id)
        _in_room(packet.room_id, room_id, "red_packet", packet_id)
        got = await red_packets.grab(self.store, packet_id, fan_id=fan_id, now=self.now())
        if not got.repeat:
            line = {"fan_id": viewer.fan_id, "name": viewer.name, "amount": got.amount}
            self._grabbed.setdefault(packet_id, (room_id, []))[1].append(line)
            if got.last:  # one grab finishes the packet; others of its group see it finished
                await self._tell_grabs(packet_id)
                await self.red_packet_changed(got.packet, "finished")
        return {"amount": got.amount, "repeat": got.repeat}

    @property
    def signer(self) -> certificates.Signer:
        """The deployment's key for collectible certificates (derived from its secret)."""
        if self._signer is None:
            self._signer = certificates.Signer.from_secret(self.secret)
        return self._signer

    async def claim(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """A fan claims a collectible of the room: the next edition, once, with its signed
        certificate. The room hears each claim's count (``drop`` claimed / sold_out)."""
        fan_id = _fan(viewer, "collectibles are for fans: sign in as a fan")
        if "coupon_id" in op:
            return await self._claim_coupon(room_id, fan_id, op)
        drop_id = _named(op, "drop_id", "a collectible drop of the room")
        drop = await drops.get_drop(self.store, drop_id)
        _in_room(drop.room_id, room_id, "drop", drop_id)
        got = await drops.claim(
            self.store, drop_id, fan_id=fan_id, signer=self.signer, now=self.now()
        )
        if not got.repeat:
            action = "sold_out" if got.drop.claimed >= got.drop.editions else "claimed"
            await self.drop_changed(got.drop, action)
        return {
            "edition": got.edition,
            "of": got.drop.editions,
            "certificate": got.certificate,
            "repeat": got.repeat,
        }

    async def _claim_coupon(self, room_id: str, fan_id: str, op: dict[str, Any]) -> dict[str, Any]:
        """A coupon of the room's account claimed in the room: the same claim as
        ``POST /api/v1/coupons/{id}/claims`` (stock and per-fan limit kept exactly), the op id
        its idempotency key."""
        coupon_id = _named(op, "coupon_id", "a coupon of the room's account")
        room = await rooms.get_room(self.store, room_id)
        coupon = await coupons.get_coupon(self.store, coupon_id)
        if coupon.account_id != room.account_id:
            raise NotFound("coupon", coupon_id, field="coupon_id")
        key = f"room:{op['id']}"[: coupons.MAX_KEY]
        got = await coupons.claim(
            self.store, coupon_id, fan_id=fan_id, idempotency_key=key, now=self.now()
        )
        return {
            "coupon_id": coupon_id,
            "claim_id": got.claim.id,
            "number": got.claim.number,
            "stock": got.stock,
            "repeat": got.repeat,
        }

    async def click(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """A viewer's own click id for a pinned service or content card that is up, and the
        path that follows it (``/go/{click_id}``: counted there, once). Anyone may ask:
        minting writes nothing."""
        pin_id = _named(op, "pin_id", "a pin up in the room")
        pin = await pins.get_pin(self.store, pin_id)
        _in_room(pin.room_id, room_id, "pin", pin_id)
        click_id = pins.mint_click(self.secret, pin)
        return {"pin_id": pin.id, "click_id": click_id, "go": f"/go/{click_id}"}

    async def vote(self, room_id: str, viewer: Viewer, op: dict[str, Any]) -> dict[str, Any]:
        """A fan votes in a poll of the room, once. The room hears the results once a round
        (``poll`` results), however many vote."""
        fan_id = _fan(viewer, "polls are answered by fans: sign in as a fan")
        poll_id = _named(op, "poll_id", "a poll of the room")
        poll = await polls.get_poll(self.store, poll_id)
        _in_room(poll.room_id, room_id, "poll", poll_id)
        got = await polls.vote(
            self.store, poll_id, fan_id=fan_id, option=op.get("option"), now=self.now()
        )
        if not got.repeat:
            self._voted.add(poll_id)
        return vote_result(got, self.now())

    async def poll_changed(self, poll: polls.Poll, action: str) -> Event | None:
        """Tell a poll's room it opened (``poll`` created) or its results."""
        if poll.room_id is None:
            return None
        data = {"action": action, **poll.told(self.now())}
        return await self.broker.publish(topic(poll.room_id), body("poll", data, self.now()))

    async def _tell_votes(self, poll_id: str) -> None:
        self._voted.discard(poll_id)
        await self.poll_changed(await polls.get_poll(self.store, poll_id), "results")

    async def drop_changed(self, drop: drops.Drop, action: str) -> Event:
        """Tell the room a collectible dropped, was claimed (the count) or sold out."""
        data = {"action": action, **drop.told()}
        return await self.broker.publish(topic(drop.room_id), body("drop", data, self.now()))

    async def red_packet_changed(self, packet: red_packets.Packet, action: str) -> Event:
        """Tell the room a packet was dropped, opened or finished (with its reveal)."""
        data = {"action": action, **red_packets.told(packet, self.now())}
        return await self.broker.publish(
            topic(packet.room_id), body("red_packet", data, self.now())
        )

    async def _tell_grabs(self, packet_id: str) -> None:
        waiting = self._grabbed.pop(packet_id, None)
        if waiting is None:
            return
        room_id, lines = waiting
        packet = await red_packets.get_packet(self.store, packet_id)
        data = {
            "action": "grabbed",
            "id": packet_id,
            "grabbed_count": packet.grabbed_count,
            "grabbed_total": packet.grabbed_total,
            "grabs": lines[-20:],  # the latest winners; the counts say how many in all
        }
        await self.broker.publish(topic(room_id), body("red_packet", data, self.now()))

    async def sweep_packets(self) -> None:
        """Packets whose countdown ended are told ``opened``; expired ones are refunded and
        told ``finished`` (each by one process, however many run the sweep)."""
        now = self.now()
        for packet in await red_packets.opening(self.store, now=now):
            await self.red_packet_changed(packet, "opened")
        for packet_id in await red_packets.due(self.store, now=now):
            expired = await red_packets.expire(self.store, packet_id, now=now)
            if expired is not None:
                await self._tell_grabs(packet_id)
                await self.red_packet_changed(expired, "finished")

    async def moderate(self, room: rooms.Room, by: str, asked: dict[str, Any]) -> moderation.Record:
        """Carry out a staff member's (or API key's) moderation action on ``room`` and tell
        its viewers (a ``moderation`` event: their chat hides or clears)."""
        kept = await self.broker.recent(topic(room.id))
        chat = frozenset(e.seq for e in kept if is_chat(e))
        record = await moderation.act(
            self.store,
            room_id=room.id,
            account_id=room.account_id,
            by=by,
            now=self.now(),
            chat_seqs=chat,
            last_seq=await self.broker.last_seq(topic(room.id)),
            **asked,
        )
        await self.moderated(record)
        return record

    async def pin(
        self, room: rooms.Room, by: str, *, kind: Any, **asked: Any
    ) -> tuple[pins.Pin, list[pins.Pin]]:
        """Pin an announcement or a card above the room's chat (``live.pins.pin``) and tell
        its viewers (``unpin`` for the pin it replaces, then ``pin``)."""
        new, replaced = await pins.pin(self.store, room, kind=kind, by=by, now=self.now(), **asked)
        for old in replaced:
            await self._unpinned(old)
        data = new.event()
        await self.broker.publish(topic(room.id), body("pin", data, self.now()))
        return new, replaced

    async def unpin(self, room: rooms.Room, by: str, pin_id: str) -> pins.Pin:
        """Take a pin down and tell the room's viewers (``unpin``)."""
        taken = await pins.unpin(self.store, room, pin_id, by=by, now=self.now())
        await self._unpinned(taken)
        return taken

    async def _unpinned(self, pin: pins.Pin) -> Event:
        data = {"id": pin.id, "kind": pin.kind.value}
        return await self.broker.publish(topic(pin.room_id), body("unpin", data, self.now()))

    async def room_changed(self, room: rooms.Room) -> Event:
        """Tell the room's viewers what the room is now (a ``room`` event): its state, its
        replay once there is one, who may chat."""
        return await self.broker.publish(topic(room.id), body("room", room_state(room), self.now()))

    async def moderated(self, record: moderation.Record) -> Event:
        """Tell the room's viewers a moderation action (their chat hides or clears)."""
        data = record.event()
        return await self.broker.publish(
            topic(record.room_id), body("moderation", data, self.now())
        )

    async def tell(self, room_ids: list[str]) -> None:
        """The periodic round (about once a second): each room's likes since the last round
        as one ``likes`` event with the total, and its viewer count when it changed (the
        room keeps its peak)."""
        now = self.now()
        for packet_id in list(self._grabbed):
            await self._tell_grabs(packet_id)
        for poll_id in list(self._voted):
            await self._tell_votes(poll_id)
        # Rooms with viewers here, and rooms liked over HTTP with none (the twin's taps).
        for room_id in dict.fromkeys([*room_ids, *self._taps]):
            taps = self._taps.pop(room_id, 0)
            if taps:
                try:
                    room = await rooms.add_likes(self.store, room_id, taps)
                except DomainError:
                    continue  # ended meanwhile: the taps go with it
                data = {"added": taps, "total": room.likes}
                await self.broker.publish(topic(room_id), body("likes", data, now))
            count = await self.broker.present(topic(room_id))
            if self._viewers.get(room_id) != count:
                self._viewers[room_id] = count
                room = await rooms.record_viewers(self.store, room_id, count)
                data = {"count": count, "peak": max(room.peak_viewers, count)}
                await self.broker.publish(topic(room_id), body("viewers", data, now))

    def forget(self, room_id: str) -> None:
        """No one watches the room here any more."""
        self._viewers.pop(room_id, None)
