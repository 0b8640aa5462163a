"""Decoded frames of one kind, from whoever is publishing now, to every WHEP seat.

aiortc decodes every frame it receives into the remote track's queue, which has no bound: a
track nobody reads grows until the process dies. The engine therefore reads each publisher's
tracks from the moment they exist and hands every frame to a :class:`FrameFanout`, which
keeps at most ``depth`` frames per seat and drops the oldest (a seat whose encoder cannot
keep up shows fewer frames, and never slows the room or another seat).

Not ``aiortc.contrib.media.MediaRelay``: its buffered proxies queue without bound, its
unbuffered ones keep one frame (audio comes in bursts and would lose some), and its proxies end
with the source track, so every seat would drop when the publisher reconnects. A seat's
:class:`FanoutTrack` outlives publishers; timestamps are shifted on a change of publisher so
each seat's encoder sees one continuous timeline.
"""

from __future__ import annotations

import asyncio
from collections import deque
from fractions import Fraction

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.frame import Frame
from av.video.frame import VideoFrame

# Per seat, so a seat is at most this far behind the room. Video: a third of a second at 30
# fps, since decoded frames leave aiortc in bursts (a stall of up to ~350 ms around a
# keyframe, then the frames at once; with 2, seats got 22 fps of 30). Audio: 20 ms frames,
# a fifth of a second.
VIDEO_DEPTH = 10
AUDIO_DEPTH = 10
# The gap put between two publishers' timelines, in seconds.
SWITCH_GAP_S = Fraction(1, 30)


class FanoutTrack(MediaStreamTrack):
    """One seat's view of a :class:`FrameFanout`; ``stop()`` unsubscribes it."""

    def __init__(self, fanout: FrameFanout, depth: int) -> None:
        super().__init__()
        self.kind = fanout.kind
        self.dropped = 0
        self._fanout = fanout
        self._frames: deque[Frame] = deque(maxlen=depth)
        self._ready = asyncio.Event()

    def put(self, frame: Frame) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def wake(self) -> None:
        self._ready.set()

    async def recv(self) -> Frame:
        while not self._frames:
            if self.readyState != "live" or self._fanout.ended:
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._fanout.unsubscribe(self)
        self._ready.set()


class FrameFanout:
    """Frames of ``kind`` ("audio" or "video") from the current publisher to every seat."""

    def __init__(self, kind: str) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"unknown kind {kind}")
        self.kind = kind
        self.ended = False
        self.frames = 0
        self._seats: set[FanoutTrack] = set()
        self._source: object = None
        self._offset = 0
        self._next_pts: int | None = None

    def __len__(self) -> int:
        return len(self._seats)

    def subscribe(self) -> FanoutTrack:
        track = FanoutTrack(self, VIDEO_DEPTH if self.kind == "video" else AUDIO_DEPTH)
        if not self.ended:
            self._seats.add(track)
        return track

    def unsubscribe(self, track: FanoutTrack) -> None:
        self._seats.discard(track)

    def publish(self, frame: Frame, source: object) -> None:
        """Hand ``frame`` from publisher ``source`` to every seat."""
        if self.ended or frame.pts is None:
            return
        if source is not self._source:
            self._source = source
            # The new publisher's timeline starts at 0 again: continue where the last ended.
            self._offset = 0 if self._next_pts is None else self._next_pts - frame.pts
        frame.pts += self._offset
        self._next_pts = frame.pts + self._step(frame)
        self.frames += 1
        for seat in self._seats:
            seat.put(frame)

    def end(self) -> None:
        """No more frames: every seat's ``recv`` raises once its queue is empty."""
        self.ended = True
        for seat in self._seats:
            seat.wake()
        self._seats.clear()

    def _step(self, frame: Frame) -> int:
        if isinstance(frame, AudioFrame):
            return frame.samples
        if isinstance(frame, VideoFrame) and frame.time_base:
            return max(1, int(SWITCH_GAP_S / frame.time_base))
        return 1
