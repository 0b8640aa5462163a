"""Live rooms against plain ffmpeg and plain aiortc, measured in the same run.

    .venv/bin/python -m bench.live [--seconds 20] [--seats 4] [--quick]

The real ``lifeaccount serve`` runs on 127.0.0.1 port 0 in a fresh data dir; one owner signs
up through the API and creates a room per publish. Each figure prints beside its baseline:

1. CPU per live room: a 720p30 clip published over WHIP by aiortc with its packets sent as
   they are (H.264: the server copies it into HLS; VP8: the server's ffmpeg encodes it with
   libx264), the server process and its children (ffmpeg) over ``--seconds`` from the first
   HLS segment (``bench/cpu.py``). Baseline: the server's own ffmpeg argv, fed the clip's
   packets at their pace on stdin instead of RTP. The publisher (this process) is not counted.
2. CPU per added WHEP seat: viewers join the H.264 room one at a time, up to ``--seats`` (the
   server's cap), each seat count measured for ``--seconds / 4``. Baseline: aiortc's
   ``MediaRelay`` in a child process (``bench/relay.py`` says why it is the fair one).
3. Publish to first HLS segment: from the WHIP POST (the baseline: from ffmpeg's start) until
   the playlist lists a segment, polled every 50 ms; the median of three starts each side.
4. HLS delay: a publisher encodes (aiortc, H.264) frames that carry the time they were made
   (``bench/stamp.py``); each new segment is fetched once listed and its last frame read:
   delay = listed - made. A player at hls.js's default live edge is 3 target durations
   further behind: computed, not played. Baseline: the same stamped frames piped raw into
   the server's ffmpeg outputs, encoded as aiortc encodes a publisher's.
5. Glass to glass over WebRTC: a WHEP viewer reads the stamp of every decoded frame (now -
   made, on one clock: both ends are here). Baseline: the same publisher and viewer
   connected peer to peer, no server.

Prints a table (``bench/live_report.py``) and writes ``bench/results/live-<timestamp>.json``;
exit status 1 if any step failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import measure
from bench.hls import (
    FPS,
    FileHls,
    HlsSource,
    HttpHls,
    clip_command,
    feed_clip,
    first_segment,
    live_clip,
    pipe_command,
    segment_delays,
)
from bench.live_report import report
from bench.peers import (
    Publisher,
    Signal,
    StampedTrack,
    Viewer,
    clip_publisher,
    connect,
    direct_signal,
    new_viewer,
    stamped_publisher,
    video_codec,
    whep_signal,
    whip_signal,
)
from bench.relay import RelayChild
from bench.report import machine
from bench.servers import FAST_HASHING, HOST, ServerProcess, child_env, lifeaccount_command
from media.tools import check_ffmpeg, ffmpeg_path

RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "bench correct horse battery"
START_TIMEOUT_S = 30.0  # to a first segment, or a peer's first second of frames
POLL_S = 0.05


@dataclass(frozen=True)
class Options:
    seconds: float  # each room's CPU window
    seats: int
    frames: int  # stamped frames read per WebRTC viewer, after a second of warm-up
    segments: int  # new HLS segments read per playlist
    starts: int  # publishes timed to their first segment, per codec and side

    @property
    def seat_s(self) -> float:
        return max(3.0, self.seconds / 4)

    @property
    def clip_s(self) -> int:
        """Long enough for the H.264 room and its seats; 90 s unless that is too short, so
        the default run and the quick look share one cached clip."""
        needed = 15 + self.seconds + (self.seats + 1) * (self.seat_s + 3)  # the last start
        return max(90, 30 * math.ceil(needed / 30))


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.perf_counter() + timeout_s
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(POLL_S)  # the poll interval; the loop checks the state itself


# --- the server -------------------------------------------------------------------------------


@dataclass
class Server:
    process: ServerProcess
    client: httpx.AsyncClient
    account_id: str = ""
    api_key: str = ""
    rooms: int = 0

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    async def sign_up(self) -> None:
        r = await self.client.post(
            "/api/v1/signup",
            json={
                "email": "owner@bench-live.example",
                "password": PASSWORD,
                "account": {"name": "Bench Live", "handle": "bench-live"},
            },
        )
        body = self._check(r, 201, "sign-up").json()
        self.client.cookies.clear()  # the API key is the one credential from here on
        self.account_id, self.api_key = body["account"]["id"], body["api_key"]

    async def new_room(self) -> dict[str, Any]:
        """A fresh room (URLs and stream key): one per publish, so none continues another's
        playlist."""
        self.rooms += 1
        r = await self.client.post(
            f"/api/v1/accounts/{self.account_id}/rooms",
            json={"title": f"Bench room {self.rooms}"},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        room: dict[str, Any] = self._check(r, 201, "create room").json()
        return room

    def _check(self, r: httpx.Response, status: int, what: str) -> httpx.Response:
        if r.status_code != status:
            raise RuntimeError(f"{what} answered {r.status_code}: {r.text[:500]}")
        return r


async def publish_first_segment(
    publisher: Publisher, signal: Signal, hls: HlsSource
) -> tuple[tuple[float, float], str]:
    """(:func:`~bench.hls.first_segment` timed from the WHIP POST, the video codec answered)."""
    first: asyncio.Task[tuple[float, float]] | None = None

    async def timed(offer: str) -> str:
        nonlocal first
        first = asyncio.create_task(first_segment(hls, time.perf_counter(), START_TIMEOUT_S))
        return await signal(offer)

    try:
        answer = await connect(publisher.pc, timed)
        assert first is not None
        return await first, video_codec(answer)
    finally:
        if first is not None:
            first.cancel()


async def server_room(
    server: Server, clip: Path, codec: str, opts: Options, stack: contextlib.AsyncExitStack
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures 1 and 3: ``opts.starts`` publishes to fresh rooms, each timed to its first
    segment; the last one stays on for its CPU. (figures, that room)."""
    firsts: list[tuple[float, float]] = []
    errors: list[str] = []
    for start in range(opts.starts):
        room = await server.new_room()
        publisher = clip_publisher(str(clip), codec)
        stack.push_async_callback(publisher.close)
        whip = whip_signal(server.client, room["whip_url"], room["stream_key"])
        hls = HttpHls(server.client, room["hls_url"])
        first, answered = await publish_first_segment(publisher, whip, hls)
        firsts.append(first)
        errors += hls.errors
        if start < opts.starts - 1:
            await publisher.close()  # closing twice is harmless
    span = await measure(server.pid, opts.seconds)
    figures = {"codec_in": answered} | _firsts(firsts)
    return figures | span.record() | {"playlist_errors": errors}, room


def _firsts(firsts: list[tuple[float, float]]) -> dict[str, list[float]]:
    return {
        "first_segment_s": [round(at, 3) for at, _ in firsts],
        "first_segment_length_s": [round(length, 3) for _, length in firsts],
    }


async def server_h264(server: Server, clip: Path, opts: Options) -> dict[str, Any]:
    """Figures 1-3 on one room: its first segment and CPU, then its seats."""
    async with contextlib.AsyncExitStack() as stack:
        figures, room = await server_room(server, clip, "H264", opts, stack)
        whep = whep_signal(server.client, room["whep_url"])
        return figures | {"seats": await seat_steps(server.pid, whep, opts, stack)}


async def server_vp8(server: Server, clip: Path, opts: Options) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        figures, _ = await server_room(server, clip, "VP8", opts, stack)
        return figures


# --- plain ffmpeg -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ffmpeg_child(argv: list[str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """ffmpeg reading stdin; killed on the way out (its files are not looked at after)."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def fed(log: Path, feeder: Awaitable[None], work: Awaitable[Any]) -> Any:
    """``work`` while ``feeder`` writes to ffmpeg; either failing says what ffmpeg said."""
    feeding, working = asyncio.ensure_future(feeder), asyncio.ensure_future(work)
    try:
        await asyncio.wait([feeding, working], return_when=asyncio.FIRST_COMPLETED)
        if working.done() and working.exception() is None:
            return working.result()
        failed = working if working.done() else feeding
        cause = failed.exception() or "the feed ended"
        raise RuntimeError(f"{cause!r}; ffmpeg said: {log.read_text()[-1500:]}")
    finally:
        feeding.cancel()
        working.cancel()
        # The feeder's last writes land while ffmpeg still reads, before it is killed.
        await asyncio.gather(feeding, working, return_exceptions=True)


async def ffmpeg_start(
    ffmpeg: str, clip: Path, codec: str, out: Path, window_s: float
) -> tuple[tuple[float, float], dict[str, Any]]:
    """The server's argv fed the clip, alone: (its :func:`~bench.hls.first_segment`, its CPU
    over ``window_s`` from then; nothing measured when 0)."""
    out.mkdir()
    log = out / "stderr.log"
    began = time.perf_counter()
    async with ffmpeg_child(clip_command(ffmpeg, codec, out), log) as proc:
        assert proc.stdin is not None

        async def work() -> tuple[tuple[float, float], dict[str, Any]]:
            first = await first_segment(FileHls(out), began, START_TIMEOUT_S)
            return first, (await measure(proc.pid, window_s)).record() if window_s else {}

        started: tuple[tuple[float, float], dict[str, Any]] = await fed(
            log, feed_clip(clip, codec, proc.stdin), work()
        )
        return started


async def ffmpeg_room(ffmpeg: str, clip: Path, codec: str, opts: Options, tmp: Path) -> Any:
    """Figures 1 and 3 for the baseline, started as often as the server's rooms."""
    firsts = []
    for start in range(opts.starts):
        window_s = opts.seconds if start == opts.starts - 1 else 0.0
        out = tmp / f"ffmpeg-{codec.lower()}-{start}"
        first, span = await ffmpeg_start(ffmpeg, clip, codec, out, window_s)
        firsts.append(first)
    return _firsts(firsts) | span


# --- seats ------------------------------------------------------------------------------------


async def seat_steps(
    pid: int, signal: Signal, opts: Options, stack: contextlib.AsyncExitStack
) -> list[dict[str, Any]]:
    """CPU of ``pid`` with 0, 1, … ``opts.seats`` viewers, each past its first second."""
    viewers: list[Viewer] = []
    steps = []
    for count in range(opts.seats + 1):
        codec = "-"
        if count:
            viewers.append(new_viewer())
            stack.push_async_callback(viewers[-1].close)
            codec = video_codec(await connect(viewers[-1].pc, signal))
            await until(lambda: viewers[-1].frames["video"] >= FPS, START_TIMEOUT_S, "seat frames")
        before = [v.frames["video"] for v in viewers]
        span = await measure(pid, opts.seat_s)
        fps = [(v.frames["video"] - b) / span.wall_s for v, b in zip(viewers, before, strict=True)]
        steps.append(
            {"seats": count, "codec_out": codec, "seat_fps": [round(f, 1) for f in fps]}
            | span.record()
        )
    return steps


async def relay_seats(python: Path, clip: Path, opts: Options, tmp: Path) -> list[dict[str, Any]]:
    """Figure 2's baseline: the same publisher and viewers on ``bench/relay.py``."""
    async with contextlib.AsyncExitStack() as stack:
        relay = await RelayChild.start(python, tmp / "relay.stderr.log")
        stack.push_async_callback(relay.stop)
        publisher = clip_publisher(str(clip), "H264")
        stack.push_async_callback(publisher.close)
        await connect(publisher.pc, relay.signal("publish"))
        frames = 0
        deadline = time.perf_counter() + START_TIMEOUT_S
        while frames < FPS:  # its first second, as the server's room is past its first segment
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the relay got {frames} frames in {START_TIMEOUT_S:g} s")
            await asyncio.sleep(POLL_S)  # the poll interval; the loop asks the relay itself
            frames = await relay.frames()
        return await seat_steps(relay.pid, relay.signal("view"), opts, stack)


# --- latency ----------------------------------------------------------------------------------


@dataclass
class Latency:
    """Figures 4 and 5 of one side."""

    hls_delays_ms: list[float] = field(default_factory=list)
    hls_unreadable: int = 0
    target_s: float = 0.0
    webrtc_ms: list[float] = field(default_factory=list)
    webrtc_unreadable: int = 0
    publisher_fps: float = 0.0  # frames the WebRTC publisher made per second
    hls_source_fps: float = 0.0  # what feeds HLS: that publisher, or the pipe
    codec_out: str = "-"
    playlist_errors: list[str] = field(default_factory=list)


async def watch(
    hls: HlsSource,
    viewer: Viewer,
    tracks: tuple[StampedTrack, StampedTrack],
    codec: str,
    opts: Options,
) -> Latency:
    """Both measures at once, from the first segment on (it holds the start-up).
    ``tracks``: (the WebRTC publisher's, the one feeding HLS)."""
    await first_segment(hls, time.perf_counter(), START_TIMEOUT_S)
    wanted = FPS + opts.frames  # the first second is warm-up, and left out
    delays, _ = await asyncio.gather(
        segment_delays(hls, opts.segments, START_TIMEOUT_S + 4 * opts.segments),
        until(lambda: len(viewer.latencies_ms) >= wanted, START_TIMEOUT_S * 2, "stamped frames"),
    )
    return Latency(
        hls_delays_ms=delays.delays_ms,
        hls_unreadable=delays.unreadable,
        target_s=delays.target_s,
        webrtc_ms=viewer.latencies_ms[FPS:],
        webrtc_unreadable=viewer.unreadable,
        publisher_fps=tracks[0].fps(),
        hls_source_fps=tracks[1].fps(),
        codec_out=codec,
    )


async def server_latency(server: Server, opts: Options) -> Latency:
    async with contextlib.AsyncExitStack() as stack:
        room = await server.new_room()
        publisher = stamped_publisher()
        stack.push_async_callback(publisher.close)
        await connect(
            publisher.pc, whip_signal(server.client, room["whip_url"], room["stream_key"])
        )
        viewer = new_viewer(stamps=True, audio=False)
        stack.push_async_callback(viewer.close)
        codec = video_codec(await connect(viewer.pc, whep_signal(server.client, room["whep_url"])))
        track = publisher.stamped
        assert track is not None
        hls = HttpHls(server.client, room["hls_url"])
        latency = await watch(hls, viewer, (track, track), codec, opts)
        latency.playlist_errors = hls.errors
        return latency


async def feed_frames(track: StampedTrack, stdin: asyncio.StreamWriter) -> None:
    """Stamped frames into ffmpeg's stdin as raw yuv420p, paced as aiortc paces the track."""
    while True:
        frame = await track.recv()
        if any(p.line_size != p.width for p in frame.planes):
            raise RuntimeError("padded planes: not raw yuv420p as ffmpeg reads it")
        stdin.write(b"".join(bytes(p) for p in frame.planes))
        await stdin.drain()


async def baseline_latency(ffmpeg: str, opts: Options, tmp: Path) -> Latency:
    """Stamped frames piped into ffmpeg's HLS, and a stamped publisher straight to a viewer
    (peer to peer), at once as on the server."""
    out = tmp / "ffmpeg-pipe"
    out.mkdir()
    log = out / "stderr.log"
    async with contextlib.AsyncExitStack() as stack:
        proc = await stack.enter_async_context(ffmpeg_child(pipe_command(ffmpeg, out), log))
        assert proc.stdin is not None
        piped = StampedTrack()
        publisher = stamped_publisher()
        stack.push_async_callback(publisher.close)
        viewer = new_viewer(stamps=True, audio=False)
        stack.push_async_callback(viewer.close)
        codec = video_codec(await connect(publisher.pc, direct_signal(viewer.pc)))
        assert publisher.stamped is not None
        tracks = (publisher.stamped, piped)
        latency: Latency = await fed(
            log,
            feed_frames(piped, proc.stdin),
            watch(FileHls(out), viewer, tracks, codec, opts),
        )
        return latency


# --- the run ----------------------------------------------------------------------------------


async def run(opts: Options, ffmpeg: str, clips: dict[str, Path]) -> dict[str, Any]:
    """Every step, baseline first, in one server's life; a failed step is recorded and the
    rest go on."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    python = Path(sys.executable)
    ran: dict[str, Any] = {"errors": {}}
    with tempfile.TemporaryDirectory(prefix="lifeaccount-bench-live-") as name:
        tmp = Path(name)
        env = FAST_HASHING | {
            "LIFEACCOUNT_LIVE_SEATS": str(opts.seats),
            # No room ends (its recording then becomes a replay to transcode) during the run.
            "LIFEACCOUNT_LIVE_GRACE_S": "86400",
        }
        argv = lifeaccount_command(python, tmp / "data")
        print("lifeaccount serve: fresh data dir; steps:", flush=True)
        async with (
            ServerProcess("lifeaccount", argv, tmp, child_env(env)) as process,
            httpx.AsyncClient(base_url=f"http://{HOST}:{process.port}", timeout=30.0) as client,
        ):
            server = Server(process, client)
            await server.sign_up()
            steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("ffmpeg_h264", lambda: ffmpeg_room(ffmpeg, clips["H264"], "H264", opts, tmp)),
                ("server_h264", lambda: server_h264(server, clips["H264"], opts)),
                ("relay_seats", lambda: relay_seats(python, clips["H264"], opts, tmp)),
                ("ffmpeg_vp8", lambda: ffmpeg_room(ffmpeg, clips["VP8"], "VP8", opts, tmp)),
                ("server_vp8", lambda: server_vp8(server, clips["VP8"], opts)),
                ("baseline_latency", lambda: baseline_latency(ffmpeg, opts, tmp)),
                ("server_latency", lambda: server_latency(server, opts)),
            ]
            for step, start in steps:
                began = time.perf_counter()
                try:
                    result = await start()
                except Exception as exc:
                    ran["errors"][step] = repr(exc)
                    print(f"  {step} FAILED: {exc!r}\n{process.log_tail()}", flush=True)
                    continue
                ran[step] = asdict(result) if isinstance(result, Latency) else result
                print(f"  {step}: {time.perf_counter() - began:.0f} s", flush=True)
        log = process.stderr_path.read_text(errors="replace").splitlines()
        # An exception's last line, or a logged error.
        ran["server_log_errors"] = [
            line for line in log if re.match(r"\w+(Error|Exception): ", line) or "ERROR" in line
        ]
    return ran


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU window per room")
    parser.add_argument("--seats", type=int, default=4, help="WHEP seats, the server's cap too")
    parser.add_argument(
        "--quick", action="store_true", help="a look: 6 s windows, 2 seats, 100 frames"
    )
    a = parser.parse_args(argv)
    if a.quick:
        return Options(seconds=6.0, seats=2, frames=100, segments=2, starts=1)
    if not 2 <= a.seconds <= 300 or not 1 <= a.seats <= 16:
        parser.error("--seconds must be in [2, 300] and --seats in [1, 16]")
    return Options(seconds=a.seconds, seats=a.seats, frames=200, segments=4, starts=3)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    facts = machine()
    ffmpeg = ffmpeg_path()
    clips = {codec: live_clip(ffmpeg, codec, opts.clip_s) for codec in ("H264", "VP8")}
    try:
        with asyncio.Runner() as runner:
            version = runner.run(check_ffmpeg(ffmpeg)).version
            ran = runner.run(run(opts, ffmpeg, clips))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; the server, ffmpeg and the relay were stopped", file=sys.stderr)
        return 130
    options = asdict(opts) | {"seat_s": opts.seat_s, "clip_s": opts.clip_s}
    rows = report(options, facts, version, ran)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"live-{stamp}.json"
    record = {
        "command": " ".join(["python -m bench.live", *(argv or sys.argv[1:])]),
        "machine": facts,
        "ffmpeg": version,
        "options": options,
        "clips": {codec: clip.name for codec, clip in clips.items()},
        "figures": rows,
        "steps": ran,
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if ran["errors"] else 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
