"""Probing real files in the child process: good clips, and every kind of bad upload."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from media.probe import (
    CORRUPT,
    EMPTY,
    NO_VIDEO_STREAM,
    NOT_A_VIDEO,
    TIMEOUT,
    TOO_LARGE,
    TOO_LONG,
    ProbeError,
    ProbeLimits,
    parse_child_output,
    probe,
    probe_command,
    sniff,
)
from tests.media.clips import cached, children, ffmpeg, landscape_1080p, make_clip


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached(
        tmp_path_factory, "small.mp4", lambda p: make_clip(p, size="320x240", audio=False)
    )


async def probe_error(path: Path, **kwargs: object) -> ProbeError:
    with pytest.raises(ProbeError) as caught:
        await probe(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


async def test_landscape_1080p(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = await probe(landscape_1080p(tmp_path_factory))
    assert result.to_dict() == {
        "format": "mov",
        "duration_s": 2.0,
        "width": 1920,
        "height": 1080,
        "rotation": 0,
        "fps": 30.0,
        "video_codec": "h264",
        "audio_codec": "aac",
        "has_audio": True,
        "bitrate": result.bitrate,
    }
    assert result.bitrate > 100_000
    assert not result.portrait


async def test_portrait_in_matroska(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "portrait.mkv", size="360x640", seconds=1)
    result = await probe(clip)
    assert (result.format, result.width, result.height, result.rotation) == (
        "matroska",
        360,
        640,
        0,
    )
    assert result.portrait and result.has_audio and result.audio_codec == "aac"
    assert 0.9 <= result.duration_s <= 1.1


async def test_phone_portrait_is_landscape_pixels_with_rotation(
    small: Path, tmp_path: Path
) -> None:
    # Phones store portrait video as landscape pixels plus a 90° display matrix.
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(small), "-c", "copy", str(rotated))
    result = await probe(rotated)
    assert (result.width, result.height, result.rotation) == (320, 240, 90)
    assert (result.display_width, result.display_height) == (240, 320)
    assert result.portrait
    assert not result.has_audio and result.audio_codec is None


async def test_mpeg_ts(small: Path, tmp_path: Path) -> None:
    ts = tmp_path / "clip.ts"
    ffmpeg("-i", str(small), "-c", "copy", str(ts))
    result = await probe(ts)
    assert (result.format, result.width, result.height, result.fps) == ("mpegts", 320, 240, 25.0)


async def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    error = await probe_error(empty)
    assert error.code == EMPTY and "upload it again" in error.message


async def test_random_bytes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(64 * 1024))
    error = await probe_error(junk)
    assert error.code == NOT_A_VIDEO and "MP4" in error.message


async def test_png_renamed_mp4(tmp_path: Path) -> None:
    png = tmp_path / "frame.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(png))
    renamed = tmp_path / "video.mp4"
    png.rename(renamed)
    error = await probe_error(renamed)
    assert error.code == NOT_A_VIDEO and "PNG image" in error.message


async def test_jpeg_renamed_mov(tmp_path: Path) -> None:
    jpeg = tmp_path / "frame.jpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(jpeg))
    renamed = tmp_path / "video.mov"
    jpeg.rename(renamed)
    error = await probe_error(renamed)
    assert error.code == NOT_A_VIDEO and "JPEG image" in error.message


async def test_single_still_frame_in_an_mp4(tmp_path: Path) -> None:
    still = make_clip(tmp_path / "still.mp4", size="64x64", audio=False, extra=("-frames:v", "1"))
    error = await probe_error(still)
    assert error.code == NOT_A_VIDEO and "still picture" in error.message


async def test_audio_only(tmp_path: Path) -> None:
    m4a = tmp_path / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(m4a))
    error = await probe_error(m4a)
    assert error.code == NO_VIDEO_STREAM and "no picture" in error.message


async def test_audio_with_cover_art_is_still_audio_only(tmp_path: Path) -> None:
    # The cover is a one-picture "video" stream; it must not pass for a video.
    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(cover))
    m4a = tmp_path / "song.m4a"
    ffmpeg(
        *("-f", "lavfi", "-i", "sine=duration=1", "-i", str(cover)),
        *("-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png"),
        *("-disposition:v", "attached_pic", str(m4a)),
    )
    error = await probe_error(m4a)
    assert error.code == NO_VIDEO_STREAM


async def test_truncated_mp4_without_its_index(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # ffmpeg writes the index (moov) last, so a cut-off upload has none at all.
    whole = landscape_1080p(tmp_path_factory).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 3])
    error = await probe_error(cut)
    assert error.code == CORRUPT and "upload" in error.message


async def test_truncated_faststart_mp4(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # With the index first, the file opens; only the missing tail gives it away.
    faststart = tmp_path / "fs.mp4"
    ffmpeg(
        "-i", str(landscape_1080p(tmp_path_factory)), "-c", "copy",
        "-movflags", "+faststart", str(faststart),
    )  # fmt: skip
    whole = faststart.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    error = await probe_error(cut)
    assert error.code == CORRUPT and "incomplete" in error.message


async def test_hls_playlist_disguised_as_mp4_is_never_opened(tmp_path: Path) -> None:
    # The classic ffmpeg SSRF/local-file-read upload: a playlist pointing elsewhere.
    fake = tmp_path / "video.mp4"
    fake.write_text("#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    error = await probe_error(fake)
    assert error.code == NOT_A_VIDEO


async def test_too_long(tmp_path_factory: pytest.TempPathFactory) -> None:
    error = await probe_error(
        landscape_1080p(tmp_path_factory), limits=ProbeLimits(max_duration_s=1.5)
    )
    assert error.code == TOO_LONG
    assert "is 2 s long; the limit is 1.5 s" in error.message


async def test_too_large(tmp_path_factory: pytest.TempPathFactory) -> None:
    limits = ProbeLimits(max_long_side=1280, max_short_side=720)
    error = await probe_error(landscape_1080p(tmp_path_factory), limits=limits)
    assert error.code == TOO_LARGE and "1920x1080" in error.message


async def test_timeout_kills_the_child(small: Path) -> None:
    before = children()
    error = await probe_error(small, timeout=0.001)
    assert error.code == TIMEOUT and "upload it again" in error.message
    assert children() - before == set()


async def test_the_childs_memory_limit_is_in_force(small: Path) -> None:
    # 48 MiB of address space cannot even load the decoders: the limit is applied in the
    # child, and the parent turns the child's death into an answer, not an exception.
    error = await probe_error(small, limits=ProbeLimits(memory_mb=48))
    assert error.code == CORRUPT


def test_probe_command_golden() -> None:
    assert probe_command("/usr/bin/python3", "/up/u1", "matroska", ProbeLimits()) == [
        "/usr/bin/python3",
        "-m",
        "media.probe_child",
        "--format",
        "matroska",
        "--cpu-s",
        "30",
        "--memory-mb",
        "1024",
        "/up/u1",
    ]
    assert probe_command(sys.executable, Path("/a b"), "mov", ProbeLimits(cpu_s=5))[-5:] == [
        "--cpu-s",
        "5",
        "--memory-mb",
        "1024",
        "/a b",
    ]


@pytest.mark.parametrize(
    ("head", "demuxer"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mov"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "mov"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "flv"),
        ((b"\x47\x40\x00\x10" + bytes(184)) * 3, "mpegts"),
    ],
)
def test_sniff_accepts_video_containers(head: bytes, demuxer: str) -> None:
    assert sniff(head) == demuxer


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"", EMPTY),
        (b"\x89PNG\r\n\x1a\n\x00\x00", NOT_A_VIDEO),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", NOT_A_VIDEO),
        (b"GIF89a\x01\x00", NOT_A_VIDEO),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", NOT_A_VIDEO),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", NOT_A_VIDEO),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", NOT_A_VIDEO),
        (b"ID3\x04\x00\x00\x00\x00", NO_VIDEO_STREAM),
        (b"fLaC\x00\x00\x00\x22", NO_VIDEO_STREAM),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", NO_VIDEO_STREAM),
        (b"#EXTM3U\n", NOT_A_VIDEO),
        (b"<html><body>", NOT_A_VIDEO),
        (b"G" + b"x" * 500, NOT_A_VIDEO),
    ],
)
def test_sniff_refuses(head: bytes, code: str) -> None:
    with pytest.raises(ProbeError) as caught:
        sniff(head)
    assert caught.value.code == code


def test_a_child_killed_by_a_limit_reads_as_corrupt() -> None:
    with pytest.raises(ProbeError) as caught:
        parse_child_output(b"", b"", -signal.SIGXCPU)
    assert caught.value.code == CORRUPT
    assert f"killed by signal {int(signal.SIGXCPU)}" in caught.value.message


def test_child_nonsense_reads_as_corrupt() -> None:
    with pytest.raises(ProbeError) as caught:
        parse_child_output(b'{"format": "mov"}\n', b"", 0)
    assert caught.value.code == CORRUPT
    with pytest.raises(ProbeError) as caught:
        parse_child_output(b"not json", b"Traceback...\nImportError: boom\n", 1)
    assert caught.value.code == CORRUPT and "ImportError: boom" in caught.value.message
