"""ffmpeg command builders for on-demand video: pure functions returning argv lists.

Each is pinned by a golden test (``tests/media/test_ffmpeg.py``), so any change to what
ffmpeg is asked to do shows up in review as a diff of arguments.

The job encodes once: one ffmpeg run decodes the source and writes the whole HLS ladder
(every rung from the same decode, keyframes on the same timestamps so players can switch
rungs at any segment boundary). The MP4 fallback is then a remux (``-c copy``) of the
middle rung's HLS output, not a second encode; the poster is one frame seeked from the
source.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from media.ladder import Rendition

MASTER_PLAYLIST = "master.m3u8"
VARIANT_PLAYLIST = "index.m3u8"
# Above this rate the extra frames cost encode time and bandwidth that phones playing short
# videos do not show; 60 fps sources (game captures, some phones) keep their motion.
MAX_FPS = 60.0


@dataclass(frozen=True)
class EncodeSettings:
    """How hard to work: bounded threads so one job cannot starve the server's event loop."""

    threads: int = 2
    preset: str = "veryfast"
    # 4 s segments: Apple's authoring spec allows 2-6; fewer, larger files for short videos
    # while a rung switch still happens within a few seconds.
    segment_s: int = 4
    # Never encode more than the probe allowed: a container may claim a shorter duration
    # than its packets hold, and this input limit holds whatever it claims.
    max_duration_s: float = 600.0


def _common(ffmpeg: str) -> list[str]:
    # -nostdin: ffmpeg otherwise reads keys ("q") from stdin. -progress on stdout, one
    # key=value per line, is the machine-readable progress; -nostats silences the human one.
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def _progress() -> list[str]:
    return ["-progress", "pipe:1", "-nostats"]


def variant_dir(hls_dir: str | os.PathLike[str], rendition: Rendition) -> PurePath:
    return PurePath(hls_dir) / rendition.name


def hls_command(
    ffmpeg: str,
    source: str | os.PathLike[str],
    hls_dir: str | os.PathLike[str],
    ladder: Sequence[Rendition],
    *,
    demuxer: str,
    fps: float,
    has_audio: bool,
    settings: EncodeSettings = EncodeSettings(),
) -> list[str]:
    """One run: the source → ``hls_dir/<rung>/index.m3u8`` + fMP4 segments + the master.

    ``demuxer`` is the one the probe opened the file with; forcing it keeps ffmpeg from
    guessing the format of an untrusted file (an HLS playlist renamed .mp4 would otherwise be
    followed to whatever files or URLs it names).
    """
    if not ladder:
        raise ValueError("empty ladder")
    n = len(ladder)
    capped = fps > MAX_FPS
    out_fps = MAX_FPS if capped or fps <= 0 else fps
    chains = [f"[0:v:0]split={n}" + "".join(f"[s{i}]" for i in range(n))]
    for i, r in enumerate(ladder):
        rate = f",fps={_num(MAX_FPS)}" if capped else ""
        # setsar=1: the rung's size is the display size, so pixels are square; format pins
        # 8-bit 4:2:0, the only H.264 profile every phone decodes (sources may be 10-bit HDR).
        chains.append(f"[s{i}]scale={r.width}:{r.height},setsar=1{rate},format=yuv420p[v{i}]")
    argv = _common(ffmpeg)
    argv += ["-threads", str(settings.threads), "-t", _num(settings.max_duration_s)]
    argv += ["-f", demuxer, "-i", os.fspath(source)]
    argv += ["-filter_complex", ";".join(chains)]
    argv += ["-filter_complex_threads", str(settings.threads)]
    for i in range(n):
        argv += ["-map", f"[v{i}]"]
        if has_audio:
            argv += ["-map", "0:a:0"]
    # Phones write GPS position and device names into metadata; published files carry none.
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
    gop = max(1, round(out_fps * settings.segment_s))
    argv += [
        "-c:v",
        "libx264",
        "-preset",
        settings.preset,
        "-profile:v",
        "high",
        # Keyframes exactly on segment boundaries in every rung (forced by time, so variable
        # frame rate phone video aligns too); no extra ones at scene cuts to misalign them.
        "-force_key_frames",
        f"expr:gte(t,n_forced*{settings.segment_s})",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
    ]
    for i, r in enumerate(ladder):
        # Capped VBR: maxrate a little above the target, a 1.5 s buffer, as HLS players
        # pick rungs by the BANDWIDTH the playlist declares and stall if a segment overshoots.
        kbps = r.video_bitrate // 1000
        argv += [f"-b:v:{i}", f"{kbps}k", f"-maxrate:v:{i}", f"{kbps * 107 // 100}k"]
        argv += [f"-bufsize:v:{i}", f"{kbps * 3 // 2}k"]
    if has_audio:
        audio_kbps = ladder[0].audio_bitrate // 1000
        argv += ["-c:a", "aac", "-b:a", f"{audio_kbps}k", "-ac", "2", "-ar", "48000"]
    argv += ["-threads", str(settings.threads)]
    streams = " ".join(
        f"v:{i},a:{i},name:{r.name}" if has_audio else f"v:{i},name:{r.name}"
        for i, r in enumerate(ladder)
    )
    hls = PurePath(hls_dir)
    argv += [
        "-f",
        "hls",
        "-hls_time",
        str(settings.segment_s),
        "-hls_playlist_type",
        "vod",
        "-hls_list_size",
        "0",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "independent_segments",
        "-hls_fmp4_init_filename",
        "init.mp4",
        "-hls_segment_filename",
        str(hls / "%v" / "seg_%03d.m4s"),
        "-master_pl_name",
        MASTER_PLAYLIST,
        "-var_stream_map",
        streams,
    ]
    argv += _progress()
    argv.append(str(hls / "%v" / VARIANT_PLAYLIST))
    return argv


def mp4_command(
    ffmpeg: str, variant_playlist: str | os.PathLike[str], out: str | os.PathLike[str]
) -> list[str]:
    """Remux one HLS rung into a progressive MP4 with the index first (``+faststart``).

    Only the file protocol: the playlist is our own output, and the HLS demuxer must not be
    allowed to reach anything else even if that output were tampered with.
    """
    argv = _common(ffmpeg)
    argv += ["-protocol_whitelist", "file", "-f", "hls", "-i", os.fspath(variant_playlist)]
    argv += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart"]
    argv += ["-f", "mp4"]
    argv += _progress()
    argv.append(os.fspath(out))
    return argv


def poster_time(duration_s: float) -> float:
    """Where the poster is taken: 1 s in (past fade-ins and black first frames), or 10% of a
    video shorter than 10 s so it never seeks past the end."""
    return round(min(1.0, max(0.0, duration_s) * 0.1), 3)


def poster_command(
    ffmpeg: str,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    rendition: Rendition,
    *,
    demuxer: str,
    at_s: float,
    threads: int = 2,
) -> list[str]:
    """One JPEG frame at ``at_s``, at the size of ``rendition`` (the top rung)."""
    argv = _common(ffmpeg)
    # -ss before -i: seek in the demuxer (fast), then decode up to the exact time.
    argv += ["-threads", str(threads), "-ss", _num(at_s), "-f", demuxer, "-i", os.fspath(source)]
    argv += ["-map", "0:v:0", "-frames:v", "1", "-map_metadata", "-1"]
    argv += ["-vf", f"scale={rendition.width}:{rendition.height},setsar=1"]
    # -q:v 3: visually clean JPEG at about a tenth of q 1's size; -update 1 writes one file
    # without the image2 muxer asking for a %d sequence pattern.
    argv += ["-c:v", "mjpeg", "-q:v", "3", "-update", "1", "-f", "image2"]
    argv += _progress()
    argv.append(os.fspath(out))
    return argv


def _num(value: float) -> str:
    """A float as ffmpeg reads it, without a trailing ``.0``, so goldens stay readable."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
