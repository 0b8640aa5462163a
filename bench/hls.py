"""HLS for ``bench.live``: the source clips, the plain-ffmpeg baselines, a playlist watched.

The baselines are the server's own argv (``media.live_ffmpeg.live_command``, HLS and the
recording part through one ``tee``) with the input swapped: the clip read at its own pace
instead of the publisher's RTP, or raw stamped frames from a pipe. A playlist is polled
every 50 ms, over HTTP from the server or as a file from a baseline's folder.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import av
import httpx
from av.video.frame import VideoFrame

from bench.stamp import HEIGHT, WIDTH, read_stamp
from media.live_ffmpeg import PLAYLIST, LiveSettings, RtpStream, live_command

CLIPS = Path(__file__).resolve().parent / "results" / "clips"
POLL_S = 0.05  # the first-segment and delay figures are as fine as this
CLIP_KBPS = 2500  # what a browser sends at 720p30 on a good link
FPS = 30
CLIP_FORMATS = {"H264": "mpegts", "VP8": "webm"}


def live_clip(ffmpeg: str, codec: str, seconds: int) -> Path:
    """A 720p30 testsrc2 clip with a tone, made once, in a form aiortc sends as it is: H.264
    baseline (no B-frames) in MPEG-TS (Annex B), or VP8 in WebM; Opus audio; a keyframe
    every 2 s, where the server asks for one."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    ext = "ts" if codec == "H264" else "webm"
    path = CLIPS / f"live-testsrc2-720p30-{codec.lower()}-{seconds}s-{CLIP_KBPS}k.{ext}"
    if path.exists():
        return path
    print(f"making the clip {path.name} (once) ...", flush=True)
    partial = path.with_name(f"partial-{path.name}")
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds}"]
    argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    gop = str(LiveSettings().segment_s * FPS)
    keyframes = ["-g", gop, "-keyint_min", gop, "-pix_fmt", "yuv420p"]
    rate = ["-b:v", f"{CLIP_KBPS}k", "-maxrate", f"{CLIP_KBPS}k", "-bufsize", f"{CLIP_KBPS}k"]
    if codec == "H264":
        argv += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline"]
        argv += ["-sc_threshold", "0", *keyframes, *rate]
    else:
        argv += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", *keyframes, *rate]
    argv += ["-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2", "-shortest"]
    argv += ["-f", CLIP_FORMATS[codec], str(partial)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120 + 4 * seconds)
    partial.rename(path)
    return path


def _server_argv(ffmpeg: str, codec: str, out: Path, audio: bool) -> list[str]:
    """What the server runs for a publisher sending ``codec`` (and Opus), writing in ``out``."""
    streams = [RtpStream("video", 40000, 96, codec, 90000)]
    if audio:
        streams.append(RtpStream("audio", 40002, 111, "opus", 48000, 2))
    return live_command(ffmpeg, out / "session.sdp", streams, out / PLAYLIST, out / "part-1.ts")


def clip_command(ffmpeg: str, codec: str, out: Path) -> list[str]:
    """The server's argv reading the clip's packets from stdin (:func:`feed_clip`) instead
    of the RTP the SDP file describes."""
    argv = _server_argv(ffmpeg, codec, out, audio=True)
    start, end = argv.index("-protocol_whitelist"), argv.index("-i") + 2
    # Probing a pipe for ffmpeg's default 5 s would hold the first segment back by 3 s; the
    # server's RTP input has its codecs in the SDP and is not held. 1 s is less than a segment.
    source = ["-analyzeduration", "1000000", "-f", CLIP_FORMATS[codec], "-i", "pipe:0"]
    return argv[:start] + source + argv[end:]


class _Sink:
    """A file PyAV writes to: the bytes go to ffmpeg's stdin (drained by the feeder)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def write(self, data: bytes) -> int:
        self.writer.write(data)
        return len(data)


async def feed_clip(clip: Path, codec: str, stdin: asyncio.StreamWriter) -> None:
    """The clip's packets, as they are, into ``stdin`` at their own pace, as aiortc's
    ``MediaPlayer`` sends them to the server. Not ffmpeg's ``-re``/``-readrate``: this build
    runs about 0.5 s ahead of the clock with it (its first 2 s segment is out after 1.5 s)."""
    loop = asyncio.get_running_loop()
    with (
        av.open(str(clip), mode="r") as source,
        av.open(_Sink(stdin), mode="w", format=CLIP_FORMATS[codec], buffer_size=4096) as sink,
    ):
        streams = {s.index: sink.add_stream_from_template(s) for s in source.streams}
        began, first = loop.time(), None
        for packet in source.demux():
            if packet.dts is None or packet.time_base is None:
                continue  # the demuxer's empty packet at the end
            at = float(packet.dts * packet.time_base)
            first = at if first is None else first
            ahead = began + at - first - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)  # the clip's own pace
            packet.stream = streams[packet.stream.index]
            sink.mux(packet)
            await stdin.drain()


def pipe_command(ffmpeg: str, out: Path) -> list[str]:
    """Raw stamped frames on stdin, encoded as aiortc encodes a publisher's H.264 (libx264
    baseline, ``zerolatency``, 1 Mb/s) with a keyframe every segment (the server asks the
    publisher for one each segment), into the server's HLS and recording outputs."""
    server = _server_argv(ffmpeg, "H264", out, audio=False)
    if server[-3:-1] != ["-f", "tee"]:
        raise RuntimeError(f"live_command no longer ends with its tee output: {server[-3:]}")
    segment_s = LiveSettings().segment_s
    argv = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y"]
    argv += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}"]
    argv += ["-framerate", str(FPS), "-i", "pipe:0", "-map", "0:v:0"]
    argv += ["-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-tune", "zerolatency"]
    argv += ["-b:v", "1M", "-force_key_frames", f"expr:gte(t,n_forced*{segment_s})"]
    return argv + server[-3:]


class HlsSource(Protocol):
    async def playlist(self) -> str | None: ...

    async def segment(self, name: str) -> bytes: ...


class HttpHls:
    """The server's playlist and segments, as a player fetches them. A playlist fetch that
    breaks is counted and tried again at the next poll, as a player does."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url
        self.errors: list[str] = []

    async def playlist(self) -> str | None:
        try:
            r = await self.client.get(self.url)
        except httpx.TransportError as exc:
            self.errors.append(repr(exc))
            return None
        return r.text if r.status_code == 200 else None

    async def segment(self, name: str) -> bytes:
        r = await self.client.get(self.url.rsplit("/", 1)[0] + "/" + name)
        r.raise_for_status()
        return r.content


class FileHls:
    """A baseline's playlist and segments, read from its folder (ffmpeg renames each into
    place whole, as the server's does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def playlist(self) -> str | None:
        try:
            return (self.folder / PLAYLIST).read_text()
        except FileNotFoundError:
            return None

    async def segment(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


def segments(text: str | None) -> list[str]:
    return [line for line in (text or "").splitlines() if line and not line.startswith("#")]


def target_duration(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("#EXT-X-TARGETDURATION:"):
            return float(line.split(":", 1)[1])
    raise ValueError("the playlist has no #EXT-X-TARGETDURATION")


def first_length(text: str) -> float:
    """The length of the playlist's first segment (its ``#EXTINF``)."""
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            return float(line.split(":", 1)[1].split(",", 1)[0])
    raise ValueError("the playlist has no #EXTINF")


async def first_segment(source: HlsSource, began: float, timeout_s: float) -> tuple[float, float]:
    """(seconds from ``began`` (``perf_counter``) until the playlist lists a segment, the
    segment's length: one longer than a segment's time was not cut at the first keyframe)."""
    deadline = began + timeout_s
    while time.perf_counter() < deadline:
        text = await source.playlist()
        if text and segments(text):
            return time.perf_counter() - began, first_length(text)
        await asyncio.sleep(POLL_S)  # the poll interval; the loop checks the playlist itself
    raise TimeoutError(f"no HLS segment within {timeout_s:g} s")


def last_stamp(data: bytes) -> int | None:
    """The stamp of a TS segment's last readable video frame (decoding it all)."""
    stamp = None
    with av.open(io.BytesIO(data), mode="r", format="mpegts") as container:
        for frame in container.decode(video=0):
            if isinstance(frame, VideoFrame):
                stamp = read_stamp(frame) or stamp
    return stamp


@dataclass
class Delays:
    """Per new segment: when it was first listed minus the time its last frame was made."""

    delays_ms: list[float] = field(default_factory=list)
    unreadable: int = 0
    target_s: float = 0.0


async def segment_delays(source: HlsSource, count: int, timeout_s: float) -> Delays:
    """Watch for ``count`` segments listed after the ones listed now (the first ones hold
    the start-up) and measure each one's delay."""
    out = Delays()
    text = await source.playlist()
    seen = set(segments(text))
    deadline = time.perf_counter() + timeout_s
    while len(out.delays_ms) + out.unreadable < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(out.delays_ms)} of {count} new HLS segments in time")
        await asyncio.sleep(POLL_S)  # the poll interval; the loop checks the playlist itself
        text = await source.playlist()
        listed_ms = time.time() * 1000
        for name in segments(text):
            if name in seen:
                continue
            seen.add(name)
            stamp = await asyncio.to_thread(last_stamp, await source.segment(name))
            if stamp is None:
                out.unreadable += 1
            else:
                out.delays_ms.append(listed_ms - stamp)
    if text:
        out.target_s = target_duration(text)
    return out
