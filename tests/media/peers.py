"""Non-browser WebRTC clients for the live engine's tests: a WHIP-like publisher and a
WHEP-like viewer, both aiortc peers on this machine's own address (aioice offers no loopback
candidates, and no STUN server is reachable here)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.webrtc import DIRECT, new_peer

Signal = Callable[[str], Awaitable[tuple[str, str]]]


def without_candidates(sdp: str) -> str:
    """The offer as an encoder that does not trickle and sends no candidates (the server
    learns the client's address from its connectivity checks)."""
    lines = sdp.split("\r\n")
    return "\r\n".join(
        line
        for line in lines
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    )


async def wait_connected(pc: RTCPeerConnection, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed"):
                raise AssertionError(f"connection {pc.connectionState}")
            changed = asyncio.Event()
            pc.once("connectionstatechange", changed.set)
            await changed.wait()


@dataclass
class Publisher:
    pc: RTCPeerConnection
    player: MediaPlayer
    session_id: str

    async def close(self) -> None:
        await self.pc.close()
        for track in (self.player.audio, self.player.video):
            if track is not None:
                track.stop()


async def publish(
    accept: Signal,
    clip: Path,
    *,
    video_codec: str = "H264",
    trickle_free: bool = False,
    connect: bool = True,
) -> Publisher:
    """Publish ``clip`` (in real time) through ``accept`` (``LiveIngest.accept``)."""
    pc = new_peer(DIRECT)
    player = MediaPlayer(str(clip))
    if player.audio is not None:
        pc.addTrack(player.audio)
    if player.video is not None:
        video = pc.addTransceiver(player.video, direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities("video")
        assert capabilities is not None
        video.setCodecPreferences(
            [c for c in capabilities.codecs if c.mimeType.lower() == f"video/{video_codec.lower()}"]
        )
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    if trickle_free:
        offer = without_candidates(offer)
    publisher = Publisher(pc=pc, player=player, session_id="")
    try:
        answer, publisher.session_id = await accept(offer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if connect:
            await wait_connected(pc)
    except BaseException:
        await publisher.close()
        raise
    return publisher


@dataclass
class Viewer:
    pc: RTCPeerConnection
    seat_id: str
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)

    async def frames(self, kind: str, count: int, timeout: float = 20.0) -> list[object]:
        """``count`` frames of ``kind``, as aiortc decoded them."""
        got = []
        async with asyncio.timeout(timeout):
            while kind not in self.tracks:
                await asyncio.sleep(0.05)
            track = self.tracks[kind]
            while len(got) < count:
                with contextlib.suppress(MediaStreamError):
                    got.append(await track.recv())
        return got

    async def close(self) -> None:
        await self.pc.close()


async def view(play: Signal, *, connect: bool = True) -> Viewer:
    """A WHEP-like viewer receiving audio and video through ``play`` (``LiveIngest.play``)."""
    pc = new_peer(DIRECT)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    viewer = Viewer(pc=pc, seat_id="")

    def on_track(track: MediaStreamTrack) -> None:
        viewer.tracks[track.kind] = track

    pc.on("track", on_track)
    await pc.setLocalDescription(await pc.createOffer())
    try:
        answer, viewer.seat_id = await play(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if connect:
            await wait_connected(pc)
    except BaseException:
        await pc.close()
        raise
    return viewer
