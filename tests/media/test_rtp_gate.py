"""The gate that holds a publish session's RTP until ffmpeg has every stream's first sender
report (media/rtp_tap.py ``ReportGate``): it opens once, on the last report or after its wait."""

from __future__ import annotations

import asyncio
from typing import cast

from media.rtp_tap import ReportGate, RtpTap


class Tap:
    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1


def gate_of(taps: list[Tap], wait_s: float) -> ReportGate:
    return ReportGate(cast(list[RtpTap], taps), wait_s=wait_s)


async def test_it_opens_on_the_last_report_and_releases_every_tap_once() -> None:
    audio, video = Tap(), Tap()
    gate = gate_of([audio, video], wait_s=60)
    gate.held()
    gate.reported(cast(RtpTap, audio))
    gate.reported(cast(RtpTap, audio))  # a second report of the same stream
    assert not gate.open and audio.released == 0
    gate.reported(cast(RtpTap, video))
    assert gate.open and (audio.released, video.released) == (1, 1)
    gate.reported(cast(RtpTap, video))
    gate.release()
    assert (audio.released, video.released) == (1, 1)


async def test_a_publisher_that_never_reports_is_let_through_after_the_wait() -> None:
    video = Tap()
    gate = gate_of([video], wait_s=0.05)
    gate.held()  # the wait starts with the first held packet
    async with asyncio.timeout(5):
        while not gate.open:
            await asyncio.sleep(0.01)  # polling the state the timer changes
    assert video.released == 1
