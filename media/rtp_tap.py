"""Copying a publisher's RTP out of aiortc to ffmpeg, and asking the publisher for keyframes.

aiortc has no public way to read a remote track's RTP: its receiver depacketizes, reassembles
and decodes, and hands out decoded frames only. Re-encoding those frames would cost a core per
room for H.264 that ffmpeg can copy as it came, so :class:`RtpTap` wraps two coroutine
methods of *one* ``RTCRtpReceiver`` instance, ``_handle_rtp_packet`` and
``_handle_rtcp_packet``. ``RTCDtlsTransport`` looks them up on the instance for every packet
after SRTP decryption, so the wrapper sees exactly what the receiver sees; the originals
still run, so NACKs, receiver reports, REMB and the decoded track (for WHEP seats) are
unchanged. This is private API, pinned by the aiortc version in ``constraints.txt``;
``tests/media/test_whip.py`` fails at once if a release renames them.

What goes to ffmpeg: the media packets of the negotiated codec with a plain RFC 3550 header
(no header extensions, which ffmpeg would only skip), retransmissions unwrapped (RFC 4588)
so a packet that was lost and repaired reaches ffmpeg too, and the sender reports (RTCP SR)
that ffmpeg uses to line audio and video up on one clock. Padding-only packets (bandwidth
probes) are dropped. A :class:`ReportGate` holds the media back until those reports are there.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCRtpReceiver
from aiortc.rtp import AnyRtcpPacket, RtcpByePacket, RtcpRrPacket, RtcpSrPacket, RtpPacket

from media.keyframes import KeyframeSchedule, h264_keyframe
from media.live_ffmpeg import LOCALHOST

RTP_VERSION = 2
HELD_BURST = 32  # packets (about 40 KB) sent at once when the gate opens…
HELD_PAUSE_S = 0.002  # …then a pause for ffmpeg's reader


@dataclass(frozen=True)
class TapPlan:
    """Which of a receiver's packets go to ffmpeg, and as what."""

    port: int  # ffmpeg's RTP port; its RTCP port is port + 1
    payload_type: int  # the one payload type the SDP file describes
    # Every payload type of the same codec (a browser may be answered two H.264 profiles);
    # ffmpeg sees them all as ``payload_type``.
    media_types: frozenset[int]
    rtx_types: frozenset[int] = frozenset()
    clock_rate: int = 90000


def rtp_bytes(
    *,
    marker: int,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
) -> bytes:
    """An RTP packet with the fixed 12-byte header only (RFC 3550 section 5.1)."""
    first = RTP_VERSION << 6
    second = ((marker & 1) << 7) | (payload_type & 0x7F)
    header = struct.pack(
        "!BBHLL", first, second, sequence_number & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    return header + payload


def forwarded(packet: RtpPacket, plan: TapPlan, media_ssrc: int | None) -> bytes | None:
    """What ffmpeg gets for ``packet``, or None when it gets nothing."""
    if not packet.payload:
        return None
    if packet.payload_type in plan.media_types:
        return rtp_bytes(
            marker=packet.marker,
            payload_type=plan.payload_type,
            sequence_number=packet.sequence_number,
            timestamp=packet.timestamp,
            ssrc=packet.ssrc,
            payload=packet.payload,
        )
    if packet.payload_type in plan.rtx_types and media_ssrc is not None:
        # RFC 4588 section 4: the original sequence number leads the RTX payload.
        if len(packet.payload) <= 2:
            return None
        return rtp_bytes(
            marker=packet.marker,
            payload_type=plan.payload_type,
            sequence_number=int.from_bytes(packet.payload[:2], "big"),
            timestamp=packet.timestamp,
            ssrc=media_ssrc,
            payload=packet.payload[2:],
        )
    return None


def goodbye(ssrc: int) -> bytes:
    """An RTCP BYE for ``ssrc`` as a compound packet led by an empty receiver report: RFC
    3550 section 6.1 wants every compound packet to start with a report, and ffmpeg drops
    RTCP packets shorter than 12 bytes, which a lone BYE is."""
    return bytes(RtcpRrPacket(ssrc=ssrc, reports=[])) + bytes(RtcpByePacket(sources=[ssrc]))


class ReportGate:
    """Holds a publish session's RTP back until ffmpeg has each stream's first sender report.

    ffmpeg's RTP input times a stream from its own first packet until its first RTCP SR
    arrives, and from the reports' shared wall clock after that: a stream whose first report
    comes after its first packets jumps by the streams' start offset (tens of milliseconds).
    That is enough for a keyframe just past a segment line to fall short of it, and the
    segment then runs on to the next keyframe (a first segment of 4 s for a 2 s target, in
    2 of 3 starts of a publisher that keeps a fixed 2 s GOP). With the reports first, every
    timestamp is on the shared clock from the start. Browsers and ffmpeg report at once,
    aiortc within 1.5 s; a publisher whose reports are later than ``wait_s`` after its first
    packet is let through as it is.
    """

    def __init__(self, taps: list[RtpTap], wait_s: float = 1.5) -> None:
        self.taps = taps
        self.wait_s = wait_s
        self.open = not taps
        self._reported: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None

    def reported(self, tap: RtpTap) -> None:
        self._reported.add(id(tap))
        if len(self._reported) == len(self.taps):
            self.release()

    def held(self) -> None:
        """A packet was held: the wait starts with the first."""
        if self._timer is None and not self.open:
            self._timer = asyncio.get_running_loop().call_later(self.wait_s, self.release)

    def release(self) -> None:
        if self.open:
            return
        self.open = True
        if self._timer is not None:
            self._timer.cancel()
        for tap in self.taps:
            tap.release()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class RtpTap:
    """One receiver's packets, copied to ffmpeg once :meth:`aim` says where."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str) -> None:
        self.receiver = receiver
        self.kind = kind
        self.media_ssrc: int | None = None
        self.packets = 0
        self.keyframe_requests = 0
        self.first_at: float | None = None  # loop time of the first packet taken for ffmpeg
        self.first_timestamp: int | None = None  # RTP time of the first media packet taken
        self.report: tuple[float, int] | None = None  # the last SR: (NTP seconds, RTP time)
        self._plan: TapPlan | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._keyframes: KeyframeSchedule | None = None
        self._grid_start: Callable[[], float | None] | None = None
        self._gate: ReportGate | None = None
        self._held: list[bytes] = []  # for ffmpeg, while the gate is closed
        self._draining: asyncio.Future[None] | None = None
        self._install()

    def aim(
        self,
        plan: TapPlan,
        transport: asyncio.DatagramTransport,
        *,
        keyframes: KeyframeSchedule | None = None,
        grid_start: Callable[[], float | None] | None = None,
        gate: ReportGate | None = None,
    ) -> None:
        """Start copying packets to ``plan.port`` through ``transport`` (a UDP socket).

        For video, ``keyframes`` (H.264 only) decides when to ask the publisher for a
        keyframe; its grid starts at ``grid_start()``, the loop time of the session's first
        packet to ffmpeg, or, without it (no audio), at the first keyframe. Without a
        schedule, one keyframe is asked for as the video starts. Media waits at ``gate``
        until it opens.
        """
        self._plan = plan
        self._transport = transport
        self._keyframes = keyframes
        self._grid_start = grid_start
        self._gate = gate

    def release(self) -> None:
        """The gate opened: send what it held, as it came, and put the keyframe grid where
        the reports say ffmpeg's is."""
        schedule, origin = self._keyframes, self._origin_by_reports()
        if schedule is not None and schedule.origin is not None and origin is not None:
            schedule.move(origin)
        if self._held and self._draining is None:
            self._draining = asyncio.ensure_future(self._drain_held())

    async def _drain_held(self) -> None:
        """Send the held packets in small bursts: a second and more of video at once would
        overflow ffmpeg's UDP receive buffer (64 KiB) before its reader empties it. Packets
        that come meanwhile queue behind them, so the order holds."""
        try:
            while self._held:
                burst, self._held = self._held[:HELD_BURST], self._held[HELD_BURST:]
                for data in burst:
                    self._send(data, rtcp=False)
                await asyncio.sleep(HELD_PAUSE_S)  # ffmpeg's reader takes the burst meanwhile
        finally:
            self._draining = None

    async def request_keyframe(self) -> None:
        if self.media_ssrc is None:
            return
        self.keyframe_requests += 1
        await self.receiver._send_rtcp_pli(self.media_ssrc)

    def close(self, *, bye: bool = False) -> None:
        """Stop copying; the receiver itself is left as it is.

        With ``bye``, tell ffmpeg the stream ended (RTCP BYE, RFC 3550 section 6.6): once
        every stream has, its input is at its end and it finishes the playlist and the
        recording part cleanly.
        """
        if self._draining is not None:
            self._draining.cancel()  # ending in its first second: what was held goes
        if bye:
            self._send(goodbye(self.media_ssrc or 0), rtcp=True)
        self._plan = None

    def _install(self) -> None:
        receiver = self.receiver
        handle_rtp = receiver._handle_rtp_packet
        handle_rtcp = receiver._handle_rtcp_packet

        async def on_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            if self._take(packet, asyncio.get_running_loop().time()):
                await self.request_keyframe()
            await handle_rtp(packet, arrival_time_ms=arrival_time_ms)

        async def on_rtcp(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                self.report = (info.ntp_timestamp / 2**32, info.rtp_timestamp)
                self._send(bytes(packet), rtcp=True)
                if self._plan is not None and self._gate is not None:
                    self._gate.reported(self)
            await handle_rtcp(packet)

        # Private API, see the module docstring: per instance, so no other receiver changes.
        receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]

    def _take(self, packet: RtpPacket, arrival: float) -> bool:
        """Send ffmpeg its copy of ``packet`` (which came at loop time ``arrival``), or hold
        it while the gate is closed; True when a keyframe should be requested. Keyframes
        are asked for as packets come, held or not, so they come when the grid needs them."""
        plan = self._plan
        if plan is None:
            return False
        media = self._media(packet, plan)
        if media:
            self.media_ssrc = packet.ssrc
        data = forwarded(packet, plan, self.media_ssrc)
        if data is None:
            return False
        first = self.first_at is None
        if first:
            self.first_at = arrival
        if media and self.first_timestamp is None:
            self.first_timestamp = packet.timestamp
        self.packets += 1
        gate = self._gate
        if gate is not None and not gate.open:
            self._held.append(data)
            gate.held()
        elif self._draining is not None:
            self._held.append(data)  # behind what the gate held
        else:
            self._send(data, rtcp=False)
        if self.kind != "video" or not media:
            return False  # retransmissions carry old timestamps: no clock in them
        schedule = self._keyframes
        if schedule is None:
            return first
        keyframe = h264_keyframe(packet.payload)
        if schedule.origin is None:
            self._start_grid(schedule, packet.timestamp, keyframe, arrival)
        return schedule.on_video(packet.timestamp, keyframe)

    @staticmethod
    def _media(packet: RtpPacket, plan: TapPlan) -> bool:
        return bool(packet.payload) and packet.payload_type in plan.media_types

    def wall_time(self, timestamp: int) -> float | None:
        """The sender's NTP time of RTP time ``timestamp``, by its last report (None
        before one)."""
        plan, report = self._plan, self.report
        if plan is None or report is None:
            return None
        ntp, at = report
        step = (timestamp - at) & 0xFFFFFFFF
        if step >= 1 << 31:
            step -= 1 << 32
        return ntp + step / plan.clock_rate

    def _origin_by_reports(self) -> int | None:
        """ffmpeg's first packet in this stream's RTP time, when every stream reported before
        its media went out (the gate): ffmpeg then times all of them on the reports' clock,
        and its segment grid starts at the earliest first packet of any stream."""
        gate, plan, report = self._gate, self._plan, self.report
        if gate is None or plan is None or report is None:
            return None
        starts = [
            tap.wall_time(tap.first_timestamp) if tap.first_timestamp is not None else None
            for tap in gate.taps
        ]
        known = [s for s in starts if s is not None]
        if len(known) != len(gate.taps):
            return None
        ntp, at = report
        return (at + round((min(known) - ntp) * plan.clock_rate)) & 0xFFFFFFFF

    def _start_grid(
        self, schedule: KeyframeSchedule, timestamp: int, keyframe: bool, arrival: float
    ) -> None:
        origin = self._origin_by_reports()
        if origin is not None:
            schedule.begin(origin)
            return
        started = self._grid_start() if self._grid_start is not None else None
        if started is None:
            # ffmpeg's first packet will be this stream's first keyframe.
            if keyframe:
                schedule.begin(timestamp)
            return
        # ffmpeg's first packet was the session's first (audio), this long before.
        since = max(0.0, arrival - started)
        schedule.begin(timestamp - round(since * schedule.clock_rate))

    def _send(self, data: bytes, *, rtcp: bool) -> None:
        plan, transport = self._plan, self._transport
        if plan is None or transport is None or transport.is_closing():
            return
        transport.sendto(data, (LOCALHOST, plan.port + (1 if rtcp else 0)))
