"""Locating and checking the media tools: the ffmpeg binary shipped by ``imageio-ffmpeg``."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import imageio_ffmpeg


@dataclass(frozen=True)
class ToolCheck:
    path: str
    version: str


def ffmpeg_path() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def version_command(path: str) -> list[str]:
    return [path, "-hide_banner", "-version"]


async def check_ffmpeg(path: str | None = None, *, timeout: float = 20.0) -> ToolCheck:
    """Run ``ffmpeg -version``; raises ``RuntimeError`` saying what to fix."""
    exe = path or ffmpeg_path()
    if not os.access(exe, os.X_OK):
        raise RuntimeError(f"ffmpeg at {exe} is not executable; reinstall imageio-ffmpeg")
    proc = await asyncio.create_subprocess_exec(
        *version_command(exe), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"ffmpeg at {exe} did not answer -version in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg at {exe} exited with {proc.returncode}")
    first = out.decode(errors="replace").splitlines()[0] if out else ""
    return ToolCheck(path=exe, version=first)


def usable(check: ToolCheck) -> bool:
    return os.access(check.path, os.X_OK)
