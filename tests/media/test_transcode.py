"""Transcoding real clips with the real ffmpeg: the ladder, the fallback, the poster, and
what is left on disk when a job is stopped, times out or fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from media.ffmpeg import EncodeSettings
from media.lifeline import ChildLimits
from media.probe import ProbeResult, probe
from media.transcode import (
    ProgressParser,
    TranscodeError,
    Transcoder,
    TranscodeResult,
    TranscodeStopped,
)
from tests.media.clips import (
    children,
    decode_errors,
    ffmpeg,
    jpeg_size,
    landscape_1080p,
    make_clip,
    top_level_boxes,
)

RESOLUTION = re.compile(r"RESOLUTION=(\d+)x(\d+)")
# Bounds the waits in the stop tests: a stop() that failed to kill would otherwise hang the
# suite for the whole 30 s source instead of failing.
PATIENCE_S = 20


def master_resolutions(result: TranscodeResult) -> list[tuple[int, int]]:
    text = result.master_playlist.read_text()
    return [(int(w), int(h)) for w, h in RESOLUTION.findall(text)]


def variant_playlists(result: TranscodeResult) -> list[Path]:
    lines = result.master_playlist.read_text().splitlines()
    return [result.master_playlist.parent / line for line in lines if line.endswith(".m3u8")]


def assert_decodes_cleanly(media: Path) -> None:
    code, said = decode_errors(media)
    assert (code, said) == (0, ""), f"{media}: {said}"


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def endless_source() -> tuple[str, ProbeResult]:
    """A 1080p lavfi source far longer than any test waits: a job that is surely mid-way."""
    source = "testsrc2=size=1920x1080:rate=30:duration=30"
    fake = ProbeResult("lavfi", 30.0, 1920, 1080, 0, 30.0, "rawvideo", None, False, 0)
    return source, fake


async def test_1080p_source_gets_the_whole_ladder(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    source = landscape_1080p(tmp_path_factory)
    out = tmp_path / "v1"
    seen: list[float] = []
    result = await Transcoder(source, await probe(source), out).run(seen.append)

    assert master_resolutions(result) == [(1920, 1080), (1280, 720), (854, 480), (640, 360)]
    assert [(r.height, r.width, r.bitrate) for r in result.renditions] == [
        (1080, 1920, 5_128_000),
        (720, 1280, 2_928_000),
        (480, 854, 1_528_000),
        (360, 640, 928_000),
    ]
    variants = variant_playlists(result)
    assert [p.parent.name for p in variants] == ["1080p", "720p", "480p", "360p"]
    for playlist in variants:
        text = playlist.read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
        assert_decodes_cleanly(playlist)
    assert 'CODECS="avc1.' in result.master_playlist.read_text()
    assert "mp4a.40.2" in result.master_playlist.read_text()

    # The fallback MP4: the middle rung, index first so it starts playing before it is whole.
    assert result.mp4_rendition.name == "720p" and result.mp4 == out / "video.mp4"
    boxes = top_level_boxes(result.mp4.read_bytes())
    assert boxes.index(b"moov") < boxes.index(b"mdat")
    assert_decodes_cleanly(result.mp4)
    mp4 = await probe(result.mp4)
    assert (mp4.width, mp4.height, mp4.has_audio) == (1280, 720, True)
    assert abs(mp4.duration_s - 2.0) < 0.1

    assert jpeg_size(result.poster.read_bytes()) == (1920, 1080)
    assert (result.poster_width, result.poster_height) == (1920, 1080)
    assert_decodes_cleanly(result.poster)

    assert seen, "no progress reported"
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False)), seen
    assert seen[-1] == 1.0 and 0.0 < seen[0] < 1.0
    assert result.duration_s == 2.0 and result.elapsed_s > 0
    assert result.mp4_bytes == result.mp4.stat().st_size
    assert result.poster_bytes == result.poster.stat().st_size
    files = [p for p in out.joinpath("hls").rglob("*") if p.is_file()]
    assert result.hls_bytes == sum(p.stat().st_size for p in files)
    assert set(result.step_elapsed_s) == {"hls", "mp4", "poster"}
    doc = result.to_dict()
    assert (doc["hls"], doc["mp4"], doc["poster"]) == ("hls/master.m3u8", "video.mp4", "poster.jpg")
    assert doc["renditions"][1] == {
        "name": "720p",
        "width": 1280,
        "height": 720,
        "bitrate": 2_928_000,
    }
    assert doc["poster_size"] == [1920, 1080] and doc["bytes"]["mp4"] == result.mp4_bytes
    assert not (tmp_path / "v1.partial").exists()


async def test_phone_portrait_rotation_is_applied(tmp_path: Path) -> None:
    # 320x240 pixels with a 90° display matrix: viewers see 240x320, and so must every output.
    flat = make_clip(tmp_path / "flat.mp4", size="320x240", seconds=1)
    phone = tmp_path / "phone.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(flat), "-c", "copy", str(phone))
    source = await probe(phone)
    assert source.rotation == 90
    result = await Transcoder(phone, source, tmp_path / "out").run()

    assert master_resolutions(result) == [(240, 320)]
    assert [(r.width, r.height) for r in result.renditions] == [(240, 320)]
    assert jpeg_size(result.poster.read_bytes()) == (240, 320)
    mp4 = await probe(result.mp4)
    assert (mp4.width, mp4.height, mp4.rotation) == (240, 320, 0)


async def test_audio_less_source(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "silent.mp4", size="320x240", seconds=1, audio=False)
    result = await Transcoder(clip, await probe(clip), tmp_path / "out").run()
    master = result.master_playlist.read_text()
    assert "mp4a" not in master and "RESOLUTION=320x240" in master
    assert result.renditions[0].audio_bitrate == 0
    mp4 = await probe(result.mp4)
    assert not mp4.has_audio
    for playlist in variant_playlists(result):
        assert_decodes_cleanly(playlist)


async def test_rungs_cut_segments_at_the_same_times(tmp_path: Path) -> None:
    # Players switch rungs at segment boundaries, so every rung must have the same ones.
    clip = make_clip(tmp_path / "480.mp4", size="854x480", seconds=3)
    settings = EncodeSettings(segment_s=1)
    result = await Transcoder(clip, await probe(clip), tmp_path / "out", settings=settings).run()
    lengths = [
        re.findall(r"#EXTINF:([\d.]+)", playlist.read_text())
        for playlist in variant_playlists(result)
    ]
    assert len(lengths) == 2 and len(lengths[0]) == 3
    assert lengths[0] == lengths[1]


async def test_stop_mid_transcode_kills_ffmpeg_and_leaves_nothing(tmp_path: Path) -> None:
    source, fake = endless_source()
    out = tmp_path / "v"
    before = children()
    job = Transcoder(source, fake, out)
    first = asyncio.Event()
    run = asyncio.create_task(job.run(lambda _: first.set()))
    async with asyncio.timeout(PATIENCE_S):
        await first.wait()
    pid = job.pid
    assert pid is not None and not gone(pid)
    async with asyncio.timeout(PATIENCE_S):
        await job.stop()
    assert gone(pid) and children() - before == set()
    assert not out.exists() and not (tmp_path / "v.partial").exists()
    with pytest.raises(TranscodeStopped):
        await run
    assert job.pid is None
    await job.stop()  # idempotent


async def test_stop_from_the_progress_callback_does_not_deadlock(tmp_path: Path) -> None:
    source, fake = endless_source()
    job = Transcoder(source, fake, tmp_path / "v")
    pids: list[int | None] = []

    async def give_up(_: float) -> None:
        pids.append(job.pid)
        await job.stop()

    with pytest.raises(TranscodeStopped):
        async with asyncio.timeout(PATIENCE_S):
            await job.run(give_up)
    assert pids[0] is not None and gone(pids[0])
    assert list(tmp_path.iterdir()) == []


CRASHING_WORKER = """
import asyncio, sys
from media.probe import ProbeResult
from media.transcode import Transcoder

async def main():
    source, duration = "testsrc2=size=1920x1080:rate=30:duration=30", 30.0
    fake = ProbeResult("lavfi", duration, 1920, 1080, 0, 30.0, "rawvideo", None, False, 0)
    job = Transcoder(source, fake, sys.argv[1])
    await job.run(lambda _: print(job.pid, flush=True))

asyncio.run(main())
"""


async def exited(pid: int) -> None:
    """Until ``pid`` (not our child, so no wait()) has exited: a pidfd turns readable."""
    fd = os.pidfd_open(pid)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, done.set_result, None)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_a_worker_crash_leaves_nothing_finished_and_no_ffmpeg(tmp_path: Path) -> None:
    out = tmp_path / "v"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_WORKER, str(out), stdout=asyncio.subprocess.PIPE
    )
    assert worker.stdout is not None
    async with asyncio.timeout(PATIENCE_S):
        ffmpeg_pid = int(await worker.stdout.readline())
    ffmpeg_died = asyncio.create_task(exited(ffmpeg_pid))
    worker.send_signal(signal.SIGKILL)  # no stop(), no finally: blocks, nothing runs
    await worker.wait()
    try:
        # ffmpeg ignores SIGPIPE and would encode on for nobody; the kernel kills it instead.
        async with asyncio.timeout(PATIENCE_S):
            await ffmpeg_died
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(ffmpeg_pid, signal.SIGKILL)  # only if this test is failing
    assert not out.exists()
    assert (tmp_path / "v.partial").is_dir()  # named for what it is: never served


async def test_stop_before_run(tmp_path: Path) -> None:
    source, fake = endless_source()
    job = Transcoder(source, fake, tmp_path / "v")
    await job.stop()
    with pytest.raises(TranscodeStopped):
        await job.run()
    assert list(tmp_path.iterdir()) == []


async def test_cancelling_run_kills_ffmpeg(tmp_path: Path) -> None:
    source, fake = endless_source()
    job = Transcoder(source, fake, tmp_path / "v")
    first = asyncio.Event()
    run = asyncio.create_task(job.run(lambda _: first.set()))
    async with asyncio.timeout(PATIENCE_S):
        await first.wait()
    pid = job.pid
    assert pid is not None
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(PATIENCE_S):
            await run
    assert gone(pid)
    assert list(tmp_path.iterdir()) == []


async def test_timeout_kills_ffmpeg_and_leaves_nothing(tmp_path: Path) -> None:
    source, fake = endless_source()
    before = children()
    job = Transcoder(source, fake, tmp_path / "v", timeout_s=0.5)
    with pytest.raises(TranscodeError) as caught:
        async with asyncio.timeout(PATIENCE_S):
            await job.run()
    assert caught.value.code == "timeout"
    assert children() - before == set()
    assert list(tmp_path.iterdir()) == []


async def test_ffmpeg_failure_reports_its_stderr(tmp_path: Path) -> None:
    # A file the probe would have refused, handed over anyway: ffmpeg's own words come back.
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    fake = ProbeResult("mov", 2.0, 320, 240, 0, 25.0, "h264", None, False, 0)
    with pytest.raises(TranscodeError) as caught:
        await Transcoder(junk, fake, tmp_path / "out").run()
    assert caught.value.code == "ffmpeg_failed"
    assert "hls" in caught.value.message and caught.value.stderr_tail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]


async def test_a_stale_partial_is_replaced_and_a_finished_output_is_kept(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", size="160x120", seconds=1, audio=False)
    source = await probe(clip)
    stale = tmp_path / "out.partial" / "hls"
    stale.mkdir(parents=True)
    (stale / "master.m3u8").write_text("#EXTM3U\n# left by a crashed worker\n")
    result = await Transcoder(clip, source, tmp_path / "out").run()
    assert "crashed" not in result.master_playlist.read_text()
    assert not (tmp_path / "out.partial").exists()

    with pytest.raises(TranscodeError) as caught:
        await Transcoder(clip, source, tmp_path / "out").run()
    assert caught.value.code == "exists"
    assert result.master_playlist.is_file()


async def test_a_transcoder_runs_once(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", size="160x120", seconds=1, audio=False)
    job = Transcoder(clip, await probe(clip), tmp_path / "out")
    await job.run()
    with pytest.raises(RuntimeError):
        await job.run()


def test_progress_parser_is_monotonic_and_only_end_completes() -> None:
    parser = ProgressParser(duration_s=10.0)
    moved = [
        parser.feed(line)
        for line in [
            "frame=0\n",
            "out_time_us=N/A\n",
            "out_time_us=2500000\n",
            "progress=continue\n",
            "out_time_us=1000000\n",  # streams wobble; progress never goes back
            "out_time_us=12000000\n",  # past the probed duration: still not done
        ]
    ]
    assert moved == [False, False, True, False, False, True]
    assert parser.fraction == 0.999
    assert parser.feed("progress=end\n") and parser.fraction == 1.0


def test_progress_parser_without_a_duration_waits_for_the_end() -> None:
    parser = ProgressParser(duration_s=0.0)
    assert not parser.feed("out_time_us=5000000")
    assert parser.fraction == 0.0
    assert parser.feed("progress=end")


@pytest.mark.parametrize(
    "limits",
    [ChildLimits(file_bytes=64 << 10), ChildLimits(memory_bytes=64 << 20)],
    ids=["file size", "memory"],
)
async def test_ffmpeg_runs_under_kernel_limits(tmp_path: Path, limits: ChildLimits) -> None:
    # A 1080p encode needs segments past 64 KiB and far more than 64 MiB of address space:
    # under such limits the child dies, the job fails, and nothing is left behind.
    source, fake = endless_source()
    before = children()
    job = Transcoder(source, fake, tmp_path / "v", limits=limits)
    with pytest.raises(TranscodeError) as caught:
        async with asyncio.timeout(PATIENCE_S):
            await job.run()
    assert caught.value.code == "ffmpeg_failed"
    assert children() - before == set()
    assert list(tmp_path.iterdir()) == []
