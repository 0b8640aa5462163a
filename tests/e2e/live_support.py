"""What the live e2e tests share: a room made through the API, WHIP and WHEP signalling over
HTTP for the aiortc peers of ``tests.media.peers``, polling with a deadline, and decoding."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from media.tools import ffmpeg_path
from tests.e2e.support import Owner

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


async def eventually(fetch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool]) -> Any:
    """``wait_for`` inside an event loop."""
    deadline = time.monotonic() + DEADLINE_S
    value = await fetch()
    while not done(value):
        assert time.monotonic() < deadline, f"never got there: {value}"
        await asyncio.sleep(0.2)  # a poll interval: the loop checks the real state each time
        value = await fetch()
    return value


def segments(playlist: str) -> list[str]:
    """The segment URIs of an HLS media playlist, in order."""
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def listed_seconds(playlist: str) -> float:
    """The playlist's length: the sum of its segments' EXTINF durations."""
    return sum(
        float(line.removeprefix("#EXTINF:").split(",")[0])
        for line in playlist.splitlines()
        if line.startswith("#EXTINF:")
    )
