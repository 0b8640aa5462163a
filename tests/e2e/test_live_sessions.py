"""Live sessions against the real ``lifeaccount serve``, each on a server of its own: the WHEP
seat cap (503 + Retry-After, nobody disturbed), a publisher that drops and comes back within
the grace period, a rotated stream key letting its publisher go, and a server killed mid-live
whose rooms the next start winds up."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import av
import httpx
import pytest

from tests.e2e.live_support import (
    Refused,
    create_room,
    eventually,
    listed_seconds,
    segments,
    wait_for,
    whep_signal,
    whip_signal,
)
from tests.e2e.support import Owner, Server, Servers, sign_up_api
from tests.media.clips import make_clip
from tests.media.peers import Publisher, publish, view

SDP = {"Content-Type": "application/sdp"}
SEGMENT = re.compile(r"(\d+)\.ts$")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Longer than any test publishes; each publisher starts it from the beginning."""
    made = tmp_path_factory.mktemp("live-sessions") / "cam.mp4"
    return make_clip(made, size="640x360", seconds=60.0, rate=30)


class Room:
    """A room of a new account on ``server``, read and driven over HTTP."""

    def __init__(self, server: Server) -> None:
        self.base = server.base_url
        with httpx.Client(base_url=self.base, timeout=30) as api:
            self.owner: Owner = sign_up_api(api)
            made = create_room(api, self.owner)
        self.id: str = made["id"]
        self.key: str = made["stream_key"]
        self.whip_url: str = made["whip_url"]
        self.whep_url: str = made["whep_url"]
        self.hls_url: str = made["hls_url"]

    async def state(self, client: httpx.AsyncClient) -> dict[str, Any]:
        got: dict[str, Any] = (await client.get(f"{self.base}/api/v1/rooms/{self.id}")).json()
        return got

    async def playlist(self, client: httpx.AsyncClient) -> str:
        listed = await client.get(self.hls_url)
        return listed.text if listed.status_code == 200 else ""

    async def publish(self, client: httpx.AsyncClient, clip: Path) -> Publisher:
        return await publish(whip_signal(client, self.whip_url, self.key), clip)

    async def hang_up(self, client: httpx.AsyncClient, publisher: Publisher) -> int:
        """DELETE the publisher's session with the key, then close it; the DELETE's status."""
        hung = await client.delete(
            urljoin(self.whip_url, publisher.session_id),
            headers={"Authorization": f"Bearer {self.key}"},
        )
        await publisher.close()
        return hung.status_code

    async def two_more_segments(self, client: httpx.AsyncClient) -> tuple[str, int]:
        """Wait until the playlist lists two segments past its last one now; the playlist
        then, and the number of that last one (-1: none yet)."""
        last = max(numbers(await self.playlist(client)), default=-1)
        listed: str = await eventually(
            lambda: self.playlist(client),
            lambda text: max(numbers(text), default=-1) >= last + 2,
        )
        return listed, last

    def end(self) -> dict[str, Any]:
        """End the room, then wait for its replay to be ready; the replay content."""
        with httpx.Client(base_url=self.base, timeout=30) as api:
            ended = api.post(f"/api/v1/rooms/{self.id}/end", headers=self.owner.key_headers)
            assert ended.status_code == 200, ended.text
            return self.replay(api)

    def replay(self, api: httpx.Client) -> dict[str, Any]:
        replay_id = wait_for(
            lambda: api.get(f"/api/v1/rooms/{self.id}").json().get("replay_content_id"),
            lambda value: bool(value),
        )
        replay: dict[str, Any] = wait_for(
            lambda: api.get(f"/api/v1/contents/{replay_id}", headers=self.owner.key_headers).json(),
            lambda c: c["media"]["state"] in ("ready", "failed"),
        )
        assert replay["media"]["state"] == "ready", replay["media"]
        return replay


def numbers(playlist: str) -> list[int]:
    """The sequence numbers in the playlist's segment names (``index<N>.ts``)."""
    found = [SEGMENT.search(name) for name in segments(playlist)]
    assert all(found), playlist
    return [int(m.group(1)) for m in found if m]


def discontinuities(playlist: str) -> list[tuple[int, bool]]:
    """Each segment's number, and whether an ``#EXT-X-DISCONTINUITY`` comes before it."""
    marked, found = False, []
    for line in playlist.splitlines():
        if line == "#EXT-X-DISCONTINUITY":
            marked = True
        elif (m := SEGMENT.search(line)) and not line.startswith("#"):
            found.append((int(m.group(1)), marked))
            marked = False
    return found


def media_sequence(playlist: str) -> int:
    found = re.search(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)$", playlist, re.M)
    assert found, playlist
    return int(found.group(1))


def duration_s(media: Path) -> float:
    with av.open(str(media)) as container:
        assert container.duration is not None
        return float(container.duration / av.time_base)


def test_beyond_the_seat_cap_whep_answers_503_and_disturbs_nobody(
    servers: Servers, tmp_path: Path, clip: Path
) -> None:
    server = servers.start(tmp_path / "data", {"LIFEACCOUNT_LIVE_SEATS": "1"})
    room = Room(server)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            publisher = await room.publish(client, clip)
            first = await view(whep_signal(client, room.whep_url))
            try:
                before = await first.frames("video", 5)

                async def full(offer: str) -> tuple[str, str]:
                    r = await client.post(room.whep_url, content=offer, headers=SDP)
                    assert r.status_code == 503, r.text
                    assert r.headers["content-type"] == "application/problem+json"
                    assert r.json()["code"] == "seats_full"
                    assert int(r.headers["retry-after"]) > 0
                    raise Refused

                with pytest.raises(Refused):
                    await view(full)
                garbage = await client.post(room.whep_url, content="no sdp", headers=SDP)
                assert garbage.status_code == 400 and garbage.json()["code"] == "bad_offer"
                # The seated viewer plays on, from the same publisher, still connected.
                after = await first.frames("video", 30)
                assert min(f.pts for f in after) > max(f.pts for f in before)  # type: ignore[attr-defined]
                state = await room.state(client)
                assert state["state"] == "live" and state["publisher_gone_at"] is None
                # Leaving frees the seat for the next viewer.
                left = await client.delete(urljoin(room.whep_url, first.seat_id))
                assert left.status_code == 200
            finally:
                await first.close()
            second = await view(whep_signal(client, room.whep_url))
            try:
                assert len(await second.frames("video", 5)) == 5
            finally:
                await second.close()
                await publisher.close()

    asyncio.run(run())


def test_a_publisher_back_within_the_grace_period_continues_the_live(
    servers: Servers, tmp_path: Path, clip: Path
) -> None:
    server = servers.start(tmp_path / "data")
    room = Room(server)

    async def run() -> tuple[str, int]:
        async with httpx.AsyncClient(timeout=30) as client:
            first = await room.publish(client, clip)
            await eventually(lambda: room.playlist(client), lambda text: len(segments(text)) >= 2)
            # The encoder's connection drops: no DELETE, the peer just goes.
            await first.close()
            gone = await eventually(
                lambda: room.state(client), lambda r: r["publisher_gone_at"] is not None
            )
            assert gone["state"] == "live"
            second = await room.publish(client, clip)
            try:
                back = await room.state(client)
                assert back["state"] == "live" and back["publisher_gone_at"] is None
                # Every segment of the first session is listed once the second one is on.
                listed, last = await room.two_more_segments(client)
            finally:
                hung = await room.hang_up(client, second)
            assert hung == 200
            return listed, last

    listed, last = asyncio.run(run())
    # One timeline: the numbering carries on across the reconnect, marked, not restarted.
    numbered = numbers(listed)
    assert numbered == list(range(media_sequence(listed), media_sequence(listed) + len(numbered)))
    marked = [n for n, flag in discontinuities(listed) if flag]
    assert last + 1 in marked, listed
    assert not [n for n in marked if n not in (last + 1, numbered[0])], listed
    assert "#EXT-X-ENDLIST" not in listed
    # The recording keeps both sessions, and the replay is both of them.
    rec = server.data_dir / "media" / "live" / room.id / "rec"
    parts = [rec / "part-1.ts", rec / "part-2.ts"]
    lengths = [duration_s(p) for p in parts]
    assert min(lengths) > 1.0, lengths
    replay = room.end()
    assert replay["media"]["duration_s"] == pytest.approx(sum(lengths), abs=1.0)


def test_rotating_the_key_lets_its_publisher_go(
    servers: Servers, tmp_path: Path, clip: Path
) -> None:
    server = servers.start(tmp_path / "data")
    room = Room(server)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            publisher = await room.publish(client, clip)

            async def connection() -> str:
                return str(publisher.pc.connectionState)

            try:
                rotated = await client.post(
                    f"{room.base}/api/v1/rooms/{room.id}/stream-key",
                    headers=room.owner.key_headers,
                )
                assert rotated.status_code == 200, rotated.text
                await eventually(
                    connection,
                    lambda state: state in ("closed", "failed"),
                )
            finally:
                await publisher.close()
            state = await room.state(client)
            assert state["state"] == "live" and state["publisher_gone_at"] is not None
            old = await client.post(
                room.whip_url, content="v=0", headers={**SDP, "Authorization": f"Bearer {room.key}"}
            )
            assert old.status_code == 401
            room.key = rotated.json()["stream_key"]
            again = await room.publish(client, clip)
            try:
                state = await room.state(client)
                assert state["state"] == "live" and state["publisher_gone_at"] is None
            finally:
                hung = await room.hang_up(client, again)
            assert hung == 200
            # The host page publishes with the owner's session, not the key: a rotation
            # leaves it on the air.
            host = await publish(session_signal(client, room), clip)
            try:
                rotated = await client.post(
                    f"{room.base}/api/v1/rooms/{room.id}/stream-key",
                    headers=room.owner.key_headers,
                )
                assert rotated.status_code == 200, rotated.text
                await room.two_more_segments(client)
                assert host.pc.connectionState == "connected"
                state = await room.state(client)
                assert state["state"] == "live" and state["publisher_gone_at"] is None
            finally:
                await host.close()

    asyncio.run(run())


def session_signal(client: httpx.AsyncClient, room: Room) -> Any:
    """WHIP as the host page sends it: the owner's session cookie and its CSRF token."""

    async def signal(offer: str) -> tuple[str, str]:
        r = await client.post(
            room.whip_url, content=offer, headers={**SDP, **room.owner.session_headers}
        )
        assert r.status_code == 201, r.text
        return r.text, r.headers["location"]

    return signal


def test_a_room_whose_server_was_killed_ends_after_the_grace_period_with_its_replay(
    servers: Servers, tmp_path: Path, clip: Path
) -> None:
    quick = {"LIFEACCOUNT_LIVE_GRACE_S": "2", "LIFEACCOUNT_SCHEDULE_EVERY_S": "1"}
    data = tmp_path / "data"
    server = servers.start(data, quick)
    room = Room(server)

    async def before_the_crash() -> float:
        async with httpx.AsyncClient(timeout=30) as client:
            publisher = await room.publish(client, clip)
            try:
                listed = await eventually(
                    lambda: room.playlist(client), lambda text: len(segments(text)) >= 3
                )
            finally:
                server.process.kill()  # no shutdown: the room is left live and connected
                server.process.wait()
                await publisher.close()
            return listed_seconds(listed)

    recorded_s = asyncio.run(before_the_crash())
    restarted = servers.start(data, quick)
    room.base = restarted.base_url
    with httpx.Client(base_url=restarted.base_url, timeout=30) as api:
        ended = wait_for(
            lambda: api.get(f"/api/v1/rooms/{room.id}").json(),
            lambda r: r["state"] == "ended",
        )
        assert ended["ended_reason"] == "publisher_gone"
        replay = room.replay(api)
        # What was segmented before the crash is in the replay (the part is written out
        # packet by packet; buffered, a second or more of it was lost with the process).
        assert replay["media"]["duration_s"] >= recorded_s - 0.2
        final = api.get(f"/hls/{room.id}/index.m3u8")
        assert final.status_code == 200 and "#EXT-X-ENDLIST" in final.text
