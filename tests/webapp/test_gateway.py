"""The room channel gateway (webapp/gateway.py) with real websocket clients on 127.0.0.1: hello
and snapshot, room-wide seq, ack/error per op with the client's id, retries that never repeat
an effect, recovery with ``since`` (exactly the missed events, or reset past the history),
anonymous read only, refused hellos, and a stalled client closed with 4008 while the others
keep receiving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from accounts import ledger
from accounts import schema as accounts_schema
from accounts.accounts import Tier, create_account, update_profile
from accounts.fans import mint_token, revoke_token, upsert_fan
from accounts.follows import follow
from accounts.staff import ROLES, Role, create_staff, grant_role
from accounts.tiers import set_ladder, set_member_tier
from content import schema as content_schema
from content.coupons import create_coupon
from content.sensitive import ReviewPolicy, add_words
from live import moderation, polls, props, red_packets, rooms, tickets
from live import schema as live_schema
from live.channel import Channel, topic
from store.broker import Broker, MemoryBroker
from store.clock import utc_now
from store.redis_broker import RedisBroker
from store.sqlite import SQLiteStore
from webapp.gateway import CLOSE_HELLO, CLOSE_ROOM, CLOSE_SLOW, Gateway, Limits

SECRET = b"s" * 32
TIMEOUT_S = 10.0


@dataclass
class Setup:
    store: SQLiteStore
    broker: Broker
    channel: Channel
    gateway: Gateway
    url: str  # the room's channel URL
    room_id: str
    tokens: list[str]


@pytest.fixture(params=["memory", "redis"])
async def setup(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    """A live room behind the gateway, on each broker engine (the same tests, unchanged)."""
    store = SQLiteStore(tmp_path / "gw.db")
    await store.ensure_indexes(
        [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]
    )
    now = utc_now()
    account = await create_account(store, name="Tea House", handle="tea-gw", now=now)
    room = await rooms.create_room(store, account.id, title="新品直播", now=now)
    await rooms.go_live(store, room.id, now=now)
    tokens = []
    for n in range(2):
        fan = await upsert_fan(
            store, issuer_id=account.id, external_id=f"u{n}", name=f"fan {n}", now=now
        )
        minted = await mint_token(store, SECRET, fan=fan, account_id=account.id, ttl_s=600, now=now)
        tokens.append(minted.token)
    broker: Broker
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        flusher = Redis.from_url(url)
        await flusher.flushdb()
        await flusher.aclose()
        broker = RedisBroker(url, history=20)
    else:
        broker = MemoryBroker(history=20)
    channel = Channel(store, broker, SECRET, utc_now, ReviewPolicy(store), chat_every_s=0)
    # The likes-and-viewers round runs when a test calls it (channel.tell), not on a clock.
    limits = Limits(tick_s=0.005, max_events=50, max_bytes=64 << 10, tell_s=3600, close_s=0.5)
    gateway = Gateway(channel, broker, limits=limits)
    port = await gateway.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{port}/api/v1/rooms/{room.id}/channel"
    yield Setup(store, broker, channel, gateway, url, room.id, tokens)
    await gateway.stop()
    await broker.close()
    await store.close()


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT_S):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def join(url: str, token: str | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and say hello: the hello's ack (who the server took us for), then the first
    message after it (a snapshot; or the error of a refused hello)."""
    ws = await connect(url)
    first = await hello(ws, token)
    if first["type"] == "error":
        return ws, first
    return ws, await receive(ws)


async def hello(ws: ClientConnection, token: str | None = None) -> dict[str, Any]:
    """Say hello on ``ws``: its ack (checked), or the error of a refused hello."""
    await ws.send(json.dumps({"op": "hello", "id": "hi", **({"token": token} if token else {})}))
    first = await receive(ws)
    if first["type"] != "error":
        assert (first["type"], first["id"], first["ok"]) == ("ack", "hi", True), first
    return first


async def answer(ws: ClientConnection, op_id: str | None) -> dict[str, Any]:
    """The ack or error for ``op_id``, past the events that come before it."""
    while True:
        message = await receive(ws)
        if message.get("type") in ("ack", "error") and message.get("id") == op_id:
            return message


async def answer_of(ws: ClientConnection, op: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(op))
    return await answer(ws, str(op["id"]))


async def chat(ws: ClientConnection, op_id: str, text: str) -> dict[str, Any]:
    await ws.send(json.dumps({"op": "chat", "id": op_id, "text": text}))
    return await answer(ws, op_id)


async def test_a_viewer_gets_a_snapshot_then_every_event_in_seq_order(setup: Setup) -> None:
    reader, snapshot = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        assert snapshot["type"] == "snapshot" and "seq" not in snapshot
        assert snapshot["data"]["room"]["state"] == "live" and snapshot["data"]["seq"] == 0
        assert snapshot["data"]["viewers"] >= 1
        acks = [await chat(fan, f"m{n}", f"第{n}条") for n in range(5)]
        assert [a["type"] for a in acks] == ["ack"] * 5
        assert [a["id"] for a in acks] == [f"m{n}" for n in range(5)]
        seqs = [a["result"]["seq"] for a in acks]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        got = [await receive(reader) for _ in range(5)]
        assert [e["seq"] for e in got] == seqs
        assert [e["data"]["text"] for e in got] == [f"第{n}条" for n in range(5)]
        assert got[0]["type"] == "chat" and got[0]["data"]["name"] == "fan 0"
    finally:
        await reader.close()
        await fan.close()


async def test_errors_carry_the_op_id_and_a_code(setup: Setup) -> None:
    anonymous, _ = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        refused = await chat(anonymous, "a1", "hello")
        assert (refused["type"], refused["id"], refused["code"]) == ("error", "a1", "read_only")
        empty = await chat(fan, "f1", "   ")
        assert (empty["code"], empty["field"]) == ("invalid_field", "text")
        long = await chat(fan, "f2", "长" * 201)
        assert long["code"] == "invalid_field"
        await fan.send(json.dumps({"op": "dance", "id": "f3"}))
        assert (await answer(fan, "f3"))["code"] == "unknown_op"
        await fan.send(json.dumps({"op": "chat", "text": "no id"}))
        assert (await answer(fan, None))["code"] == "bad_op"
        await fan.send("not json")
        assert (await answer(fan, None))["code"] == "bad_op"
        assert await setup.broker.last_seq(topic(setup.room_id)) == 0  # nothing happened
    finally:
        await anonymous.close()
        await fan.close()


async def test_a_retried_id_answers_the_same_and_happens_once(setup: Setup) -> None:
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        first = await chat(fan, "same", "买一送一")
        again = await chat(fan, "same", "买一送一")
        assert first == again and first["type"] == "ack"
    finally:
        await fan.close()
    # Even from a new connection of the same fan.
    back, _ = await join(setup.url, setup.tokens[0])
    try:
        assert await chat(back, "same", "买一送一") == first
        assert await setup.broker.last_seq(topic(setup.room_id)) == 1
        # The same id from another fan is that fan's own op.
        other, _ = await join(setup.url, setup.tokens[1])
        try:
            assert (await chat(other, "same", "我也要"))["result"]["seq"] == 2
        finally:
            await other.close()
    finally:
        await back.close()


async def test_a_rate_limited_fan_is_told_how_long_to_wait(setup: Setup) -> None:
    setup.channel.chat_every_s = 60
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        assert (await chat(fan, "1", "first"))["type"] == "ack"
        limited = await chat(fan, "2", "second")
        assert limited["code"] == "rate_limited" and 0 < limited["retry_after_s"] <= 60
    finally:
        await fan.close()


async def test_since_gives_exactly_the_missed_events_then_live(setup: Setup) -> None:
    name = topic(setup.room_id)
    reader, _ = await join(setup.url)
    first = await setup.broker.publish(name, b'{"type":"notice","data":{"n":1}}')
    assert (await receive(reader))["seq"] == first.seq
    await reader.close()
    missed = [
        await setup.broker.publish(name, b'{"type":"notice","data":{"n":%d}}' % n)
        for n in range(2, 6)
    ]
    back = await connect(f"{setup.url}?since={first.seq}")
    try:
        await hello(back)
        got = [await receive(back) for _ in missed]
        assert [e["seq"] for e in got] == [e.seq for e in missed]
        live = await setup.broker.publish(name, b'{"type":"notice","data":{"n":6}}')
        assert (await receive(back))["seq"] == live.seq
    finally:
        await back.close()


async def test_since_past_the_history_gets_reset_then_a_snapshot(setup: Setup) -> None:
    name = topic(setup.room_id)
    for n in range(30):  # the history keeps 20
        await setup.broker.publish(name, b'{"type":"notice","data":{"n":%d}}' % n)
    back = await connect(f"{setup.url}?since=3")
    try:
        await hello(back)
        reset, snapshot = await receive(back), await receive(back)
        assert reset["type"] == "reset" and reset["data"]["since"] == 3
        assert snapshot["type"] == "snapshot" and snapshot["data"]["seq"] == 30
    finally:
        await back.close()


async def closed_with(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async for _ in ws:
                pass
    except ConnectionClosed:
        pass
    return ws.close_code


async def test_hellos_that_cannot_be_served_are_closed_with_a_reason(setup: Setup) -> None:
    ws = await connect(setup.url)
    await ws.send(json.dumps({"op": "chat", "id": "x"}))
    said = await receive(ws)
    assert said["code"] == "hello_required"
    assert await closed_with(ws) == CLOSE_HELLO
    ws = await connect(setup.url)
    await ws.send(json.dumps({"op": "hello", "token": "lft_forged.token"}))
    assert (await receive(ws))["code"] == "token_invalid"
    assert await closed_with(ws) == CLOSE_HELLO
    missing = setup.url.replace(setup.room_id, "room_0000000000nothing")
    ws = await connect(missing)  # closed before any hello
    assert await closed_with(ws) == CLOSE_ROOM


async def test_a_stalled_client_is_closed_with_4008_while_others_keep_receiving(
    setup: Setup,
) -> None:
    name = topic(setup.room_id)
    stalled = await connect(setup.url, max_queue=1)
    await hello(stalled)
    assert (await receive(stalled))["type"] == "snapshot"
    [behind] = setup.gateway.hubs[setup.room_id].viewings
    reader, _ = await join(setup.url)
    padding = "x" * 32_000
    try:
        # The stalled client reads nothing more; the reader reads everything as it comes.
        for _ in range(5_000):
            event = await setup.broker.publish(
                name, json.dumps({"type": "notice", "data": {"pad": padding}}).encode()
            )
            assert (await receive(reader))["seq"] == event.seq
            if behind.slow:
                break
        assert behind.slow, "the stalled client was never found too slow"
        assert behind.pending_bytes == 0  # its backlog is let go at once
        # Reading again, it finds the close after what its socket already held.
        assert await closed_with(stalled) == CLOSE_SLOW
        after = await setup.broker.publish(name, b'{"type":"notice","data":{}}')
        assert (await receive(reader))["seq"] == after.seq
    finally:
        await reader.close()


async def test_a_viewer_that_never_reads_again_is_cut_off(setup: Setup) -> None:
    name = topic(setup.room_id)
    stalled = await connect(setup.url, max_queue=1)
    await hello(stalled)
    [behind] = setup.gateway.hubs[setup.room_id].viewings
    reader, _ = await join(setup.url)
    padding = "x" * 32_000
    try:
        while not behind.slow:
            event = await setup.broker.publish(
                name, json.dumps({"type": "notice", "data": {"pad": padding}}).encode()
            )
            assert (await receive(reader))["seq"] == event.seq
        # Its close waits behind a full socket it never drains: it is cut off instead, and
        # the server lets go of it (close_s is 0.5 s here).
        async with asyncio.timeout(TIMEOUT_S):
            await behind.ws.wait_closed()
        assert behind not in setup.gateway.hubs[setup.room_id].viewings
        after = await setup.broker.publish(name, b'{"type":"notice","data":{}}')
        assert (await receive(reader))["seq"] == after.seq
    finally:
        await reader.close()
        stalled.transport.abort()


async def of_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message = await receive(ws)
        if message["type"] == kind:
            return message


async def test_a_burst_of_likes_becomes_a_few_events_with_totals(setup: Setup) -> None:
    reader, snapshot = await join(setup.url)
    fans = [(await join(setup.url, token))[0] for token in setup.tokens]
    try:
        assert snapshot["data"]["likes"] == 0
        anonymous = await answer_of(reader, {"op": "like", "id": "a"})
        assert anonymous["code"] == "read_only"
        bad = await answer_of(fans[0], {"op": "like", "id": "b", "count": 101})
        assert (bad["code"], bad["field"]) == ("invalid_field", "count")
        sent = 0
        for n in range(300):
            count = 1 if n % 10 else 20
            ack = await answer_of(fans[n % 2], {"op": "like", "id": f"l{n}", "count": count})
            assert ack["result"] == {"count": count}
            sent += count
            if n in (99, 199, 299):
                await setup.channel.tell([setup.room_id])  # the round of about a second
        totals = [(await of_type(reader, "likes"))["data"] for _ in range(3)]
        assert [t["total"] for t in totals] == [sent // 3, 2 * sent // 3, sent]
        assert sum(t["added"] for t in totals) == sent
        assert (await rooms.get_room(setup.store, setup.room_id)).likes == sent
        # A retried like is not counted twice.
        again = await answer_of(fans[0], {"op": "like", "id": "l0"})
        assert again["result"] == {"count": 20}  # the first answer, not a new count
        await setup.channel.tell([setup.room_id])
        assert (await rooms.get_room(setup.store, setup.room_id)).likes == sent
    finally:
        await reader.close()
        for fan in fans:
            await fan.close()


async def test_viewer_counts_are_told_when_they_change_and_the_peak_is_kept(
    setup: Setup,
) -> None:
    reader, _ = await join(setup.url)
    others = [(await join(setup.url))[0] for _ in range(3)]
    await setup.channel.tell([setup.room_id])
    told = await of_type(reader, "viewers")
    assert told["data"] == {"count": 4, "peak": 4}
    for ws in others:
        await ws.close()
    async with asyncio.timeout(TIMEOUT_S):
        while await setup.broker.present(topic(setup.room_id)) != 1:
            await asyncio.sleep(0.01)  # polling the server's side of the closes
    await setup.channel.tell([setup.room_id])
    assert (await of_type(reader, "viewers"))["data"] == {"count": 1, "peak": 4}
    seq = await setup.broker.last_seq(topic(setup.room_id))
    await setup.channel.tell([setup.room_id])  # unchanged: nothing told
    assert await setup.broker.last_seq(topic(setup.room_id)) == seq
    assert (await rooms.get_room(setup.store, setup.room_id)).peak_viewers == 4
    await reader.close()


async def test_moderation_hides_mutes_and_bans_for_every_viewer(setup: Setup) -> None:
    reader, _ = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    room = await rooms.get_room(setup.store, setup.room_id)
    fan_id = (await setup.channel.viewer(setup.tokens[0], setup.room_id)).fan_id

    async def act(action: str, **extra: Any) -> None:
        await setup.channel.moderate(room, "staff_1", {"action": action, **extra})

    try:
        kept = (await chat(fan, "c1", "正常发言"))["result"]["seq"]
        rude = (await chat(fan, "c2", "不友善的话"))["result"]["seq"]
        await act("delete", seq=rude)
        told = await of_type(reader, "moderation")
        assert told["data"] == {"action": "delete", "seq": rude}
        _, fresh = await join(setup.url)
        assert [c["seq"] for c in fresh["data"]["chat"]] == [kept]
        await act("mute", fan_id=fan_id, minutes=10)
        assert (await of_type(reader, "moderation"))["data"]["action"] == "mute"
        assert (await chat(fan, "c3", "还能说吗"))["code"] == "muted"
        await act("ban", fan_id=fan_id)
        assert (await chat(fan, "c4", "还能说吗"))["code"] == "banned"
        await act("unban", fan_id=fan_id)
        assert (await chat(fan, "c5", "还能说吗"))["code"] == "muted"  # the mute still runs
        await act("clear")
        _, cleared = await join(setup.url)
        assert cleared["data"]["chat"] == []
        log = await moderation.history(setup.store, room.id)
        assert [r.action.value for r in log] == ["clear", "unban", "ban", "mute", "delete"]
        assert all(r.by == "staff_1" for r in log)
    finally:
        await reader.close()
        await fan.close()


async def test_chat_rules_and_sensitive_words_are_enforced_by_the_server(setup: Setup) -> None:
    reader, _ = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    room = await rooms.get_room(setup.store, setup.room_id)
    fan_id = (await setup.channel.viewer(setup.tokens[0], setup.room_id)).fan_id
    assert fan_id is not None
    now = utc_now()

    async def rules(mode: str, min_tier: int = 0, slow_mode_s: int = 0) -> None:
        await rooms.set_chat_rules(
            setup.store, room.id, mode=mode, min_tier=min_tier, slow_mode_s=slow_mode_s, now=now
        )

    try:
        await rules("followers")
        assert (await chat(fan, "f1", "hi"))["code"] == "followers_only"
        await follow(setup.store, room.account_id, fan_id, now=now)
        assert (await chat(fan, "f2", "hi"))["type"] == "ack"
        await rules("tier", min_tier=2)
        assert (await chat(fan, "t1", "hi"))["code"] == "tier_required"
        ladder = [Tier(0, "粉丝"), Tier(1, "银卡"), Tier(2, "金卡")]
        await set_ladder(setup.store, room.account_id, ladder, now=now)
        await set_member_tier(setup.store, room.account_id, fan_id, 2, now=now)
        assert (await chat(fan, "t2", "hi"))["type"] == "ack"
        await rules("all", slow_mode_s=120)
        slowed = await chat(fan, "s1", "again")
        assert slowed["code"] == "rate_limited" and slowed["retry_after_s"] > 60
        await rules("all")
        # The account's sensitive words: starred by default, refused when it blocks them.
        await add_words(setup.store, account_id=room.account_id, words=["假货"], now=now)
        assert (await chat(fan, "w1", "这是假货吗"))["type"] == "ack"
        said = await of_type(reader, "chat")
        while said["data"]["text"] != "这是**吗":
            said = await of_type(reader, "chat")
        await update_profile(setup.store, room.account_id, now=now, chat_words="block")
        blocked = await chat(fan, "w2", "假货")
        assert (blocked["code"], blocked["field"]) == ("words_blocked", "text")
    finally:
        await reader.close()
        await fan.close()


async def test_staff_speak_marked_by_ticket_and_pins_reach_every_viewer(setup: Setup) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    host = await create_staff(setup.store, email="host@tea.example", password_hash="x", now=now)
    await grant_role(
        setup.store, account_id=room.account_id, staff_id=host.id, role=Role.HOST, now=now
    )
    await rooms.set_chat_rules(
        setup.store, room.id, mode="tier", min_tier=5, slow_mode_s=600, now=now
    )

    def ticket(speaker: str, room_id: str = room.id, at: datetime = now) -> str:
        made = tickets.Ticket(speaker=speaker, role="host", room_id=room_id)
        return tickets.mint(SECRET, made, now=at)[0]

    reader, _ = await join(setup.url)
    staff, hello = await join(setup.url, ticket(host.id))
    try:
        assert hello["type"] == "snapshot"
        # Marked with the role, under the account's name; the tier rule and the 600 s slow
        # mode are the fans', not the staff's (who wait half a second at most).
        assert (await chat(staff, "h0", "欢迎"))["type"] == "ack"
        said = await of_type(reader, "chat")
        assert said["data"] == {"name": "Tea House", "staff": "host", "text": "欢迎"}
        again = await chat(staff, "h1", "too fast")
        assert again["code"] == "rate_limited" and 0 < again["retry_after_s"] <= 0.5
        assert (await answer_of(staff, {"op": "like", "id": "l1"}))["code"] == "read_only"
        # The pinned announcement: one at a time, told to viewers, in every snapshot.
        first, _ = await setup.channel.pin(room, host.id, kind="announcement", text="8 点抽奖")
        assert (await of_type(reader, "pin"))["data"]["text"] == "8 点抽奖"
        second, replaced = await setup.channel.pin(room, host.id, kind="announcement", text="9 点")
        assert [p.id for p in replaced] == [first.id]
        assert (await of_type(reader, "unpin"))["data"]["id"] == first.id
        assert (await of_type(reader, "pin"))["data"]["id"] == second.id
        _, fresh = await join(setup.url)
        assert [(p["id"], p["text"]) for p in fresh["data"]["pins"]] == [(second.id, "9 点")]
        await setup.channel.unpin(room, host.id, second.id)
        assert (await of_type(reader, "unpin"))["data"]["id"] == second.id
        _, fresh = await join(setup.url)
        assert fresh["data"]["pins"] == []
    finally:
        await reader.close()
        await staff.close()
    # A ticket for another room, an expired one, a forged one, one whose holder lost the
    # role: each hello is refused, and nothing is said.
    other = await rooms.create_room(setup.store, room.account_id, title="另一场", now=now)
    refused = {
        "wrong_room": ticket(host.id, room_id=other.id),
        "ticket_expired": ticket(host.id, at=now - timedelta(minutes=5)),
        "ticket_invalid": ticket(host.id)[:-3] + "abc",
    }
    for code, token in refused.items():
        ws, error = await join(setup.url, token)
        assert (error["type"], error["code"]) == ("error", code)
        await ws.close()
    await setup.store.collection(ROLES).delete_one({"staff_id": host.id})
    ws, error = await join(setup.url, ticket(host.id))
    assert error["code"] == "role_required"
    await ws.close()


async def test_a_staff_retry_on_a_new_connection_happens_once(setup: Setup) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    host = await create_staff(setup.store, email="h2@tea.example", password_hash="x", now=now)
    await grant_role(
        setup.store, account_id=room.account_id, staff_id=host.id, role=Role.HOST, now=now
    )
    ticket = tickets.Ticket(speaker=host.id, role="host", room_id=room.id)
    op = {"op": "chat", "id": "once", "text": "欢迎"}
    first, _ = await join(setup.url, tickets.mint(SECRET, ticket, now=now)[0])
    said = await answer_of(first, op)
    await first.close()
    again, _ = await join(setup.url, tickets.mint(SECRET, ticket, now=now)[0])
    try:
        assert await answer_of(again, op) == said
        assert await setup.broker.last_seq(topic(room.id)) == said["result"]["seq"]
    finally:
        await again.close()


async def test_the_hello_is_answered_with_who_the_server_took_you_for(setup: Setup) -> None:
    guest = await connect(setup.url)
    fan = await connect(setup.url)
    try:
        assert (await hello(guest))["result"] == {"fan_id": None, "name": "", "staff": None}
        took = (await hello(fan, setup.tokens[1]))["result"]
        assert took["name"] == "fan 1" and took["fan_id"].startswith("fan_")
        assert took["staff"] is None
        assert (await receive(fan))["type"] == "snapshot"  # then the snapshot
    finally:
        await guest.close()
        await fan.close()


async def test_a_refused_op_is_not_kept_so_its_retry_runs(setup: Setup) -> None:
    setup.channel.chat_every_s = 60
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        assert (await chat(fan, "a", "first"))["type"] == "ack"
        assert (await chat(fan, "b", "second"))["code"] == "rate_limited"
        setup.channel.chat_every_s = 0  # the wait is over
        retried = await chat(fan, "b", "second")
        assert retried["type"] == "ack" and retried["result"]["seq"] == 2
    finally:
        await fan.close()


async def test_a_prop_sent_on_the_channel_is_paid_once_and_shown_to_the_room(
    setup: Setup,
) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    [tea, gold] = await props.set_catalog(
        setup.store,
        room.account_id,
        [{"name": "奶茶", "price": 10}, {"name": "金卡", "price": 50, "min_tier": 1}],
        now=now,
    )
    fan_id = (await setup.channel.viewer(setup.tokens[0], setup.room_id)).fan_id
    assert fan_id is not None
    await ledger.credit_wallet(
        setup.store,
        account_id=room.account_id,
        fan_id=fan_id,
        points=100,
        reason="test",
        reference=None,
        idempotency_key="g",
        now=now,
    )
    reader, _ = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        op = {"op": "send_prop", "id": "p1", "prop_id": tea.id, "count": 2}
        first = await answer_of(fan, op)
        assert first["result"] == {"balance": 80, "points": 20, "repeat": False}
        assert await answer_of(fan, op) == first  # a retry: the same answer, paid once
        told = await of_type(reader, "prop")
        assert (told["data"]["prop"], told["data"]["count"], told["data"]["points"]) == (
            "奶茶",
            2,
            20,
        )
        assert told["data"]["supporters"] == [{"fan_id": fan_id, "name": "fan 0", "points": 20}]
        # A tier the op claims is no tier: the server reads the fan's (0).
        claimed = await answer_of(
            fan, {"op": "send_prop", "id": "p2", "prop_id": gold.id, "tier": 9}
        )
        assert claimed["code"] == "tier_required"
        assert await ledger.balance(setup.store, room.account_id, ledger.wallet(fan_id)) == 80
        anonymous = await answer_of(reader, {"op": "send_prop", "id": "p3", "prop_id": tea.id})
        assert anonymous["code"] == "read_only"
    finally:
        await reader.close()
        await fan.close()


async def test_red_packets_are_grabbed_on_the_channel_and_told_to_the_room(
    setup: Setup,
) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    await ledger.credit_budget(
        setup.store,
        account_id=room.account_id,
        points=100,
        reason=None,
        reference=None,
        idempotency_key="b",
        now=now,
    )
    packet = await red_packets.drop(
        setup.store, room, total=60, count=3, mode="equal", expires_in_s=30, now=now
    )
    await setup.channel.red_packet_changed(packet, "dropped")
    reader, snapshot = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        assert [p["id"] for p in snapshot["data"]["red_packets"]] == [packet.id]
        assert "seed" not in json.dumps(snapshot)  # the seed stays secret
        op = {"op": "grab", "id": "g1", "red_packet_id": packet.id}
        assert (await answer_of(fan, op))["result"] == {"amount": 20, "repeat": False}
        again = await answer_of(fan, {**op, "id": "g2"})
        assert again["result"] == {"amount": 20, "repeat": True}
        await setup.channel.tell([setup.room_id])  # the round tells the grabs, batched
        grabbed = await of_type(reader, "red_packet")
        assert grabbed["data"]["action"] == "grabbed" and grabbed["data"]["grabbed_total"] == 20
        # Past its expiry the sweep refunds the rest, once, and tells the room with the reveal.
        setup.channel.now = lambda: now + timedelta(seconds=31)
        await setup.channel.sweep_packets()
        await setup.channel.sweep_packets()
        finished = await of_type(reader, "red_packet")
        assert finished["data"]["action"] == "finished"
        assert finished["data"]["reveal"]["shares"] == [20, 20, 20]
        assert await ledger.balance(setup.store, room.account_id, ledger.BUDGET) == 80
        assert await ledger.audit(setup.store) == []
    finally:
        await reader.close()
        await fan.close()


async def test_authority_is_checked_at_every_op_not_only_at_hello(setup: Setup) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    fan, _ = await join(setup.url, setup.tokens[0])
    host = await create_staff(setup.store, email="h3@tea.example", password_hash="x", now=now)
    await grant_role(
        setup.store, account_id=room.account_id, staff_id=host.id, role=Role.HOST, now=now
    )
    ticket = tickets.mint(SECRET, tickets.Ticket(host.id, "host", room.id), now=now)[0]
    staff, _ = await join(setup.url, ticket)
    try:
        assert (await chat(fan, "a1", "hi"))["type"] == "ack"
        assert (await chat(staff, "s1", "hi"))["type"] == "ack"
        # One id, one op: reusing it for another op is said, never answered with the first.
        reused = await answer_of(fan, {"op": "like", "id": "a1", "count": 1})
        assert (reused["code"], reused["field"]) == ("idempotency_key_reused", "id")
        # The brand revokes the fan's token, the owner takes the host's role away: the open
        # connections are refused from their next op on.
        viewer = await setup.channel.viewer(setup.tokens[0], setup.room_id)
        assert viewer.token_id is not None
        await revoke_token(
            setup.store, account_id=room.account_id, token_id=viewer.token_id, now=now
        )
        assert (await chat(fan, "a2", "still here?"))["code"] == "token_revoked"
        await setup.store.collection(ROLES).delete_one({"staff_id": host.id})
        assert (await chat(staff, "s2", "still here?"))["code"] == "role_required"
    finally:
        await fan.close()
        await staff.close()


async def test_a_coupon_is_claimed_in_the_room_once_per_op_and_within_stock(
    setup: Setup,
) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    window = {"valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(days=1)}
    coupon = await create_coupon(
        setup.store,
        room.account_id,
        title="满100减20",
        stock=1,
        per_fan_limit=1,
        **window,
        now=now,
    )
    fan, _ = await join(setup.url, setup.tokens[0])
    other, _ = await join(setup.url, setup.tokens[1])
    try:
        op = {"op": "claim", "id": "c1", "coupon_id": coupon.id}
        first = await answer_of(fan, op)
        assert first["result"]["stock"] == 0 and first["result"]["repeat"] is False
        assert await answer_of(fan, op) == first  # the retry: the same claim
        gone = await answer_of(other, {**op, "id": "c2"})
        assert gone["code"] == "coupon_out_of_stock"
        stranger = await create_account(setup.store, name="Other", handle="other-gw", now=now)
        theirs = await create_coupon(
            setup.store, stranger.id, title="别家", stock=5, per_fan_limit=1, **window, now=now
        )
        wrong = await answer_of(fan, {**op, "id": "c3", "coupon_id": theirs.id})
        assert (wrong["code"], wrong["field"]) == ("coupon_not_found", "coupon_id")
    finally:
        await fan.close()
        await other.close()


async def test_pinned_cards_reach_viewers_and_each_click_gets_its_own_id(setup: Setup) -> None:
    """A service card and a coupon card pinned beside each other; a fan and an anonymous
    viewer each get a click id of their own (the op retried: the same one); a coupon card is
    claimed, up to its per-fan limit, and a snapshot shows its stock as it is now."""
    room = await rooms.get_room(setup.store, setup.room_id)
    now = utc_now()
    window = {"valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(days=1)}
    coupon = await create_coupon(
        setup.store, room.account_id, title="满100减20", stock=5, per_fan_limit=2, **window, now=now
    )
    shop = {"app_id": "wx_shop", "page": "pages/goods", "title": "买茶"}
    reader, _ = await join(setup.url)
    fan, _ = await join(setup.url, setup.tokens[0])
    try:
        card, _ = await setup.channel.pin(room, "key:k", kind="service", service=shop)
        told = (await of_type(reader, "pin"))["data"]
        assert told["service"] == {"app_id": "wx_shop", "title": "买茶", "image": None}
        assert "page" not in json.dumps(told)  # where it leads is the click's to say
        offer, _ = await setup.channel.pin(room, "key:k", kind="coupon", coupon_id=coupon.id)
        assert (await of_type(reader, "pin"))["data"]["coupon"]["stock"] == 5
        click = {"op": "click", "id": "k1", "pin_id": card.id}
        mine = await answer_of(fan, click)
        assert mine["result"]["go"] == f"/go/{mine['result']['click_id']}"
        assert await answer_of(fan, click) == mine  # the retry: the same id
        theirs = await answer_of(reader, {**click, "id": "k2"})
        assert theirs["result"]["click_id"] not in (None, mine["result"]["click_id"])
        refused = await answer_of(fan, {**click, "id": "k3", "pin_id": offer.id})
        assert refused["code"] == "pin_not_clickable"
        claim = {"op": "claim", "coupon_id": coupon.id}
        got = [await answer_of(fan, {**claim, "id": f"c{n}"}) for n in range(3)]
        assert [g.get("result", {}).get("stock") for g in got[:2]] == [4, 3]
        assert got[2]["code"] == "coupon_limit_reached"
        _, fresh = await join(setup.url)
        shown = {p["kind"]: p for p in fresh["data"]["pins"]}
        assert shown["coupon"]["coupon"]["stock"] == 3 and shown["service"]["id"] == card.id
    finally:
        await reader.close()
        await fan.close()


async def test_a_room_poll_rides_the_channel_votes_once_and_tells_results_once_a_round(
    setup: Setup,
) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    reader, _ = await join(setup.url)
    fans = [(await join(setup.url, token))[0] for token in setup.tokens[:2]]
    try:
        poll = await polls.create_poll(
            setup.store,
            room.account_id,
            question="下一款？",
            options=["乌龙", "红茶"],
            closes_in_s=600,
            room=room,
            now=utc_now(),
        )
        await setup.channel.poll_changed(poll, "created")
        told = (await of_type(reader, "poll"))["data"]
        assert (told["action"], told["id"], told["counts"]) == ("created", poll.id, [0, 0])
        op = {"op": "vote", "poll_id": poll.id}
        answers = [await answer_of(f, {**op, "id": "v1", "option": 1}) for f in fans]
        assert [a["result"]["repeat"] for a in answers] == [False] * 2
        assert answers[-1]["result"]["counts"] == [0, 2]
        assert await answer_of(fans[0], {**op, "id": "v1", "option": 1}) == answers[0]  # retry
        again = await answer_of(fans[0], {**op, "id": "v2", "option": 0})
        assert again["code"] == "already_voted"
        guest = await answer_of(reader, {**op, "id": "g1", "option": 0})
        assert guest["code"] == "read_only"
        await setup.channel.tell([setup.room_id])  # the round: one results event for both votes
        results = (await of_type(reader, "poll"))["data"]
        assert (results["action"], results["counts"], results["total"]) == ("results", [0, 2], 2)
        _, fresh = await join(setup.url)
        assert [p["id"] for p in fresh["data"]["polls"]] == [poll.id]
    finally:
        await reader.close()
        for f in fans:
            await f.close()


async def _watch_from(url: str, origin: str, closed: int | None) -> None:
    """A page on ``origin`` connects: said hello to (None), or closed with ``closed``."""
    ws = await connect(url, origin=origin)
    try:
        if closed is None:
            assert (await hello(ws, None))["type"] == "ack"
        else:
            with pytest.raises(ConnectionClosed) as shut:
                await ws.recv()
            assert shut.value.rcvd is not None and shut.value.rcvd.code == closed
    finally:
        await ws.close()


async def test_pages_watch_from_this_host_or_an_embed_origin_of_the_rooms_account(
    setup: Setup,
) -> None:
    room = await rooms.get_room(setup.store, setup.room_id)
    await update_profile(
        setup.store, room.account_id, now=utc_now(), embed_origins=["https://shop.example"]
    )
    host = setup.url.split("/")[2].split(":")[0]
    for origin, closed in [
        ("https://shop.example", None),
        (f"http://{host}:9999", None),  # our own pages, served from another port
        ("https://evil.example", 4003),
        ("https://shop.example.evil.example", 4003),
    ]:
        await _watch_from(setup.url, origin, closed)


async def test_with_a_public_url_our_pages_are_its_origin_alone(setup: Setup) -> None:
    gateway = Gateway(setup.channel, setup.broker, base_url="https://la.example/")
    port = await gateway.start("127.0.0.1", 0)
    url = setup.url.rsplit(":", 1)[0] + f":{port}/api/v1/rooms/{setup.room_id}/channel"
    host = url.split("/")[2].split(":")[0]
    try:
        for origin, closed in [
            ("https://la.example", None),
            (f"http://{host}:9999", 4003),  # the same machine is no longer ours by itself
            ("https://LA.example:443", None),
        ]:
            await _watch_from(url, origin, closed)
    finally:
        await gateway.stop()
