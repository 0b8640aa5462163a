"""When the engine asks a publisher for keyframes: ffmpeg's segment grid in RTP time."""

from __future__ import annotations

from media.keyframes import KeyframeSchedule, h264_keyframe

HZ = 90000
FRAME = HZ // 30


def test_h264_keyframes_in_each_packetization() -> None:
    assert h264_keyframe(bytes([0x65, 0x88]))  # a whole IDR slice (type 5)
    assert h264_keyframe(bytes([0x67, 0x42]))  # the SPS that leads it (type 7)
    assert not h264_keyframe(bytes([0x41, 0x9A]))  # a P slice (type 1)
    # FU-A (type 28): only the first fragment of an IDR counts.
    assert h264_keyframe(bytes([0x7C, 0x85, 0x00]))
    assert not h264_keyframe(bytes([0x7C, 0x05, 0x00]))
    assert not h264_keyframe(bytes([0x7C, 0x81, 0x00]))
    # STAP-A (type 24): SPS and PPS aggregated ahead of the IDR, or a P slice alone.
    assert h264_keyframe(bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]))
    assert not h264_keyframe(bytes([0x78, 0x00, 0x02, 0x41, 0x9A]))
    assert not h264_keyframe(b"")
    assert not h264_keyframe(bytes([0x78, 0x00]))


def frames(schedule: KeyframeSchedule, start: int, count: int, keyframes: set[int]) -> list[int]:
    """Feed ``count`` frames from RTP time ``start``; the frame numbers a PLI is asked at."""
    asked = []
    for n in range(count):
        if schedule.on_video((start + n * FRAME) & 0xFFFFFFFF, n in keyframes):
            asked.append(n)
    return asked


def test_a_keyframe_is_asked_for_once_a_line_passes_without_one() -> None:
    schedule = KeyframeSchedule(every_s=1.0)
    schedule.begin(1000)
    asked, answer = [], False
    for n in range(95):
        # A publisher that answers each request with its next frame.
        if schedule.on_video(1000 + n * FRAME, keyframe=answer or n == 0):
            asked.append(n)
            answer = True
        else:
            answer = False
    # Lines at 1, 2 and 3 s (frames 30, 60, 90): asked 0.1 s past each, one at a time.
    assert asked == [33, 63, 93]
    assert schedule.line_s == 4.0


def test_keyframes_that_land_past_the_line_need_no_request() -> None:
    schedule = KeyframeSchedule(every_s=1.0)
    schedule.begin(0)
    # The answer to the first request lands at frame 34: the line moves to 2 s.
    assert frames(schedule, 0, 34, keyframes={0}) == [33]
    assert schedule.on_video(34 * FRAME, True) is False
    assert schedule.line_s == 2.0
    # A keyframe of the publisher's own at 2.03 s cuts there: nothing asked at 2.1 s.
    asked = [n for n in range(35, 70) if schedule.on_video(n * FRAME, n == 61)]
    assert asked == []
    assert schedule.line_s == 3.0


def test_an_early_keyframe_does_not_move_the_line() -> None:
    schedule = KeyframeSchedule(every_s=2.0)
    schedule.begin(0)
    # At 1.9 s, before the 2 s line: ffmpeg would not cut there, so the request still comes.
    assert frames(schedule, 0, 66, keyframes={57}) == [63]
    assert schedule.line_s == 2.0


def test_unanswered_requests_are_repeated_at_most_every_retry() -> None:
    schedule = KeyframeSchedule(every_s=1.0, retry_s=0.5)
    schedule.begin(0)
    assert frames(schedule, 0, 80, keyframes=set()) == [33, 48, 63, 78]


def test_before_the_grid_starts_one_keyframe_is_asked_for() -> None:
    schedule = KeyframeSchedule(every_s=1.0)
    assert schedule.on_video(500, keyframe=False) is True
    assert schedule.on_video(500 + FRAME, keyframe=False) is False
    assert schedule.on_video(500 + 2 * FRAME, keyframe=True) is False
    assert schedule.keyframes == 1


def test_rtp_time_wraps_around() -> None:
    schedule = KeyframeSchedule(every_s=1.0)
    start = 0xFFFFFFFF - 10 * FRAME
    schedule.begin(start)
    assert frames(schedule, start, 35, keyframes={0}) == [33]


def test_the_grid_may_start_before_the_first_video_packet() -> None:
    # Audio came first: the grid started 0.2 s before this stream's first packet.
    schedule = KeyframeSchedule(every_s=1.0)
    schedule.begin(10_000 - round(0.2 * HZ))
    assert frames(schedule, 10_000, 30, keyframes={0}) == [27]


def test_a_grid_moved_later_keeps_its_progress() -> None:
    # Estimated from arrival at frame 0, then put 0.2 s later once the sender reports tell
    # where ffmpeg's timeline starts; the line passed so far stays passed.
    schedule = KeyframeSchedule(every_s=1.0)
    schedule.begin(0)
    assert frames(schedule, 0, 20, keyframes={0}) == []
    schedule.move(round(0.2 * HZ))
    assert [n for n in range(20, 40) if schedule.on_video(n * FRAME, False)] == [39]
    assert schedule.line_s == 1.0
    # Across the wrap, too.
    wrapped = KeyframeSchedule(every_s=1.0)
    start = 0xFFFFFFFF - 5 * FRAME
    wrapped.begin(start)
    frames(wrapped, start, 10, keyframes={0})
    wrapped.move((start + 6 * FRAME) & 0xFFFFFFFF)
    assert [
        n for n in range(10, 40) if wrapped.on_video((start + n * FRAME) & 0xFFFFFFFF, False)
    ] == [39]
