"""Test clips the media tests make for themselves with ffmpeg's lavfi sources.

Small and short on purpose (the suite runs on 2 cores): only the ladder test needs a 1080p
source, and it is 2 s long. ``ultrafast`` keeps making them cheap.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from media.tools import ffmpeg_path


def ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        capture_output=True,
        check=True,
        timeout=120,
    )


def make_clip(
    path: Path,
    *,
    size: str,
    seconds: float = 1.0,
    rate: int = 25,
    audio: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    """testsrc2 (+ a sine tone) as H.264/AAC in whatever container ``path`` names."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, *extra, str(path))
    return path


def decode_errors(media: Path) -> tuple[int, str]:
    """Decode every frame of ``media`` (a file or a playlist); (exit code, what ffmpeg said)."""
    done = subprocess.run(
        [ffmpeg_path(), "-nostdin", "-v", "error", "-i", str(media), "-f", "null", "-"],
        capture_output=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker; raises if it is no JPEG."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            raise ValueError(f"bad marker at {i}")
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    raise ValueError("no start-of-frame marker")


def top_level_boxes(data: bytes) -> list[bytes]:
    """The ISO-BMFF top-level box types in order (``ftyp``, ``moov``, ``mdat``…)."""
    boxes = []
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        boxes.append(data[i + 4 : i + 8])
        if size == 1:
            size = int.from_bytes(data[i + 8 : i + 16], "big")
        if size < 8:
            break
        i += size
    return boxes


def cached(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """A clip made once per test session (shared by the probe and transcode tests)."""
    folder = factory.getbasetemp() / "media-clips"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if not path.exists():
        partial = folder / f"partial-{name}"
        make(partial)
        partial.rename(path)
    return path


def landscape_1080p(factory: pytest.TempPathFactory) -> Path:
    """The one full-ladder source: 1920x1080, 30 fps, 2 s, with a tone."""
    return cached(
        factory,
        "landscape-1080p.mp4",
        lambda p: make_clip(p, size="1920x1080", seconds=2, rate=30, extra=("-f", "mp4")),
    )


def children(parent: int | None = None, *, named: str = "") -> set[int]:
    """The live children of ``parent`` (this process by default; zombies included: an
    unreaped child is still left), only those whose name holds ``named`` when given."""
    mine = str(os.getpid() if parent is None else parent)
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        name = re.search(r"^Name:\s+(.*)$", status, re.MULTILINE)
        if re.search(rf"^PPid:\s+{mine}$", status, re.MULTILINE) and (
            named in (name.group(1) if name else "")
        ):
            found.add(int(entry.name))
    return found
