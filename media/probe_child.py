"""The probe child: ``python -m media.probe_child --format mov FILE`` prints one JSON line.

Runs in its own process (see :mod:`media.probe`), so a decoder crash, a hang or a memory
blow-up on a hostile file costs a child, never the server. It limits itself before opening
the file: CPU seconds, address space, and file size (a probe writes nothing but one line).

The output is ``{"format", "duration_s", "width", "height", "rotation", "fps", "video_codec",
"audio_codec", "has_audio", "bitrate"}`` or ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from media.probe import CORRUPT, NO_VIDEO_STREAM, NOT_A_VIDEO, ProbeError

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

# A truncated upload still opens when the index comes first (`+faststart`); what gives it away
# is that the packets stop short of the duration the header promises. This much shortfall is
# tolerated, as encoders round durations and audio often runs a frame past the video.
TRUNCATION_SLACK_S = 0.5
FSIZE_LIMIT = 1024 * 1024


def set_limits(cpu_s: int, memory_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Not 0: stdout may be a file when a person runs the child by hand, and one JSON line
    # must still fit. A probe writes nothing else, so an exploit gets no room to drop a file.
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def inspect(path: str, demuxer: str) -> dict[str, Any]:
    """Open with exactly ``demuxer``, decode the first video frame, demux every packet."""
    import av  # here, not at module top: only the child ever loads the decoders

    try:
        container = av.open(path, format=demuxer, metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise ProbeError(
            CORRUPT,
            "the file is damaged or incomplete (its index cannot be read); "
            "check that the upload finished, or re-export it and upload it again",
        ) from None
    with container:
        # Cover art in an audio file is a one-picture "video" stream flagged attached_pic.
        videos = [
            s
            for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ]
        if not videos:
            raise ProbeError(
                NO_VIDEO_STREAM,
                "the file has sound but no picture; upload a video file with a video track",
            )
        video = videos[0]
        audios = list(container.streams.audio)
        video.codec_context.thread_count = 1
        # One pass: count packets and find where they end, decoding only until the first
        # picture comes out (that proves the codec is real without paying for the whole file).
        first: VideoFrame | None = None
        video_packets = 0
        end_s = 0.0
        try:
            for packet in container.demux(video, *audios):
                if packet.size == 0 or packet.pts is None or packet.time_base is None:
                    continue
                if packet.stream is video:
                    video_packets += 1
                    if first is None:
                        first = _first_frame(video.decode(packet))
                end = (packet.pts + (packet.duration or 0)) * packet.time_base
                end_s = max(end_s, float(end))
            if first is None:
                first = _first_frame(video.decode(None))
        except av.error.FFmpegError:
            raise ProbeError(
                CORRUPT, "the file is damaged part way through; re-export it and upload again"
            ) from None
        if first is None:
            raise ProbeError(
                CORRUPT,
                "the video track cannot be decoded; re-export it as MP4 (H.264) and upload again",
            )
        if video_packets < 2:
            raise ProbeError(
                NOT_A_VIDEO,
                "this is a single still picture, not a video; post it as an image, "
                "or upload a video file",
            )
        declared_s = container.duration / 1_000_000 if container.duration else None
        if declared_s is not None and end_s + TRUNCATION_SLACK_S < declared_s:
            raise ProbeError(
                CORRUPT,
                f"the file stops at {end_s:.1f} s of {declared_s:.1f} s: it is incomplete; "
                "check that the upload finished and upload it again",
            )
        rate = video.average_rate or video.guessed_rate
        return {
            "format": demuxer,
            # The packets, not the header, say how long it plays: a header can claim 1 s for
            # an hour of video, and the limits must hold for what will be encoded.
            "duration_s": round(max(declared_s or 0.0, end_s), 3),
            "width": first.width,
            "height": first.height,
            "rotation": round(first.rotation / 90) % 4 * 90,
            "fps": round(float(Fraction(rate)), 3) if rate else 0.0,
            "video_codec": video.codec_context.name,
            "audio_codec": audios[0].codec_context.name if audios else None,
            "has_audio": bool(audios),
            "bitrate": int(container.bit_rate or 0),
        }


def _first_frame(frames: Sequence[VideoFrame]) -> VideoFrame | None:
    return frames[0] if frames else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="media.probe_child")
    parser.add_argument("--format", required=True)
    parser.add_argument("--cpu-s", type=int, default=30)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("path")
    args = parser.parse_args(argv)
    set_limits(args.cpu_s, args.memory_mb)
    try:
        doc: dict[str, Any] = inspect(args.path, args.format)
    except ProbeError as e:
        doc = {"error": {"code": e.code, "message": e.message}}
    except MemoryError:
        doc = {"error": {"code": CORRUPT, "message": "the file needs too much memory to read"}}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
