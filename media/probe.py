"""Probing an uploaded file: is it a video we can transcode, and what are its dimensions?

Uploads are untrusted, and demuxers and decoders are where media exploits live, so the file
is never opened by a decoder in the server process. :func:`probe` first sniffs the magic
bytes here (cheap, and it refuses images, audio files, playlists and junk before anything is
spawned), then runs :mod:`media.probe_child` in a child process with a wall-clock timeout and
CPU, memory and file-size limits. The child opens the file with the one demuxer the sniff
chose (never ffmpeg's format guessing, which would happily follow an HLS playlist disguised
as ``.mp4`` to other files or URLs) and prints one JSON line.

Failures are :class:`ProbeError` with a stable ``code`` and a message that tells the
uploader what to do next.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media.lifeline import die_with_parent

# The stable error codes; the content service shows them to editors and the API returns them.
EMPTY = "empty"
NOT_A_VIDEO = "not_a_video"
NO_VIDEO_STREAM = "no_video_stream"
CORRUPT = "corrupt"
TOO_LONG = "too_long"
TOO_LARGE = "too_large"
TIMEOUT = "timeout"

# Enough for three MPEG-TS packets (188 bytes each), whose sync bytes identify the format.
SNIFF_BYTES = 512

# ISO-BMFF brands of still-image formats (HEIF/HEIC photos, AVIF): they start with `ftyp`
# exactly like an MP4, so the brand is what tells a phone photo from a phone video.
IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})
MOV_ATOMS = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})


class ProbeError(Exception):
    """The file cannot be used; ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class ProbeLimits:
    """What the deployment accepts; checked after probing, before any transcoding."""

    max_duration_s: float = 600.0
    # Sides of the displayed picture: 4K either way round, as phones record it.
    max_long_side: int = 4096
    max_short_side: int = 2304
    # Child limits: a hostile file must not pin a core or eat the machine's memory.
    cpu_s: int = 30
    memory_mb: int = 1024


@dataclass(frozen=True)
class ProbeResult:
    """What the child found. ``width``/``height`` are as coded; ``rotation`` (0, 90, 180 or
    270 degrees) is the display matrix, so a phone's portrait video is often 1920x1080 with
    rotation 90. Use :attr:`display_width`/:attr:`display_height` for what viewers see."""

    format: str
    duration_s: float
    width: int
    height: int
    rotation: int
    fps: float
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    bitrate: int

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def portrait(self) -> bool:
        return self.display_height > self.display_width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sniff(head: bytes) -> str:
    """The demuxer to open a file with, from its first bytes; raises :class:`ProbeError`.

    Only containers that phones, cameras, browsers (MediaRecorder) and editors export are
    accepted; everything else is refused here, with a message naming what it looks like.
    """
    if not head:
        raise ProbeError(EMPTY, "the file is empty (0 bytes); upload it again")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in IMAGE_BRANDS:
            raise ProbeError(NOT_A_VIDEO, _image("a HEIF/AVIF photo"))
        return "mov"
    if head[4:8] in MOV_ATOMS:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if _mpegts(head):
        return "mpegts"
    image = _image_kind(head)
    if image is not None:
        raise ProbeError(NOT_A_VIDEO, _image(image))
    audio = _audio_kind(head)
    if audio is not None:
        raise ProbeError(
            NO_VIDEO_STREAM,
            f"this is {audio}, with no picture; upload a video file (MP4, MOV, WebM or MKV)",
        )
    raise ProbeError(
        NOT_A_VIDEO,
        "this is not a video file we can read; export it as MP4 (H.264) and upload it again",
    )


def _mpegts(head: bytes) -> bool:
    # A transport stream is 188-byte packets each starting with 0x47; one sync byte alone is
    # too weak (any file can start with "G", GIF89a among them).
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47


def _image_kind(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00":
        return "a BMP image"
    return None


def _audio_kind(head: bytes) -> str | None:
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "an audio file (MP3/AAC)"
    if head.startswith(b"fLaC"):
        return "an audio file (FLAC)"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "an audio file (WAV)"
    return None


def _image(kind: str) -> str:
    return f"this is {kind}, not a video; post it as an image, or upload a video file"


def probe_command(
    python: str, path: str | os.PathLike[str], demuxer: str, limits: ProbeLimits
) -> list[str]:
    """The child's argv: ``python -m media.probe_child`` with its limits and the demuxer."""
    return [
        python,
        "-m",
        "media.probe_child",
        "--format",
        demuxer,
        "--cpu-s",
        str(limits.cpu_s),
        "--memory-mb",
        str(limits.memory_mb),
        os.fspath(path),
    ]


async def probe(
    path: str | os.PathLike[str],
    *,
    timeout: float = 30.0,
    limits: ProbeLimits | None = None,
    python: str | None = None,
) -> ProbeResult:
    """Probe ``path`` in a child process; raises :class:`ProbeError` saying what to do."""
    limits = limits or ProbeLimits()
    head = await asyncio.to_thread(_read_head, Path(path))
    demuxer = sniff(head)
    argv = probe_command(python or sys.executable, path, demuxer, limits)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        raise ProbeError(
            TIMEOUT,
            f"reading the file took longer than {timeout:.0f} s; it may be damaged: "
            "re-export it as MP4 (H.264) and upload it again",
        ) from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    result = parse_child_output(out, err, proc.returncode)
    check_limits(result, limits)
    return result


def _read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def parse_child_output(out: bytes, err: bytes, returncode: int | None) -> ProbeResult:
    """Turn the child's one JSON line (or its death) into a result or a :class:`ProbeError`."""
    line = out.decode(errors="replace").strip().splitlines()[-1:] if out else []
    doc: Any = None
    if line:
        try:
            doc = json.loads(line[0])
        except ValueError:
            doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        e = doc["error"]
        raise ProbeError(str(e.get("code", CORRUPT)), str(e.get("message", "unreadable file")))
    if returncode == 0 and isinstance(doc, dict):
        return _result(doc)
    # No verdict: the decoder crashed or hit a CPU/memory limit (SIGXCPU, SIGKILL, MemoryError).
    # To the uploader that is a file we cannot read, whatever the cause.
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {returncode}"]
    if returncode is not None and returncode < 0:
        tail = [f"killed by signal {-returncode}"]
    raise ProbeError(
        CORRUPT,
        f"the file could not be read ({tail[0][:200]}); re-export it as MP4 (H.264) "
        "and upload it again",
    )


def _result(doc: Mapping[str, Any]) -> ProbeResult:
    try:
        return ProbeResult(
            format=str(doc["format"]),
            duration_s=float(doc["duration_s"]),
            width=int(doc["width"]),
            height=int(doc["height"]),
            rotation=int(doc["rotation"]),
            fps=float(doc["fps"]),
            video_codec=str(doc["video_codec"]),
            audio_codec=None if doc["audio_codec"] is None else str(doc["audio_codec"]),
            has_audio=bool(doc["has_audio"]),
            bitrate=int(doc["bitrate"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ProbeError(CORRUPT, f"the probe answered nonsense ({e!r}); upload again") from None


def check_limits(result: ProbeResult, limits: ProbeLimits) -> None:
    """Refuse what the deployment will not transcode; the message names the limit."""
    if result.duration_s > limits.max_duration_s:
        raise ProbeError(
            TOO_LONG,
            f"the video is {round(result.duration_s, 1):g} s long; the limit is "
            f"{round(limits.max_duration_s, 1):g} s: trim it and upload it again",
        )
    long_side = max(result.width, result.height)
    short_side = min(result.width, result.height)
    if long_side > limits.max_long_side or short_side > limits.max_short_side:
        raise ProbeError(
            TOO_LARGE,
            f"the picture is {result.display_width}x{result.display_height}; the limit is "
            f"{limits.max_long_side}x{limits.max_short_side} (either way round): "
            "export it at 4K or less and upload it again",
        )
