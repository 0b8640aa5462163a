"""Live video against the real ``lifeaccount serve``: a non-browser WHIP client (aiortc, as an
encoder would) publishes to a room over HTTP with its stream key; the room goes live, HLS
segments appear and decode, a WHEP viewer gets frames, bad requests are refused without
disturbing the publisher, and ending the room makes its recording a replay video."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from media.tools import ffmpeg_path
from tests.e2e.live_support import (
    DEADLINE_S,
    Refused,
    create_room,
    decodes,
    segments,
    wait_for,
    whep_signal,
    whip_signal,
)
from tests.e2e.support import Server, sign_up_api
from tests.media.clips import make_clip
from tests.media.peers import publish, view


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
            # While live, a wrong key and a garbage offer are refused as before.
            wrong_key = {**sdp, "Authorization": "Bearer lsk_not_it"}
            assert (
                await client.post(whip_url, content="v=0", headers=wrong_key)
            ).status_code == 401
            junk = await client.post(whip_url, content="no sdp", headers={**bearer, **sdp})
            assert junk.status_code == 400
            # None of them disturbed the publisher: a viewer gets its frames.
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
            # The host's view of it: H.264 received and copied, HLS fresh.
            health = await client.get(
                f"{server.base_url}/api/v1/rooms/{room['id']}/health", headers=owner.key_headers
            )
            assert health.status_code == 200, health.text
            seen = health.json()
            assert seen["publishing"] is True and seen["state"] == "live"
            assert (seen["video_codec"], seen["transcoding"]) == ("H264", False)
            assert seen["packets"]["video"] > 0 and seen["packets"]["audio"] > 0
            assert seen["keyframe_requests"] >= 1 and seen["hls_segments"] >= 2
            assert seen["hls_updated_s_ago"] < 3 * seen["hls_target_s"]
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


def test_ffmpeg_publishes_with_its_whip_muxer(server: Server) -> None:
    """FFmpeg's own WHIP client (``-f whip``), as a standard encoder: it goes live, its
    H.264 and Opus become HLS, and its DELETE at the end lets the room's grace period start."""
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        room = create_room(api, owner)
        encoder = subprocess.Popen(
            [
                ffmpeg_path(),
                *("-hide_banner", "-nostdin", "-loglevel", "warning", "-re"),
                *("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"),
                *("-f", "lavfi", "-i", "sine=frequency=440", "-t", "10"),
                *("-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast"),
                *("-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p"),
                *("-c:a", "libopus", "-ar", "48000", "-ac", "2"),
                *("-f", "whip", "-authorization", room["stream_key"], room["whip_url"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            listed = wait_for(
                lambda: api.get(room["hls_url"]),
                lambda r: r.status_code == 200 and len(segments(r.text)) >= 2,
            )
            assert api.get(f"/api/v1/rooms/{room['id']}").json()["state"] == "live"
            code, said = decodes(urljoin(room["hls_url"], segments(listed.text)[0]))
            assert code == 0, said
        finally:
            _, warnings = encoder.communicate(timeout=60)
        assert encoder.returncode == 0, warnings
        # No connection is left to fail: only its DELETE can have told the server.
        gone = wait_for(
            lambda: api.get(f"/api/v1/rooms/{room['id']}").json(),
            lambda r: r["publisher_gone_at"] is not None,
        )
        assert gone["state"] == "live"
