"""When to ask a publisher for a keyframe, so ffmpeg's HLS segments stay regular.

When ffmpeg copies the publisher's H.264, it can only cut a segment at one of the
publisher's keyframes. Its HLS muxer cuts at the first keyframe whose time since the
session's first packet reaches n × hls_time, n being the number of segments so far: a
cumulative grid (``hls_write_packet`` in libavformat/hlsenc.c). A keyframe just short of a
grid line does not cut, and that segment runs on to the next keyframe, twice as long.

:class:`KeyframeSchedule` follows that grid in the video's own RTP time, the clock ffmpeg's
timestamps come from (a wall-clock timer drifts from it: an encoder's capture clock is not
the server's), watches which keyframes arrive, and asks for one (RTCP PLI, RFC 4585 section
6.3.1) only once a grid line has passed without one. Every answer then lands just past its
line, and so do the publisher's own keyframes that fall there. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 6184: NAL unit types of an IDR slice and of a sequence parameter set (which encoders
# send right before each IDR, in the same access unit); the aggregation and fragmentation
# packets that may carry them.
NAL_IDR = 5
NAL_SPS = 7
STAP_A = 24
FU_A = 28


def h264_keyframe(payload: bytes) -> bool:
    """Does this H.264 RTP payload (RFC 6184) start a keyframe's access unit?"""
    if not payload:
        return False
    kind = payload[0] & 0x1F
    if kind in (NAL_IDR, NAL_SPS):
        return True
    if kind == FU_A:
        # Only the first fragment (S bit) of an IDR slice: the others repeat its timestamp.
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F == NAL_IDR
    if kind == STAP_A:
        at = 1
        while at + 2 < len(payload):
            size = int.from_bytes(payload[at : at + 2], "big")
            if size == 0:
                break
            if payload[at + 2] & 0x1F in (NAL_IDR, NAL_SPS):
                return True
            at += 2 + size
    return False


@dataclass
class KeyframeSchedule:
    """ffmpeg's segment grid in RTP time; :meth:`on_video` says when to request a keyframe."""

    every_s: float
    clock_rate: int = 90000
    # Requests go this far past a grid line: past the jitter between the estimated start of
    # ffmpeg's grid and its real start (the gap between the first audio and video packets).
    margin_s: float = 0.1
    # A request with no keyframe after this long (in media time) is sent again: a PLI may be
    # lost, and an encoder may refuse keyframes that come too often.
    retry_s: float = 0.5
    origin: int | None = None  # RTP time of the grid's start (unwrapped)
    line_s: float = 0.0  # the next grid line, seconds from the origin
    keyframes: int = 0
    _last: int | None = None
    _unwrapped: int = 0
    _requested_s: float | None = None

    def begin(self, origin_ts: int) -> None:
        """The grid starts at RTP time ``origin_ts`` (ffmpeg's first packet)."""
        self.origin = self._unwrap(origin_ts)
        self.line_s = self.every_s
        self._requested_s = None

    def move(self, origin_ts: int) -> None:
        """The grid starts at RTP time ``origin_ts`` after all (better known now), its
        progress kept."""
        step = (origin_ts - (self._last if self._last is not None else origin_ts)) & 0xFFFFFFFF
        if step >= 1 << 31:
            step -= 1 << 32
        self.origin = self._unwrapped + step

    def on_video(self, timestamp: int, keyframe: bool) -> bool:
        """Take one video packet's RTP time; True when a keyframe should be requested now."""
        now = self._unwrap(timestamp)
        if keyframe:
            self.keyframes += 1
        if self.origin is None:
            # Before the grid starts: ffmpeg starts the video at its first keyframe, so ask
            # for one at once if the stream does not begin with one.
            return not keyframe and self._due(now / self.clock_rate)
        t = (now - self.origin) / self.clock_rate
        if keyframe:
            if t >= self.line_s:
                # ffmpeg cuts here; its next line is one segment on (not the one after t).
                self.line_s += self.every_s
            self._requested_s = None
            return False
        if t >= self.line_s + self.margin_s:
            return self._due(t)
        return False

    def _due(self, t: float) -> bool:
        if self._requested_s is not None and t - self._requested_s < self.retry_s:
            return False
        self._requested_s = t
        return True

    def _unwrap(self, timestamp: int) -> int:
        """RTP timestamps wrap at 2**32 (about 13 h at 90 kHz); count on past the wrap."""
        if self._last is None:
            self._unwrapped = timestamp
        else:
            step = (timestamp - self._last) & 0xFFFFFFFF
            if step >= 1 << 31:
                step -= 1 << 32  # a packet from before the last one (reordered)
            self._unwrapped += step
        self._last = timestamp
        return self._unwrapped
