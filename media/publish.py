"""One publish session: a WHIP publisher from its offer to its goodbye.

It owns the publisher's peer connection, an :class:`~media.rtp_tap.RtpTap` per received
track, the UDP socket the taps send from, and the ffmpeg child that turns the session's media
into the room's HLS and one recording part (``media.live_ffmpeg.live_command``). Decoded frames
go to the room's :class:`~media.fanout.FrameFanout` of each kind for the WHEP seats.

A session ends once, for one :class:`~media.webrtc.EndReason`: the owner hears of it at once
through ``on_end`` (the room's grace period starts then), while :meth:`close` finishes the
work: the taps send ffmpeg an RTCP BYE per stream, ffmpeg writes the last segment and closes
the part, and only then is the session closed (so the next session's ffmpeg never writes the
playlist while this one still does).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from av.frame import Frame

from media.fanout import FrameFanout
from media.keyframes import KeyframeSchedule
from media.lifeline import ChildLimits, spawn
from media.live_ffmpeg import (
    LOCALHOST,
    LiveSettings,
    RtpStream,
    copies_video,
    fmtp_line,
    live_command,
    session_sdp,
)
from media.ports import free_port_pair, udp_ports_bound
from media.rtp_tap import ReportGate, RtpTap, TapPlan
from media.webrtc import SENDING, BadOffer, EndReason, Ice, Offer, answer, new_peer, watch

# Video codecs taken from a publisher, in order of preference: H.264 is copied into HLS as it
# comes; VP8 is what some browsers prefer and is encoded to H.264 by ffmpeg.
VIDEO_CODECS = ("H264", "VP8")
STDERR_LINES = 20
LISTEN_POLL_S = 0.01


class EncoderError(RuntimeError):
    """ffmpeg could not be started for a publisher (the route answers 500)."""

    def __init__(self, message: str, stderr_tail: Iterable[str] = ()) -> None:
        self.stderr_tail = "\n".join(stderr_tail)
        super().__init__(message + (f"\n{self.stderr_tail}" if self.stderr_tail else ""))


@dataclass(frozen=True)
class SessionTimeouts:
    connect_s: float = 15.0  # from the answer to a connected peer
    listen_s: float = 10.0  # ffmpeg opening its UDP ports after it was started
    bye_s: float = 5.0  # ffmpeg finishing its outputs after the BYEs, before SIGKILL


@dataclass
class SessionFiles:
    playlist: Path
    part: Path
    sdp: Path


@dataclass
class _Media:
    taps: list[RtpTap] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class PublishSession:
    """A publisher's connection and the ffmpeg child that makes HLS and a recording of it."""

    def __init__(
        self,
        number: int,
        files: SessionFiles,
        fanouts: Mapping[str, FrameFanout],
        on_end: Callable[[PublishSession, EndReason], None],
        *,
        ffmpeg: str,
        settings: LiveSettings,
        limits: ChildLimits,
        timeouts: SessionTimeouts,
        ice: Ice,
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.number = number
        self.files = files
        self.settings = settings
        self.argv: list[str] = []
        self.streams: tuple[RtpStream, ...] = ()
        self.ended: EndReason | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        self._fanouts = fanouts
        self._on_end = on_end
        self._ffmpeg = ffmpeg
        self._limits = limits
        self._timeouts = timeouts
        self._ice = ice
        self._pc: RTCPeerConnection | None = None
        self._media = _Media()
        self._udp: asyncio.DatagramTransport | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._closing: asyncio.Task[None] | None = None
        self._gate: ReportGate | None = None

    @property
    def taps(self) -> tuple[RtpTap, ...]:
        return tuple(self._media.taps)

    @property
    def ffmpeg_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def connected(self) -> bool:
        return self._pc is not None and self._pc.connectionState == "connected"

    async def start(self, offer: Offer) -> str:
        """Answer ``offer`` and start ffmpeg; the answer SDP. Raises :class:`BadOffer` (or
        :class:`EncoderError`), and leaves nothing running when it raises."""
        try:
            pc, text = await self._negotiate(offer)
            self._pc = pc
            plans = self._plan()
            await self._spawn()
            await self._wait_listening()
            loop = asyncio.get_running_loop()
            self._udp, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(LOCALHOST, 0)
            )
        except BaseException:
            await self.close(EndReason.FAILED, notify=False)
            raise
        copying = copies_video(self.streams)
        has_audio = any(s.kind == "audio" for s in self.streams)
        self._gate = ReportGate([tap for tap, _ in plans])
        for tap, plan in plans:
            schedule = None
            if tap.kind == "video" and copying:
                # ffmpeg cuts segments at the publisher's keyframes: ask for one per segment.
                # (When it encodes, it places its own and needs only the publisher's first.)
                schedule = KeyframeSchedule(self.settings.segment_s, clock_rate=plan.clock_rate)
            tap.aim(
                plan,
                self._udp,
                keyframes=schedule,
                grid_start=self._media_start if has_audio else None,
                gate=self._gate,
            )
            self._keep(
                asyncio.create_task(self._drain(tap.receiver.track, self._fanouts[tap.kind]))
            )
        self._keep(watch(pc, self._end, self._timeouts.connect_s))
        return text

    async def close(self, reason: EndReason, *, notify: bool = True) -> None:
        """End the session (if it has not ended; ``on_end`` hears of it unless ``notify`` is
        False) and wait until everything is released."""
        self._end(reason, notify=notify)
        if self._closing is None:
            self._closing = asyncio.create_task(self._close())
        await asyncio.shield(self._closing)

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)

    def _end(self, reason: EndReason, *, notify: bool = True) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        if self._closing is None:
            self._closing = asyncio.create_task(self._close())
        if notify:
            self._on_end(self, reason)

    async def _negotiate(self, offer: Offer) -> tuple[RTCPeerConnection, str]:
        kinds = offer.kinds(SENDING)
        choices: list[str | None] = [None]
        if "video" in kinds:
            choices = [c for c in VIDEO_CODECS if c in offer.video_codecs]
            if not choices:
                raise BadOffer("the offer's video is neither H.264 nor VP8")
        for i, choice in enumerate(choices):
            pc = new_peer(self._ice)
            taps = []
            for kind in kinds:
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(_preferred(kind, choice))
                taps.append(RtpTap(transceiver.receiver, kind))
            try:
                text = await answer(pc, offer, self._ice)
            except BadOffer as exc:
                await pc.close()
                # aiortc keeps only H.264 profiles it knows (constrained baseline, baseline,
                # packetization-mode 1); an offer of other profiles may still offer VP8.
                if i < len(choices) - 1:
                    continue
                if choice == "H264" and "video" in str(exc):
                    raise BadOffer(
                        "the offer's H.264 is not constrained baseline or baseline with "
                        "packetization-mode 1, and it offers no VP8: set the encoder's H.264 "
                        "profile to baseline"
                    ) from None
                raise
            self._media.taps = taps
            return pc, text
        raise AssertionError("unreachable")

    def _plan(self) -> list[tuple[RtpTap, TapPlan]]:
        """The streams ffmpeg receives, from the answer: one per tap, on its own ports."""
        assert self._pc is not None and self._pc.localDescription is not None
        description = aiortc_sdp.SessionDescription.parse(self._pc.localDescription.sdp)
        streams = []
        plans = []
        for m in description.media:
            tap = next((t for t in self._media.taps if t.kind == m.kind), None)
            codecs = [c for c in m.rtp.codecs if c.name.lower() != "rtx"]
            if tap is None or not codecs or m.direction not in ("recvonly", "sendrecv"):
                continue
            main = codecs[0]
            if main.payloadType is None:
                continue
            same = frozenset(
                c.payloadType for c in codecs if c.name == main.name and c.payloadType is not None
            )
            rtx = frozenset(
                c.payloadType
                for c in m.rtp.codecs
                if c.name.lower() == "rtx"
                and c.payloadType is not None
                and c.parameters.get("apt") in same
            )
            port = free_port_pair()
            streams.append(
                RtpStream(
                    kind=m.kind,
                    port=port,
                    payload_type=main.payloadType,
                    codec=main.name,
                    clock_rate=main.clockRate,
                    channels=main.channels,
                    fmtp=fmtp_line(dict(main.parameters)),
                )
            )
            plans.append((tap, TapPlan(port, main.payloadType, same, rtx, main.clockRate)))
        if not streams:
            raise BadOffer("nothing in the offer can be received")
        self.streams = tuple(streams)
        return plans

    async def _spawn(self) -> None:
        files = self.files
        files.sdp.write_text(session_sdp(self.streams))
        self.argv = live_command(
            self._ffmpeg, files.sdp, self.streams, files.playlist, files.part, self.settings
        )
        self._proc = await spawn(self.argv, self._limits)
        self._keep(asyncio.create_task(self._watch_encoder(self._proc)))

    async def _wait_listening(self) -> None:
        """Until ffmpeg has bound every port it reads. Packets sent earlier would be lost,
        and with them the start of the grid segments are cut on (media/keyframes.py)."""
        wanted = {p for s in self.streams for p in (s.port, s.port + 1)}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeouts.listen_s
        while not wanted <= udp_ports_bound():
            proc = self._proc
            if proc is None or proc.returncode is not None:
                raise EncoderError("ffmpeg exited before it was ready", self.stderr_tail)
            if loop.time() > deadline:
                raise EncoderError("ffmpeg did not open its ports in time", self.stderr_tail)
            await asyncio.sleep(LISTEN_POLL_S)

    def _media_start(self) -> float | None:
        """Loop time of the session's first packet to ffmpeg: where its segment grid starts."""
        started = [t.first_at for t in self._media.taps if t.first_at is not None]
        return min(started, default=None)

    async def _watch_encoder(self, proc: asyncio.subprocess.Process) -> None:
        if proc.stderr is not None:
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self.stderr_tail.append(line)
        await proc.wait()
        self._end(EndReason.ENCODER_FAILED)

    async def _drain(self, track: MediaStreamTrack, fanout: FrameFanout) -> None:
        # Read every decoded frame, seats or not: aiortc's track queue has no bound.
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, Frame):
                fanout.publish(frame, self)

    async def _close(self) -> None:
        if self._gate is not None:
            self._gate.close()
        for tap in self._media.taps:
            tap.close(bye=True)
        if self._pc is not None:
            await self._pc.close()
        await self._stop_encoder()
        if self._udp is not None:
            self._udp.close()
        current = asyncio.current_task()
        tasks = [t for t in self._media.tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_encoder(self) -> None:
        proc = self._proc
        if proc is None:
            return
        # The BYEs end ffmpeg's input and it finishes its outputs. Should they not (or were
        # none sent: the session failed while starting), SIGKILL, not SIGTERM: ffmpeg
        # waiting for packets ignores one SIGTERM, a second aborts it mid-write (seen leaving
        # an empty playlist), while a killed ffmpeg leaves the last playlist it renamed into
        # place and a part that is whole up to its last packet.
        if self._udp is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), self._timeouts.bye_s)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            await proc.wait()

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._media.tasks.add(task)
        task.add_done_callback(self._media.tasks.discard)


def _preferred(kind: str, video: str | None) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    codecs = capabilities.codecs if capabilities is not None else []
    if kind == "audio":
        # Opus only: ffmpeg depacketizes it, and every WebRTC client sends it.
        return [c for c in codecs if c.mimeType.lower() == "audio/opus"]
    wanted = {f"video/{(video or '').lower()}", "video/rtx"}
    return [c for c in codecs if c.mimeType.lower() in wanted]
