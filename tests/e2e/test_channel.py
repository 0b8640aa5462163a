"""The room channel against the real ``lifeaccount serve``: the room's ``channel_url`` names
the gateway it runs beside the HTTP server; a viewer joins anonymously and a fan chats."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.live_support import create_room
from tests.e2e.support import (
    LIFEACCOUNT,
    Server,
    Servers,
    lifeaccount_env,
    mint_fan,
    sign_up_api,
)

TIMEOUT_S = 10.0


async def receive(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of type ``kind``."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


def test_viewers_join_the_channel_at_its_url_and_a_fan_chats(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        room = create_room(api, owner)
        started = api.post(f"/api/v1/rooms/{room['id']}/start", headers=owner.key_headers)
        assert started.status_code == 200
        token = mint_fan(api, owner.account_id, owner.api_key, "u-1")["token"]
    url = room["channel_url"]
    assert url.startswith("ws://127.0.0.1:") and url.endswith(f"/rooms/{room['id']}/channel")

    async def run() -> None:
        async with connect(url) as viewer, connect(url) as fan:
            await viewer.send(json.dumps({"op": "hello"}))
            snapshot = await receive(viewer, "snapshot")
            assert snapshot["data"]["room"]["state"] == "live"
            await fan.send(json.dumps({"op": "hello", "token": token}))
            await receive(fan, "snapshot")
            await fan.send(json.dumps({"op": "chat", "id": "c1", "text": "有优惠吗"}))
            ack = await receive(fan, "ack")
            said = await receive(viewer, "chat")
            assert said["seq"] == ack["result"]["seq"] and said["data"]["text"] == "有优惠吗"
            # Likes and the viewer count come in the round the gateway runs every second.
            await fan.send(json.dumps({"op": "like", "id": "l1", "count": 5}))
            likes, counts = None, []
            async with asyncio.timeout(TIMEOUT_S):
                # In either order: a round may come before the like, one while one viewer was in.
                while likes is None or 2 not in counts:
                    message = json.loads(await viewer.recv())
                    if message["type"] == "likes":
                        likes = message["data"]
                    elif message["type"] == "viewers":
                        counts.append(message["data"]["count"])
            assert likes == {"added": 5, "total": 5}
            # The room's changes reach viewers as room events: chat rules, then its end.
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                rules = {"mode": "followers", "min_tier": 0, "slow_mode_s": 5}
                put = await client.put(
                    f"/api/v1/rooms/{room['id']}/chat", json=rules, headers=owner.key_headers
                )
                assert put.status_code == 200
                assert (await receive(viewer, "room"))["data"]["chat"] == rules
                end = await client.post(
                    f"/api/v1/rooms/{room['id']}/end", headers=owner.key_headers
                )
                assert end.status_code == 200
            assert (await receive(viewer, "room"))["data"]["state"] == "ended"

    asyncio.run(run())


def test_a_taken_channel_port_is_said_plainly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                str(LIFEACCOUNT),
                "serve",
                *("--port", "0", "--channel-port", str(port)),
                *("--data-dir", str(tmp_path / "data")),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=lifeaccount_env(),
        )
    assert done.returncode == 1
    assert f"cannot listen for the room channel on 127.0.0.1:{port}" in done.stderr


def test_two_servers_on_one_redis_share_a_room(
    tmp_path: Path, servers: Servers, redis_url: str
) -> None:
    """Two ``lifeaccount serve`` processes on the same data and one Redis broker: a fan on one
    and a viewer on the other are in the same room — chat, seq and the viewer count."""
    env = {"LIFEACCOUNT_BROKER": redis_url}
    first = servers.start(tmp_path / "data", env)
    second = servers.start(tmp_path / "data", env)
    with httpx.Client(base_url=first.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        room = create_room(api, owner)
        assert api.post(f"/api/v1/rooms/{room['id']}/start", headers=owner.key_headers).is_success
        token = mint_fan(api, owner.account_id, owner.api_key, "u-redis")["token"]
    with httpx.Client(base_url=second.base_url, timeout=30) as api:
        elsewhere = api.get(f"/api/v1/rooms/{room['id']}").json()["channel_url"]
    assert elsewhere != room["channel_url"]  # each process's own gateway

    async def run() -> None:
        async with connect(room["channel_url"]) as fan, connect(elsewhere) as viewer:
            await viewer.send(json.dumps({"op": "hello"}))
            await receive(viewer, "snapshot")
            await fan.send(json.dumps({"op": "hello", "token": token}))
            await receive(fan, "snapshot")
            await fan.send(json.dumps({"op": "chat", "id": "c1", "text": "两边都看得到吗"}))
            ack = await receive(fan, "ack")
            said = await receive(viewer, "chat")
            assert said["seq"] == ack["result"]["seq"]
            assert said["data"]["text"] == "两边都看得到吗"
            async with asyncio.timeout(TIMEOUT_S):  # one viewer here, one there: two in all
                while (await receive(viewer, "viewers"))["data"]["count"] != 2:
                    pass

    asyncio.run(run())
