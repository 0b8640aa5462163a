"""The live engine with real parts: aiortc publishers and viewers on this machine's own
address, the real ffmpeg, the real files. A few seconds of 320x240 media per test."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender
from av.video.frame import VideoFrame

from media.live_ffmpeg import LiveSettings, end_playlist
from media.publish import SessionTimeouts
from media.tools import ffmpeg_path
from media.webrtc import DIRECT, new_peer
from media.whip import (
    BadOffer,
    EndReason,
    IngestClosed,
    LiveIngest,
    PublisherBusy,
    SeatsFull,
)
from tests.media.clips import cached, children, make_clip
from tests.media.peers import publish, view

SEGMENT_S = 1
# Bounds every wait: a broken engine fails the test instead of hanging the suite.
PATIENCE_S = 30.0


@dataclass(frozen=True)
class Entry:
    uri: str
    duration: float
    discontinuity: bool


def entries(playlist: Path) -> list[Entry]:
    """The media segments of an HLS playlist, in order (RFC 8216 section 4.3.2)."""
    found = []
    duration, discontinuity = 0.0, False
    for line in playlist.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line.removeprefix("#EXTINF:").split(",")[0])
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line and not line.startswith("#"):
            found.append(Entry(line, duration, discontinuity))
            discontinuity = False
    return found


async def wait_segments(engine: LiveIngest, count: int) -> list[Entry]:
    """Poll the playlist until it lists ``count`` segments (every listed one is complete:
    ffmpeg adds a segment once it has written it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_S
    listed: list[Entry] = []
    while loop.time() < deadline:
        if engine.playlist.is_file():
            listed = entries(engine.playlist)
            if len(listed) >= count:
                return listed
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(listed)} of {count} segments after {PATIENCE_S} s")


async def wait_gone(engine: LiveIngest) -> None:
    await asyncio.wait_for(engine.publisher_gone.wait(), PATIENCE_S)
    if engine.session is not None:
        await asyncio.wait_for(engine.session.wait_closed(), PATIENCE_S)


async def wait_until(check: object, what: str) -> None:
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_S
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not {what} after {PATIENCE_S} s")
        await asyncio.sleep(0.05)


def decode_live(media: Path) -> tuple[int, str]:
    """Decode every frame, as ``clips.decode_errors`` does, but in the file's own time base:
    a live source's frames are not exactly 1/30 s apart (aiortc's client jitters by a few
    90 kHz ticks) and ffmpeg's null muxer, rounding them to 1/30 s, would report two of them
    as one instant when their timestamps are in fact strictly increasing."""
    done = subprocess.run(
        [ffmpeg_path(), "-nostdin", "-v", "error", "-i", str(media)]
        + ["-enc_time_base", "demux", "-f", "null", "-"],
        capture_output=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def decode_hls(engine: LiveIngest) -> tuple[int, str]:
    """Decode every listed segment, one run of segments between discontinuities at a time
    (timestamps restart at a discontinuity; players reset there, ffmpeg's CLI would not),
    each from an ended copy (the live playlist has no ``#EXT-X-ENDLIST`` and ffmpeg would
    wait for more segments)."""
    header, sections = [], [[]]  # type: tuple[list[str], list[list[str]]]
    for line in engine.playlist.read_text().splitlines():
        if line == "#EXT-X-DISCONTINUITY":
            if sections[-1]:
                sections.append([])
        elif line.startswith("#EXTINF:") or (line and not line.startswith("#")):
            sections[-1].append(line)
        elif not any(sections):
            header.append(line)
    said = ""
    for i, section in enumerate(sections):
        ended = engine.hls_dir / f"section-{i}.m3u8"
        ended.write_text(end_playlist("\n".join(header + section)))
        code, text = decode_live(ended)
        if code:
            return code, text
        said += text
    return 0, said


def follows(argv: list[str], *pair: str) -> bool:
    return any(argv[i : i + len(pair)] == list(pair) for i in range(len(argv)))


def first_video_packet(segment: Path) -> tuple[str, bool]:
    """(codec, is keyframe) of a segment's first video packet."""
    with av.open(str(segment)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size:
                return str(stream.codec_context.name), bool(packet.is_keyframe)
    raise AssertionError(f"{segment} has no video")


def duration_s(media: Path) -> float:
    with av.open(str(media)) as container:
        assert container.duration is not None
        return float(container.duration / av.time_base)


def codecs(media: Path) -> set[str]:
    with av.open(str(media)) as container:
        return {str(s.codec_context.name) for s in container.streams}


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What publishers send, in real time: aiortc re-encodes it, so it obeys PLIs. Longer
    than any test publishes (a looped clip would restart its timestamps, as no encoder does)."""
    return cached(
        tmp_path_factory,
        "live-320x240.mp4",
        lambda p: make_clip(p, size="320x240", seconds=12, rate=30, extra=("-f", "mp4")),
    )


@pytest.fixture
def gone() -> list[EndReason]:
    return []


@pytest.fixture
def new_children() -> Callable[[], set[int]]:
    """This process's children started since the test began (other suites' servers may
    outlive their tests in a full run)."""
    before = children()
    return lambda: children() - before


@pytest.fixture
async def engine(
    tmp_path: Path, gone: list[EndReason], new_children: Callable[[], set[int]]
) -> AsyncIterator[LiveIngest]:
    live = LiveIngest(
        "room-1",
        hls_dir=tmp_path / "hls",
        rec_dir=tmp_path / "rec",
        max_seats=1,
        settings=LiveSettings(segment_s=SEGMENT_S),
        timeouts=SessionTimeouts(connect_s=15.0, bye_s=5.0),
        on_publisher_gone=gone.append,
    )
    yield live
    await live.stop()
    assert new_children() == set(), "an ffmpeg outlived the engine"


def test_the_receiver_hooks_the_tap_wraps_are_still_there() -> None:
    # media/rtp_tap.py wraps private aiortc methods; a release that renames them fails here.
    rtp = inspect.signature(RTCRtpReceiver._handle_rtp_packet)
    assert list(rtp.parameters) == ["self", "packet", "arrival_time_ms"]
    assert list(inspect.signature(RTCRtpReceiver._handle_rtcp_packet).parameters) == [
        "self",
        "packet",
    ]
    assert list(inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters) == [
        "self",
        "media_ssrc",
    ]


async def test_h264_is_copied_into_regular_segments_that_decode(
    engine: LiveIngest, clip: Path
) -> None:
    publisher = await publish(engine.accept, clip)
    try:
        assert not engine.publisher_gone.is_set()
        await wait_until(lambda: engine.live, "live")
        assert engine.session is not None
        assert follows(engine.session.argv, "-c:v", "copy")
        stats = engine.stats()
        assert (stats.video_codec, stats.copies_video) == ("H264", True)
        # One publisher at a time; the refused one disturbs nothing.
        with pytest.raises(PublisherBusy):
            await publish(engine.accept, clip)
        listed = await wait_segments(engine, 4)
    finally:
        await publisher.close()
    await wait_gone(engine)
    complete = listed[:4]
    # A keyframe requested every second makes every segment about a second long…
    assert all(0.7 <= e.duration <= 1.4 for e in complete), complete
    assert engine.stats().keyframe_requests >= 3
    # …each starting on one, in H.264 as the publisher sent it.
    for e in complete:
        assert first_video_packet(engine.hls_dir / e.uri) == ("h264", True), e
    assert decode_hls(engine) == (0, "")


async def test_vp8_is_encoded_to_h264(engine: LiveIngest, clip: Path) -> None:
    publisher = await publish(engine.accept, clip, video_codec="VP8")
    try:
        assert engine.session is not None
        assert follows(engine.session.argv, "-c:v", "libx264")
        stats = engine.stats()
        assert (stats.video_codec, stats.copies_video) == ("VP8", False)
        listed = await wait_segments(engine, 2)
    finally:
        await publisher.close()
    await wait_gone(engine)
    assert first_video_packet(engine.hls_dir / listed[0].uri) == ("h264", True)
    assert decode_hls(engine) == (0, "")


async def test_a_reconnect_continues_the_playlist_the_recording_and_the_seats(
    engine: LiveIngest, gone: list[EndReason], clip: Path
) -> None:
    first = await publish(engine.accept, clip)
    viewer = await view(engine.play)
    try:
        await viewer.frames("video", 5)
        await wait_segments(engine, 2)
        await first.close()
        await wait_gone(engine)
        assert gone == [EndReason.CLOSED]
        before = len(entries(engine.playlist))
        # This encoder sends no candidates and does not trickle (as OBS does): the answer
        # carries ours, and the server learns its address from its connectivity checks.
        second = await publish(engine.accept, clip, trickle_free=True)
        try:
            listed = await wait_segments(engine, before + 2)
            # The seat stayed through the reconnect and plays the new publisher.
            await viewer.frames("video", 5)
        finally:
            assert await engine.hang_up(second.session_id)
            await second.close()
    finally:
        await viewer.close()
    await wait_gone(engine)
    assert gone == [EndReason.CLOSED, EndReason.HANG_UP]
    assert not await engine.hang_up(second.session_id)

    marks = [e.discontinuity for e in listed]
    assert marks[1:before] == [False] * (before - 1)
    assert marks[before] is True, "the second session starts after a discontinuity"
    assert decode_hls(engine) == (0, "")

    parts = engine.parts()
    assert [p.name for p in parts] == ["part-1.ts", "part-2.ts"]
    recording = await engine.finish_recording()
    assert recording == engine.rec_dir / "recording.mp4"
    assert decode_live(recording) == (0, "")
    assert codecs(recording) == {"h264", "aac"}
    lengths = [duration_s(p) for p in parts]
    assert min(lengths) > 1.0
    assert duration_s(recording) == pytest.approx(sum(lengths), abs=0.5)


async def test_a_whep_seat_plays_and_seats_are_capped(engine: LiveIngest, clip: Path) -> None:
    publisher = await publish(engine.accept, clip)
    try:
        viewer = await view(engine.play)
        try:
            frames = await viewer.frames("video", 10)
            assert all(isinstance(f, VideoFrame) for f in frames)
            assert {(f.width, f.height) for f in frames if isinstance(f, VideoFrame)} == {
                (320, 240)
            }
            with pytest.raises(SeatsFull) as full:
                await view(engine.play)
            assert full.value.retry_after_s == 10
        finally:
            assert await engine.leave(viewer.seat_id)
            await viewer.close()
        assert not await engine.leave(viewer.seat_id)
        assert len(engine.seats) == 0
        # A viewer who goes away without a DELETE frees the seat too.
        other = await view(engine.play)
        await other.close()
        await wait_until(lambda: len(engine.seats) == 0, "freed")
    finally:
        await publisher.close()


async def test_an_encoder_that_dies_ends_the_session(
    engine: LiveIngest, gone: list[EndReason], clip: Path
) -> None:
    publisher = await publish(engine.accept, clip)
    try:
        await wait_segments(engine, 1)
        pid = engine.stats().ffmpeg_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await wait_gone(engine)
        assert gone == [EndReason.ENCODER_FAILED]
        # The publisher is let go, so a WHIP client reconnects and starts a new session.
        await wait_until(lambda: publisher.pc.connectionState == "closed", "closed")
    finally:
        await publisher.close()


async def test_stop_ends_the_playlist_and_refuses_newcomers(
    engine: LiveIngest, clip: Path, new_children: Callable[[], set[int]]
) -> None:
    publisher = await publish(engine.accept, clip)
    try:
        await wait_segments(engine, 1)
        await engine.stop()
        assert engine.playlist.read_text().endswith("\n#EXT-X-ENDLIST\n")
        assert new_children() == set()
        offer = publisher.pc.localDescription.sdp
        with pytest.raises(IngestClosed):
            await engine.accept(offer)
        with pytest.raises(IngestClosed):
            await engine.play(await viewer_offer())
    finally:
        await publisher.close()


async def test_a_restarted_server_continues_the_room(
    engine: LiveIngest, tmp_path: Path, clip: Path
) -> None:
    first = await publish(engine.accept, clip)
    try:
        await wait_segments(engine, 2)
        # The server stops, the room does not: the playlist stays live for its players.
        await engine.stop(final=False)
    finally:
        await first.close()
    assert "#EXT-X-ENDLIST" not in engine.playlist.read_text()
    before = len(entries(engine.playlist))
    # The next server process makes a new engine on the same files.
    again = LiveIngest(
        "room-1",
        hls_dir=engine.hls_dir,
        rec_dir=engine.rec_dir,
        settings=LiveSettings(segment_s=SEGMENT_S),
    )
    try:
        second = await publish(again.accept, clip)
        try:
            listed = await wait_segments(again, before + 1)
        finally:
            await second.close()
    finally:
        await again.stop()
    assert listed[before].discontinuity
    assert [p.name for p in again.parts()] == ["part-1.ts", "part-2.ts"]
    assert again.playlist.read_text().endswith("\n#EXT-X-ENDLIST\n")


async def viewer_offer() -> str:
    pc = new_peer(DIRECT)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


@pytest.mark.parametrize(
    "offer",
    [
        "",
        "garbage",
        "v=0\r\nm=video x",
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
        "v=0\r\n" + "a=x\r\n" * 20000,
    ],
    ids=["empty", "garbage", "bad-media-line", "no-ice", "huge"],
)
async def test_garbage_offers_start_nothing(
    engine: LiveIngest, offer: str, new_children: Callable[[], set[int]]
) -> None:
    with pytest.raises(BadOffer):
        await engine.accept(offer)
    with pytest.raises(BadOffer):
        await engine.play(offer)
    assert engine.publisher_gone.is_set() and engine.session is None
    assert len(engine.seats) == 0 and new_children() == set()
    assert await engine.finish_recording() is None


async def test_offers_the_wrong_way_round_are_refused(engine: LiveIngest, clip: Path) -> None:
    # A viewer's offer sent to WHIP, a publisher's to WHEP.
    with pytest.raises(BadOffer, match="sends no audio or video"):
        await engine.accept(await viewer_offer())
    pc = new_peer(DIRECT)
    pc.addTransceiver("video", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        with pytest.raises(BadOffer, match="receives no audio or video"):
            await engine.play(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_an_h264_high_only_offer_is_told_to_use_baseline(
    engine: LiveIngest, new_children: Callable[[], set[int]]
) -> None:
    # As an encoder left on its default High profile offers it, with no VP8 to fall back on.
    pc = new_peer(DIRECT)
    video = pc.addTransceiver("video", direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    video.setCodecPreferences([c for c in capabilities.codecs if c.mimeType == "video/H264"])
    await pc.setLocalDescription(await pc.createOffer())
    high = re.sub(
        r"profile-level-id=[0-9a-fA-F]{6}", "profile-level-id=640c1f", pc.localDescription.sdp
    )
    try:
        with pytest.raises(BadOffer, match="profile to baseline"):
            await engine.accept(high)
    finally:
        await pc.close()
    assert engine.session is None and new_children() == set()
