"""aiortc peers for ``bench.live``: publishers, viewers, and the stamped video track.

Every peer has no ICE server, as the live engine's own: aioice offers no loopback candidates,
so peers meet on this machine's own address. An offer goes out with all its candidates and
the answer comes back with all of the other side's (the server does not trickle), through a
:data:`Signal`: WHIP and WHEP over HTTP, a pipe to the relay baseline, or a direct hand-over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
from av.video.frame import VideoFrame

from bench.stamp import StampedFrames, read_stamp

SDP = "application/sdp"
CONNECT_TIMEOUT_S = 20.0

# Takes our offer, returns the other side's answer.
Signal = Callable[[str], Awaitable[str]]


def new_peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def prefer(transceiver: RTCRtpTransceiver, codec: str) -> None:
    """Offer only ``codec`` ("H264", "VP8") for this transceiver's video."""
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    wanted = {f"video/{codec.lower()}", "video/rtx"}
    transceiver.setCodecPreferences(
        [c for c in capabilities.codecs if c.mimeType.lower() in wanted]
    )


async def connect(pc: RTCPeerConnection, signal: Signal) -> str:
    """Offer, apply the answer, and wait until ICE and DTLS are up; the answer SDP."""
    await pc.setLocalDescription(await pc.createOffer())
    answer = await signal(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed"):
                raise RuntimeError(f"the peer connection {pc.connectionState}")
            changed = asyncio.Event()
            pc.once("connectionstatechange", changed.set)
            await changed.wait()
    return answer


def video_codec(sdp: str) -> str:
    """The first video codec an SDP names: what the answer chose."""
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=rtpmap:"):
            return line.split(" ", 1)[1].split("/", 1)[0]
    return "-"


class StampedTrack(VideoStreamTrack):
    """1280x720 frames at 30 fps, each carrying the time it was made (``bench.stamp``)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = StampedFrames()
        self.first_at: float | None = None

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        if self.first_at is None:
            self.first_at = time.perf_counter()
        return self.frames.frame(pts, time_base)

    def fps(self) -> float:
        """Frames made per second since the first: below 30 when encoding cannot keep up
        (aiortc asks for the next frame only once the last one is encoded)."""
        if self.first_at is None or self.frames.count < 2:
            return 0.0
        return (self.frames.count - 1) / (time.perf_counter() - self.first_at)


@dataclass
class Publisher:
    """One sending peer, from a clip (passed through as encoded) or the stamped track."""

    pc: RTCPeerConnection
    tracks: list[MediaStreamTrack]
    stamped: StampedTrack | None = None

    async def close(self) -> None:
        await self.pc.close()
        for track in self.tracks:
            track.stop()


def clip_publisher(clip: str, codec: str) -> Publisher:
    """A publisher of ``clip`` in real time, its packets sent as they are (no decode, no
    encode: the bench's own CPU stays low); ``codec`` must be the clip's video codec."""
    player = MediaPlayer(clip, decode=False)
    if player.audio is None or player.video is None:
        raise RuntimeError(f"{clip} needs Opus audio and {codec} video to be sent as it is")
    pc = new_peer()
    pc.addTransceiver(player.audio, direction="sendonly")
    prefer(pc.addTransceiver(player.video, direction="sendonly"), codec)
    return Publisher(pc, [player.audio, player.video])


def stamped_publisher() -> Publisher:
    """A publisher of :class:`StampedTrack`, encoded by aiortc (H.264, copied into HLS)."""
    track = StampedTrack()
    pc = new_peer()
    prefer(pc.addTransceiver(track, direction="sendonly"), "H264")
    return Publisher(pc, [track], stamped=track)


@dataclass
class Viewer:
    """A receiving peer that reads every frame (aiortc decodes them all anyway), counts them,
    and, with ``stamps``, records how old each video frame is when it comes out."""

    pc: RTCPeerConnection
    stamps: bool = False
    frames: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    latencies_ms: list[float] = field(default_factory=list)
    unreadable: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.create_task(self._read(track))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                arrived_ms = time.time() * 1000
                self.frames[track.kind] += 1
                if self.stamps and isinstance(frame, VideoFrame):
                    stamp = read_stamp(frame)
                    if stamp is None:
                        self.unreadable += 1
                    else:
                        self.latencies_ms.append(arrived_ms - stamp)


def new_viewer(*, stamps: bool = False, audio: bool = True) -> Viewer:
    """A viewer's peer: receives video (and audio), offering aiortc's codecs in its own
    order (VP8 first, as Chrome does), so the far side picks as it would for a browser."""
    pc = new_peer()
    viewer = Viewer(pc, stamps=stamps)
    pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    pc.on("track", viewer.on_track)
    return viewer


def whip_signal(client: httpx.AsyncClient, url: str, stream_key: str) -> Signal:
    """WHIP (RFC 9725): the offer POSTed with the stream key; 201 with the answer."""

    async def signal(offer: str) -> str:
        headers = {"Authorization": f"Bearer {stream_key}", "Content-Type": SDP}
        r = await client.post(url, content=offer, headers=headers)
        if r.status_code != 201 or "location" not in r.headers:
            raise RuntimeError(f"WHIP answered {r.status_code}: {r.text[:300]}")
        return r.text

    return signal


def whep_signal(client: httpx.AsyncClient, url: str) -> Signal:
    """WHEP: the viewer's offer POSTed; 201 with the answer, 503 when the seats are full."""

    async def signal(offer: str) -> str:
        r = await client.post(url, content=offer, headers={"Content-Type": SDP})
        if r.status_code != 201:
            raise RuntimeError(f"WHEP answered {r.status_code}: {r.text[:300]}")
        return r.text

    return signal


def direct_signal(far: RTCPeerConnection) -> Signal:
    """Peer to peer in this process, nothing between the two: the baseline for latency."""

    async def signal(offer: str) -> str:
        await far.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await far.setLocalDescription(await far.createAnswer())
        return str(far.localDescription.sdp)

    return signal
