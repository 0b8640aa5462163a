"""Running a video job: HLS ladder, MP4 fallback and poster, with progress and a clean stop.

A :class:`Transcoder` owns the ffmpeg children it starts. Output goes to ``<out>.partial``
and becomes ``<out>`` by one ``rename`` at the very end, so a crash, a kill or a ``stop()``
mid-way never leaves a directory that looks finished; a later run removes the stale partial
and starts over. The finished layout is::

    <out>/hls/master.m3u8   <out>/hls/<rung>/index.m3u8, init_<i>.mp4, seg_NNN.m4s
    <out>/video.mp4         <out>/poster.jpg
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from media.ffmpeg import (
    MASTER_PLAYLIST,
    VARIANT_PLAYLIST,
    EncodeSettings,
    hls_command,
    mp4_command,
    poster_command,
    poster_time,
    variant_dir,
)
from media.ladder import Rendition, choose_ladder, fallback_rendition
from media.lifeline import ChildLimits, spawn
from media.probe import ProbeResult
from media.tools import ffmpeg_path

ProgressCallback = Callable[[float], Awaitable[None] | None]

HLS_DIR = "hls"
MP4_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
# Shares of the whole job, by measured cost: the HLS encode is nearly all of it; the MP4 is
# a remux and the poster one frame. The last share is the final rename, so 1.0 is only ever
# reported for output that is in place.
WEIGHTS = {"hls": 0.93, "mp4": 0.03, "poster": 0.03}
STDERR_LINES = 20


class TranscodeError(Exception):
    """The job failed; ``code`` is stable, ``stderr_tail`` is ffmpeg's last words."""

    def __init__(self, code: str, message: str, stderr_tail: str = "") -> None:
        self.code = code
        self.message = message
        self.stderr_tail = stderr_tail
        super().__init__(f"{code}: {message}" + (f"\n{stderr_tail}" if stderr_tail else ""))


class TranscodeStopped(TranscodeError):
    """``stop()`` was called; nothing was left behind."""

    def __init__(self) -> None:
        super().__init__("stopped", "the transcode was stopped")


@dataclass(frozen=True)
class TranscodeResult:
    out_dir: Path
    duration_s: float
    elapsed_s: float
    renditions: tuple[Rendition, ...]
    mp4_rendition: Rendition
    poster_width: int
    poster_height: int
    hls_bytes: int
    mp4_bytes: int
    poster_bytes: int
    step_elapsed_s: dict[str, float] = field(default_factory=dict)

    @property
    def master_playlist(self) -> Path:
        return self.out_dir / HLS_DIR / MASTER_PLAYLIST

    @property
    def mp4(self) -> Path:
        return self.out_dir / MP4_FILE

    @property
    def poster(self) -> Path:
        return self.out_dir / POSTER_FILE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, paths relative to ``out_dir`` (which is where the blobs are served)."""
        return {
            "hls": f"{HLS_DIR}/{MASTER_PLAYLIST}",
            "mp4": MP4_FILE,
            "poster": POSTER_FILE,
            "duration_s": self.duration_s,
            "elapsed_s": self.elapsed_s,
            "renditions": [
                {"name": r.name, "width": r.width, "height": r.height, "bitrate": r.bitrate}
                for r in self.renditions
            ],
            "mp4_rendition": self.mp4_rendition.name,
            "poster_size": [self.poster_width, self.poster_height],
            "bytes": {"hls": self.hls_bytes, "mp4": self.mp4_bytes, "poster": self.poster_bytes},
            "step_elapsed_s": dict(self.step_elapsed_s),
        }


@dataclass
class ProgressParser:
    """Reads ffmpeg ``-progress`` lines; ``fraction`` of ``duration_s`` done, never going back.

    ffmpeg prints blocks of ``key=value`` ending in ``progress=continue`` or ``progress=end``;
    ``out_time_us`` can be ``N/A`` before the first frame and can wobble between streams.
    """

    duration_s: float
    fraction: float = 0.0

    def feed(self, line: str) -> bool:
        """Take one line; True when ``fraction`` moved forward."""
        key, _, value = line.strip().partition("=")
        before = self.fraction
        if key == "progress" and value == "end":
            self.fraction = 1.0
        elif key == "out_time_us" and self.duration_s > 0:
            try:
                seconds = int(value) / 1_000_000
            except ValueError:
                return False
            # Capped below 1: only progress=end says the output is complete.
            self.fraction = max(self.fraction, min(0.999, seconds / self.duration_s))
        return self.fraction > before


class Transcoder:
    """Turns a probed source into ``out_dir``; ``run()`` once, ``stop()`` from anywhere."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        probe: ProbeResult,
        out_dir: str | os.PathLike[str],
        *,
        ffmpeg: str | None = None,
        settings: EncodeSettings | None = None,
        timeout_s: float | None = None,
        ladder: list[Rendition] | None = None,
        limits: ChildLimits | None = None,
    ) -> None:
        self.source = Path(source)
        self.limits = limits or ChildLimits()
        self.probe = probe
        self.out_dir = Path(out_dir)
        self.partial_dir = self.out_dir.with_name(self.out_dir.name + ".partial")
        self.ffmpeg = ffmpeg or ffmpeg_path()
        self.settings = settings or EncodeSettings()
        self.timeout_s = timeout_s
        self.ladder = ladder or choose_ladder(
            probe.display_width, probe.display_height, has_audio=probe.has_audio
        )
        self.mp4_rendition = fallback_rendition(self.ladder)
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._started = False
        self._owns_partial = False
        self._task: asyncio.Task[object] | None = None
        self._done = asyncio.Event()
        self._reported = 0.0

    @property
    def pid(self) -> int | None:
        """The running ffmpeg child's pid, for monitoring; None between steps."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def commands(self) -> dict[str, list[str]]:
        """The steps' argv, in run order, writing into the partial directory."""
        hls = self.partial_dir / HLS_DIR
        mp4_source = variant_dir(hls, self.mp4_rendition) / VARIANT_PLAYLIST
        return {
            "hls": hls_command(
                self.ffmpeg,
                self.source,
                hls,
                self.ladder,
                demuxer=self.probe.format,
                fps=self.probe.fps,
                has_audio=self.probe.has_audio,
                settings=self.settings,
            ),
            "mp4": mp4_command(self.ffmpeg, mp4_source, self.partial_dir / MP4_FILE),
            "poster": poster_command(
                self.ffmpeg,
                self.source,
                self.partial_dir / POSTER_FILE,
                self.ladder[0],
                demuxer=self.probe.format,
                at_s=poster_time(self.probe.duration_s),
                threads=self.settings.threads,
            ),
        }

    async def run(self, on_progress: ProgressCallback | None = None) -> TranscodeResult:
        """Run every step; raises :class:`TranscodeError` (or :class:`TranscodeStopped`)."""
        if self._started:
            raise RuntimeError("a Transcoder runs once")
        self._started = True
        self._task = asyncio.current_task()
        try:
            if self._stopping:
                raise TranscodeStopped()
            if self.out_dir.exists():
                raise TranscodeError("exists", f"{self.out_dir} already exists; remove it first")
            async with asyncio.timeout(self.timeout_s):
                return await self._run(on_progress)
        except TimeoutError:
            raise TranscodeError(
                "timeout", f"the transcode took longer than {self.timeout_s} s"
            ) from None
        finally:
            await self._kill()
            if self._owns_partial:
                # Gone already after a success (renamed); otherwise a failed or stopped job
                # leaves nothing behind.
                await asyncio.to_thread(shutil.rmtree, self.partial_dir, True)
            self._done.set()

    async def stop(self) -> None:
        """Kill the running step and wait until ``run()`` has cleaned up; idempotent.

        Called from inside ``run()`` (an ``on_progress`` callback deciding to give up) it only
        kills: waiting there for ``run()`` to finish would wait for itself.
        """
        self._stopping = True
        await self._kill()
        if self._started and asyncio.current_task() is not self._task:
            await self._done.wait()

    async def _run(self, on_progress: ProgressCallback | None) -> TranscodeResult:
        began = time.monotonic()
        self._owns_partial = True
        await asyncio.to_thread(shutil.rmtree, self.partial_dir, True)
        (self.partial_dir / HLS_DIR).mkdir(parents=True)
        steps: dict[str, float] = {}
        done = 0.0
        for name, argv in self.commands().items():
            step_began = time.monotonic()
            weight = WEIGHTS[name]
            await self._step(name, argv, done, weight, on_progress)
            done += weight
            steps[name] = round(time.monotonic() - step_began, 3)
        result = self._collect(began, steps)
        if self._stopping:
            raise TranscodeStopped()
        # The one moment the output appears: a rename is atomic on one filesystem.
        os.rename(self.partial_dir, self.out_dir)
        await self._report(on_progress, 1.0)
        return replace(result, out_dir=self.out_dir)

    async def _step(
        self,
        name: str,
        argv: list[str],
        base: float,
        weight: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        if self._stopping:
            raise TranscodeStopped()
        proc = await spawn(argv, self.limits, stdout=asyncio.subprocess.PIPE)
        self._proc = proc
        tail: deque[str] = deque(maxlen=STDERR_LINES)
        stderr_task = asyncio.create_task(_drain(proc.stderr, tail))
        parser = ProgressParser(self.probe.duration_s)
        assert proc.stdout is not None
        try:
            async for raw in proc.stdout:
                if parser.feed(raw.decode(errors="replace")):
                    await self._report(on_progress, base + weight * parser.fraction)
            code = await proc.wait()
            await stderr_task
        finally:
            # Cancelled or failed part way: the child must not outlive its owner.
            await self._kill()
            stderr_task.cancel()
            self._proc = None
        if self._stopping:
            raise TranscodeStopped()
        if code != 0:
            raise TranscodeError(
                "ffmpeg_failed", f"the {name} step failed (exit {code})", "\n".join(tail)
            )

    async def _report(self, on_progress: ProgressCallback | None, fraction: float) -> None:
        fraction = min(1.0, round(fraction, 4))
        if on_progress is None or fraction <= self._reported:
            return
        self._reported = fraction
        outcome = on_progress(fraction)
        if inspect.isawaitable(outcome):
            await outcome

    async def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        # SIGKILL, not SIGTERM: a terminated ffmpeg finishes writing playlists that would
        # look complete, and there is nothing in a half-done job worth flushing.
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()

    def _collect(self, began: float, steps: dict[str, float]) -> TranscodeResult:
        hls = self.partial_dir / HLS_DIR
        mp4 = self.partial_dir / MP4_FILE
        poster = self.partial_dir / POSTER_FILE
        missing = [
            p
            for p in (hls / MASTER_PLAYLIST, mp4, poster)
            + tuple(variant_dir(hls, r) / VARIANT_PLAYLIST for r in self.ladder)
            if not Path(p).is_file() or Path(p).stat().st_size == 0
        ]
        if missing:
            names = ", ".join(str(Path(p).relative_to(self.partial_dir)) for p in missing)
            raise TranscodeError("output_missing", f"ffmpeg succeeded but did not write {names}")
        return TranscodeResult(
            out_dir=self.partial_dir,
            duration_s=self.probe.duration_s,
            elapsed_s=round(time.monotonic() - began, 3),
            renditions=tuple(self.ladder),
            mp4_rendition=self.mp4_rendition,
            poster_width=self.ladder[0].width,
            poster_height=self.ladder[0].height,
            hls_bytes=sum(p.stat().st_size for p in hls.rglob("*") if p.is_file()),
            mp4_bytes=mp4.stat().st_size,
            poster_bytes=poster.stat().st_size,
            step_elapsed_s=steps,
        )


async def _drain(stream: asyncio.StreamReader | None, tail: deque[str]) -> None:
    """Keep reading stderr so ffmpeg never blocks on a full pipe; remember the last lines."""
    if stream is None:
        return
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if line:
            tail.append(line)
