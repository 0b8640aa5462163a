"""The frame fanout behind WHEP seats: bounded per seat, one timeline across publishers."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from media.fanout import AUDIO_DEPTH, VIDEO_DEPTH, FrameFanout


def video(pts: int) -> VideoFrame:
    frame = VideoFrame(16, 16, "yuv420p")
    frame.pts = pts
    frame.time_base = Fraction(1, 90000)
    return frame


def audio(pts: int) -> AudioFrame:
    frame = AudioFrame(format="s16", layout="stereo", samples=960)
    frame.pts = pts
    frame.sample_rate = 48000
    frame.time_base = Fraction(1, 48000)
    return frame


async def test_a_slow_seat_keeps_only_the_newest_frames() -> None:
    fanout = FrameFanout("video")
    seat = fanout.subscribe()
    publisher = object()
    sent = VIDEO_DEPTH + 5
    for i in range(sent):
        fanout.publish(video(i * 3000), publisher)
    got = [await seat.recv() for _ in range(VIDEO_DEPTH)]
    assert [f.pts for f in got] == [i * 3000 for i in range(5, sent)]
    assert seat.dropped == 5


async def test_audio_keeps_a_short_burst() -> None:
    fanout = FrameFanout("audio")
    seat = fanout.subscribe()
    publisher = object()
    for i in range(AUDIO_DEPTH):
        fanout.publish(audio(i * 960), publisher)
    got = [await seat.recv() for _ in range(AUDIO_DEPTH)]
    assert [f.pts for f in got] == [i * 960 for i in range(AUDIO_DEPTH)]
    assert seat.dropped == 0


async def test_a_new_publisher_continues_the_timeline() -> None:
    fanout = FrameFanout("video")
    seat = fanout.subscribe()
    first, second = object(), object()
    fanout.publish(video(0), first)
    fanout.publish(video(3000), first)
    assert [(await seat.recv()).pts for _ in range(2)] == [0, 3000]
    # The reconnected publisher's timeline restarts at 0; seats see it one frame later on.
    fanout.publish(video(0), second)
    fanout.publish(video(3000), second)
    assert [(await seat.recv()).pts for _ in range(2)] == [6000, 9000]


async def test_end_and_stop_release_waiting_seats() -> None:
    fanout = FrameFanout("video")
    ended, stopped = fanout.subscribe(), fanout.subscribe()
    waiting = asyncio.gather(ended.recv(), stopped.recv(), return_exceptions=True)
    await asyncio.sleep(0)
    stopped.stop()
    assert len(fanout) == 1
    fanout.end()
    results = await asyncio.wait_for(waiting, 5)
    assert all(isinstance(r, MediaStreamError) for r in results)
    assert len(fanout) == 0
    # After the end nothing is delivered, and late subscribers end at once.
    fanout.publish(video(0), object())
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(fanout.subscribe().recv(), 5)


def test_kinds_are_audio_or_video() -> None:
    with pytest.raises(ValueError):
        FrameFanout("data")
