"""Live video against the real ``lifeaccount serve``: a non-browser WHIP client (aiortc, as an
encoder would) publishes to a room over HTTP with its stream key; the room goes live, HLS
segments appear and decode, a WHEP viewer gets frames, bad requests are refused without
disturbing the publisher, and ending the room makes its recording a replay video."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from media.tools import ffmpeg_path
from tests.e2e.support import Owner, Server, sign_up_api
from tests.media.clips import make_clip
from tests.media.peers import publish, view

DEADLINE_S = 90.0


class Refused(Exception):
    pass


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    value = fetch()
    while not done(value):
        assert time.monotonic() < deadline, f"never got there: {value}"
        time.sleep(0.2)  # a poll interval: the loop checks the real state each time
        value = fetch()
    return value


def create_room(api: httpx.Client, owner: Owner) -> dict[str, Any]:
    made = api.post(
        f"/api/v1/accounts/{owner.account_id}/rooms",
        json={"title": "秋季新品直播"},
        headers=owner.key_headers,
    )
    assert made.status_code == 201, made.text
    room: dict[str, Any] = made.json()
    return room


def whip_signal(client: httpx.AsyncClient, url: str, key: str) -> Any:
    async def signal(offer: str) -> tuple[str, str]:
        r = await client.post(
            url,
            content=offer,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith("application/sdp")
        return r.text, r.headers["location"]

    return signal


def whep_signal(client: httpx.AsyncClient, url: str) -> Any:
    async def signal(offer: str) -> tuple[str, str]:
        r = await client.post(url, content=offer, headers={"Content-Type": "application/sdp"})
        assert r.status_code == 201, r.text
        return r.text, r.headers["location"]

    return signal


def decodes(url: str) -> tuple[int, str]:
    done = subprocess.run(
        [ffmpeg_path(), "-nostdin", "-v", "error", "-i", url, "-f", "null", "-"],
        capture_output=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def test_a_whip_encoder_goes_live_and_the_room_ends_in_a_replay(
    server: Server, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "cam.mp4", size="640x360", seconds=20.0, rate=30)
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        room = create_room(api, owner)
        whip_url, key = room["whip_url"], room["stream_key"]
        sdp = {"Content-Type": "application/sdp"}
        # Refused, and nothing goes live: no key, a wrong key, not SDP, garbage SDP.
        assert api.post(whip_url, content="v=0", headers=sdp).status_code == 401
        wrong = api.post(whip_url, content="v=0", headers={**sdp, "Authorization": "Bearer x"})
        assert wrong.status_code == 401 and wrong.json()["field"] == "Authorization"
        bearer = {"Authorization": f"Bearer {key}"}
        r = api.post(whip_url, content="v=0", headers={**bearer, "Content-Type": "text/plain"})
        assert r.status_code == 415
        garbage = api.post(whip_url, content="this is no sdp", headers={**bearer, **sdp})
        assert garbage.status_code == 400 and garbage.json()["code"] == "bad_offer"
        assert api.get(f"/api/v1/rooms/{room['id']}").json()["state"] == "scheduled"

        async def live() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                publisher = await publish(whip_signal(client, whip_url, key), clip)
                try:
                    await during(client, publisher.session_id)
                finally:
                    await publisher.close()

        async def during(client: httpx.AsyncClient, location: str) -> None:
            state = (await client.get(f"{server.base_url}/api/v1/rooms/{room['id']}")).json()
            assert state["state"] == "live"
            # A second publisher is refused; the first one goes on.

            async def busy(offer: str) -> tuple[str, str]:
                r = await client.post(whip_url, content=offer, headers={**bearer, **sdp})
                assert r.status_code == 409 and r.json()["code"] == "publisher_busy", r.text
                raise Refused

            with pytest.raises(Refused):
                await publish(busy, clip)
            viewer = await view(whep_signal(client, room["whep_url"]))
            try:
                frames = await viewer.frames("video", 10)
                assert len(frames) == 10
            finally:
                await viewer.close()
            # HLS segments appear and decode.
            deadline = time.monotonic() + DEADLINE_S
            while True:
                listed = await client.get(room["hls_url"])
                segments = [
                    line
                    for line in listed.text.splitlines()
                    if listed.status_code == 200 and line and not line.startswith("#")
                ]
                if len(segments) >= 2:
                    break
                assert time.monotonic() < deadline, listed.text
                await asyncio.sleep(0.2)  # polling the playlist the server writes
            assert listed.headers["cache-control"] == "no-cache"
            code, said = await asyncio.to_thread(decodes, urljoin(room["hls_url"], segments[0]))
            assert code == 0, said
            patch = await client.patch(urljoin(whip_url + "/", location), headers=bearer)
            assert patch.status_code == 405
            hung = await client.delete(urljoin(whip_url + "/", location), headers=bearer)
            assert hung.status_code == 200

        asyncio.run(live())
        ended = api.post(f"/api/v1/rooms/{room['id']}/end", headers=owner.key_headers)
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
        replay_id = wait_for(
            lambda: api.get(f"/api/v1/rooms/{room['id']}").json().get("replay_content_id"),
            lambda value: bool(value),
        )
        replay = wait_for(
            lambda: api.get(f"/api/v1/contents/{replay_id}", headers=owner.key_headers).json(),
            lambda c: c["status"] == "published" or c["media"]["state"] == "failed",
        )
        assert replay["media"]["state"] == "ready", replay["media"]
        assert replay["kind"] == "video" and replay["title"].endswith("回放")
        code, said = decodes(f"{server.base_url}{replay['media']['mp4_url']}")
        assert code == 0, said
        assert api.post(whip_url, content="v=0", headers={**bearer, **sdp}).status_code == 409
