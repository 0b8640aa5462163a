"""The room channel's HTTP side in-process (webapp/api_channel.py): channel tickets for staff,
and the pinned announcement — who may call each, what is told to the room, and bad input
named with nothing written."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from live import pins, tickets
from store.clock import utc_now
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_editorial import join, owner
from tests.webapp.test_api_rooms import make, services


async def test_every_staff_role_and_the_key_get_a_room_bound_ticket(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room = await make(client, brand)
    url = f"/api/v1/rooms/{room['id']}/channel-tickets"
    secret = services(app).secret
    for role in ("editor", "host", "moderator"):
        person = await join(client, brand, role)
        r = await client.post(url, headers=person.use(client))
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["role"] == role and got["channel_url"] == room["channel_url"]
        read = tickets.read(secret, got["ticket"], room_id=room["id"], now=utc_now())
        assert (read.role, read.room_id) == (role, room["id"])
    client.cookies.clear()
    by_key = await client.post(url, headers=brand.key_headers)
    assert by_key.status_code == 201 and by_key.json()["role"] == "brand"
    # The session alone is not enough: a page on another origin cannot mint one.
    owner(brand).use(client)
    assert (await client.post(url)).status_code == 403
    client.cookies.clear()
    fan = await mint(client, brand)
    assert (await client.post(url, headers=bearer(fan["token"]))).status_code == 403
    assert (await client.post(url)).status_code == 401
    other = await sign_up(client)
    refused = await client.post(url, headers=other.key_headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_required")


async def test_hosts_pin_one_announcement_at_a_time_and_take_it_down(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room = await make(client, brand)
    url = f"/api/v1/rooms/{room['id']}/pins"
    first = await client.post(
        url, json={"kind": "announcement", "text": "8 点抽奖"}, headers=brand.key_headers
    )
    assert first.status_code == 201, first.text
    assert first.json()["by"].startswith("key:") and first.json()["replaced"] == []
    host = await join(client, brand, "host")
    second = await client.post(
        url, json={"kind": "announcement", "text": "9 点上新"}, headers=host.use(client)
    )
    assert second.status_code == 201 and second.json()["replaced"] == [first.json()["id"]]
    client.cookies.clear()
    public = await client.get(url)
    assert [(p["text"], p["by"]) for p in public.json()["items"]] == [("9 点上新", None)]
    staff = await client.get(url, headers=brand.key_headers)
    assert staff.json()["items"][0]["by"] is not None
    # Moderators keep the chat; pinning is the host's.
    moderator = await join(client, brand, "moderator")
    r = await client.post(
        url, json={"kind": "announcement", "text": "x"}, headers=moderator.use(client)
    )
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    client.cookies.clear()
    store = services(app).store
    before = await store.collection(pins.PINS).count({})
    for body, field in [
        ({"kind": "announcement", "text": " "}, "text"),
        ({"kind": "announcement", "text": "x" * 301}, "text"),
        ({"kind": "announcement", "text": "a\x07b"}, "text"),
        ({"kind": "raffle", "text": "x"}, "kind"),
        ({"text": "x"}, "kind"),
    ]:
        bad = await client.post(url, json=body, headers=brand.key_headers)
        assert (bad.status_code, bad.json().get("field")) == (422, field), bad.text
    assert await store.collection(pins.PINS).count({}) == before
    pin_url = f"{url}/{second.json()['id']}"
    assert (await client.delete(pin_url)).status_code == 401
    assert (await client.delete(pin_url, headers=brand.key_headers)).status_code == 204
    assert (await client.delete(pin_url, headers=brand.key_headers)).status_code == 404
    assert (await client.get(url)).json()["items"] == []
    await client.post(f"/api/v1/rooms/{room['id']}/end", headers=brand.key_headers)
    ended = await client.post(
        url, json={"kind": "announcement", "text": "晚了"}, headers=brand.key_headers
    )
    assert (ended.status_code, ended.json()["code"]) == (409, "room_ended")


async def test_the_http_twins_of_chat_and_like_share_the_op_ids_of_the_channel(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room = await make(client, brand)
    says = f"/api/v1/rooms/{room['id']}/chat-messages"
    likes = f"/api/v1/rooms/{room['id']}/likes"
    fan = await mint(client, brand)
    as_fan = bearer(fan["token"])
    early = await client.post(says, json={"text": "开始了吗"}, headers=as_fan)
    assert (early.status_code, early.json()["code"]) == (409, "room_not_live")
    await client.post(f"/api/v1/rooms/{room['id']}/start", headers=brand.key_headers)
    channel = services(app).channel
    assert channel is not None
    # A line said on the channel with op id "c1", retried over HTTP with that id as the
    # Idempotency-Key: the first line's seq, and nothing said again.
    viewer = await channel.fan(fan["fan_id"])
    first = await channel.perform(room["id"], viewer, "c1", {"op": "chat", "text": "有货吗"})
    retried = await client.post(
        says, json={"text": "有货吗"}, headers={**as_fan, "Idempotency-Key": "c1"}
    )
    assert (retried.status_code, retried.json()) == (201, {"seq": first["seq"]})
    topic = f"room:{room['id']}"
    assert await channel.broker.last_seq(topic) == first["seq"]
    # Over HTTP first, then the channel with the same id: once, too.
    said = await client.post(
        says, json={"text": "好的"}, headers={**as_fan, "Idempotency-Key": "c2"}
    )
    assert said.status_code == 429 and said.json()["code"] == "rate_limited"  # 2 s per fan
    channel.chat_every_s = 0
    said = await client.post(
        says, json={"text": "好的"}, headers={**as_fan, "Idempotency-Key": "c2"}
    )
    assert said.status_code == 201
    again = await channel.perform(room["id"], viewer, "c2", {"op": "chat", "text": "好的"})
    assert again == said.json() and await channel.broker.last_seq(topic) == again["seq"]
    # Staff speak over HTTP as the account, marked; the key as the brand.
    host = await join(client, brand, "host")
    staff_line = await client.post(says, json={"text": "现货"}, headers=host.use(client))
    assert staff_line.status_code == 201, staff_line.text
    kept = await channel.broker.recent(topic)
    assert b'"staff":"host"' in kept[-1].frame
    client.cookies.clear()
    assert (await client.post(says, json={"text": "x"})).status_code == 401
    other = await sign_up(client)
    refused = await client.post(says, json={"text": "x"}, headers=other.key_headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_required")
    for body, field in [({"text": ""}, "text"), ({"text": "长" * 201}, "text"), ({}, "text")]:
        bad = await client.post(says, json=body, headers=as_fan)
        assert (bad.status_code, bad.json().get("field")) == (422, field), bad.text
    # Likes: fans only, counted into the room's next likes event.
    liked = await client.post(likes, json={"count": 30}, headers=as_fan)
    assert (liked.status_code, liked.json()) == (200, {"count": 30})
    for body in ({"count": 0}, {"count": 101}, {"count": "many"}):
        bad = await client.post(likes, json=body, headers=as_fan)
        assert (bad.status_code, bad.json().get("field")) == (422, "count"), bad.text
    assert (await client.post(likes, json={}, headers=brand.key_headers)).status_code == 403
    await channel.tell([])  # no viewer here: the HTTP taps are still counted
    assert (await client.get(f"/api/v1/rooms/{room['id']}")).json()["likes"] == 30
