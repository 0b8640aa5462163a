"""The video pipeline's overhead over plain ffmpeg, and upload-to-ready time through the API.

    .venv/bin/python -m bench.transcode [--seconds 20] [--runs 3]

Makes (once, cached in ``bench/results/clips/``) a 1080p 30 fps testsrc2 clip with a tone,
H.264 at 8 Mb/s + AAC, ``--seconds`` long. Then, ``--runs`` times, in ABBA order so drift
falls on both sides evenly:

* pipeline: ``probe()`` + ``Transcoder.run()`` into a fresh temporary dir, with a progress
  callback, exactly as the media worker calls them (default ``EncodeSettings``);
* baseline: the very argv ``Transcoder.commands()`` returns, run by hand with ``subprocess``
  one after the other, output to ``/dev/null`` instead of a pipe that is read.

Wall time is ``perf_counter``; CPU time is this process's own user+sys plus its waited-for
children's (``getrusage``), so ffmpeg's threads and the probe child are all counted. The
baseline has no probe; the probe is also reported alone and the pipeline without it.

Last, time-to-ready: the real ``lifeaccount serve`` on 127.0.0.1 port 0 in a fresh data dir,
one sign-up, the clip uploaded through tus (one PATCH), a video content created and
published, and ``GET /api/v1/contents/{id}`` polled until the media is ready and the content
published. Printed as a table beside the baseline's median; JSON goes to
``bench/results/transcode-<timestamp>.json``. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.httpload import _machine_busy_s
from bench.report import machine, machine_line
from bench.servers import FAST_HASHING, HOST, ServerProcess, child_env, lifeaccount_command
from media.ffmpeg import EncodeSettings
from media.probe import ProbeResult, probe
from media.tools import check_ffmpeg, ffmpeg_path
from media.transcode import HLS_DIR, Transcoder

RESULTS = Path(__file__).resolve().parent / "results"
CLIPS = RESULTS / "clips"
PASSWORD = "bench correct horse battery"
TUS = {"Tus-Resumable": "1.0.0"}
CLIP_VIDEO_KBPS = 8000  # a phone's 1080p30 is 8-17 Mb/s; the low end, to keep the clip small
POLL_S = 0.1  # the time-to-ready figure is as fine as this
SETUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Options:
    seconds: float
    runs: int


@dataclass
class Usage:
    """Wall and CPU seconds of one measured span."""

    wall_s: float = 0.0
    self_cpu_s: float = 0.0
    children_cpu_s: float = 0.0
    machine_busy_s: float | None = None
    steps_s: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.self_cpu_s + self.children_cpu_s

    @property
    def other_cpu_s(self) -> float | None:
        if self.machine_busy_s is None:
            return None
        return max(0.0, self.machine_busy_s - self.cpu_s)


class Meter:
    """Marks a span: ``Meter()`` starts it, ``.stop()`` returns its :class:`Usage`."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.self0 = _cpu(resource.RUSAGE_SELF)
        self.children0 = _cpu(resource.RUSAGE_CHILDREN)
        self.busy0 = _machine_busy_s()

    def stop(self) -> Usage:
        wall = time.perf_counter() - self.wall0
        busy1 = _machine_busy_s()
        return Usage(
            wall_s=wall,
            self_cpu_s=_cpu(resource.RUSAGE_SELF) - self.self0,
            children_cpu_s=_cpu(resource.RUSAGE_CHILDREN) - self.children0,
            machine_busy_s=busy1 - self.busy0
            if busy1 is not None and self.busy0 is not None
            else None,
        )


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# --- the clip ---------------------------------------------------------------------------------


def clip(seconds: float) -> Path:
    """The source clip, made once per length: moving testsrc2 + a tone, as a phone's MP4."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    path = CLIPS / f"testsrc2-1080p30-{seconds:g}s-{CLIP_VIDEO_KBPS}k.mp4"
    if path.exists():
        return path
    print(f"making the clip {path.name} (once) ...", flush=True)
    partial = path.with_name(f"partial-{path.name}")
    kbps = CLIP_VIDEO_KBPS
    argv = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds:g}"]
    argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds:g}"]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60"]
    argv += ["-b:v", f"{kbps}k", "-maxrate", f"{kbps * 5 // 4}k", "-bufsize", f"{kbps * 2}k"]
    argv += ["-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart"]
    argv += ["-f", "mp4", str(partial)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60 + 10 * seconds)
    partial.rename(path)
    return path


# --- pipeline and baseline --------------------------------------------------------------------


async def pipeline_once(source: Path) -> tuple[Usage, Usage, ProbeResult, Transcoder]:
    """``probe`` + ``Transcoder.run``; (whole span, probe alone, the probe, the transcoder)."""
    with tempfile.TemporaryDirectory(prefix="lifeaccount-bench-tc-") as tmp:
        updates = 0

        async def on_progress(_: float) -> None:
            nonlocal updates
            updates += 1

        whole = Meter()
        probed = await probe(source)
        probe_usage = whole.stop()
        transcoder = Transcoder(source, probed, Path(tmp) / "out", settings=EncodeSettings())
        result = await transcoder.run(on_progress)
        usage = whole.stop()
        usage.steps_s = dict(result.step_elapsed_s)
        if not result.master_playlist.is_file() or updates == 0:
            raise RuntimeError("the pipeline wrote no playlist or reported no progress")
    return usage, probe_usage, probed, transcoder


def baseline_once(source: Path, probed: ProbeResult) -> tuple[Usage, dict[str, list[str]]]:
    """The same argv, by hand: ``subprocess.run`` each in order, nothing read but errors."""
    with tempfile.TemporaryDirectory(prefix="lifeaccount-bench-tc-") as tmp:
        # Only to get the argv: the same constructor call the pipeline makes, never run.
        transcoder = Transcoder(source, probed, Path(tmp) / "out", settings=EncodeSettings())
        commands = transcoder.commands()
        (transcoder.partial_dir / HLS_DIR).mkdir(parents=True)
        steps: dict[str, float] = {}
        whole = Meter()
        for name, argv in commands.items():
            began = time.perf_counter()
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=120 + 20 * probed.duration_s,  # the pipeline's own bound
            )
            if done.returncode != 0:
                tail = done.stderr.decode(errors="replace")[-2000:]
                raise RuntimeError(f"baseline {name} failed ({done.returncode}):\n{tail}")
            steps[name] = round(time.perf_counter() - began, 3)
        usage = whole.stop()
        usage.steps_s = steps
    return usage, commands


def _same_shape(a: dict[str, list[str]], b: dict[str, list[str]], a_dir: str, b_dir: str) -> bool:
    """The two runs' argv are equal once their temporary dirs are named alike."""
    return {k: [s.replace(a_dir, "D") for s in v] for k, v in a.items()} == {
        k: [s.replace(b_dir, "D") for s in v] for k, v in b.items()
    }


async def compare(source: Path, runs: int) -> dict[str, Any]:
    pipeline: list[Usage] = []
    probes: list[Usage] = []
    baseline: list[Usage] = []
    probed: ProbeResult | None = None
    order: list[str] = []
    argv_checked = False
    for k in range(runs):
        pair = ("baseline", "pipeline") if k % 2 == 0 else ("pipeline", "baseline")
        for which in pair:
            if which == "baseline" and probed is None:
                probed = await probe(source)  # unmeasured: the baseline needs the ladder
            print(f"  run {k + 1}/{runs}: {which} ...", flush=True)
            if which == "pipeline":
                usage, probe_usage, probed, transcoder = await pipeline_once(source)
                pipeline.append(usage)
                probes.append(probe_usage)
                pipe_cmds = transcoder.commands()
                pipe_dir = str(transcoder.partial_dir.parent)
            else:
                assert probed is not None
                usage, base_cmds = baseline_once(source, probed)
                baseline.append(usage)
                base_dir = str(Path(base_cmds["mp4"][-1]).parent.parent)
            order.append(which)
            print(
                f"    wall {usage.wall_s:.2f} s, CPU {usage.cpu_s:.2f} s, steps {usage.steps_s}",
                flush=True,
            )
        if not argv_checked:
            if not _same_shape(pipe_cmds, base_cmds, pipe_dir, base_dir):
                raise RuntimeError("the baseline's argv differ from the pipeline's")
            argv_checked = True
    assert probed is not None
    return {
        "probed": probed,
        "pipeline": pipeline,
        "probe": probes,
        "baseline": baseline,
        "order": order,
        "commands": pipe_cmds,
        "commands_dir": pipe_dir,
    }


# --- time to ready through the API ------------------------------------------------------------


async def time_to_ready(source: Path, duration_s: float) -> dict[str, Any]:
    python = Path(sys.executable)
    data = source.read_bytes()
    with tempfile.TemporaryDirectory(prefix="lifeaccount-bench-") as tmp:
        logs = Path(tmp)
        print("lifeaccount serve: fresh data dir, its own media worker", flush=True)
        async with ServerProcess(
            "lifeaccount", lifeaccount_command(python, logs / "data"), logs, child_env(FAST_HASHING)
        ) as server:
            base = f"http://{HOST}:{server.port}"
            async with httpx.AsyncClient(base_url=base, timeout=SETUP_TIMEOUT_S) as client:
                return await _through_api(client, server, data, duration_s)


def _server_cpu(server: ServerProcess) -> tuple[float, float]:
    """(the server's own CPU, its waited-for children's: ffmpeg and the probe), Linux /proc."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    # proc(5) fields 14-17: utime, stime, cutime, cstime (fields[0] is field 3).
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


async def _through_api(
    client: httpx.AsyncClient, server: ServerProcess, data: bytes, duration_s: float
) -> dict[str, Any]:
    def check(r: httpx.Response, status: int, what: str) -> httpx.Response:
        if r.status_code != status:
            raise RuntimeError(
                f"{what} answered {r.status_code}: {r.text[:500]}\n{server.log_tail()}"
            )
        return r

    signup = await client.post(
        "/api/v1/signup",
        json={
            "email": "owner@bench.example",
            "password": PASSWORD,
            "account": {"name": "Bench Brand", "handle": "bench-brand"},
        },
    )
    done = check(signup, 201, "sign-up").json()
    account_id = done["account"]["id"]
    key = {"Authorization": f"Bearer {done['api_key']}"}

    upload_began = time.perf_counter()
    made = check(
        await client.post(
            "/api/v1/uploads", headers={**key, **TUS, "Upload-Length": str(len(data))}
        ),
        201,
        "tus create",
    )
    location = made.headers["location"]
    patch_headers = {
        **key,
        **TUS,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    check(await client.patch(location, content=data, headers=patch_headers), 204, "tus PATCH")
    upload_s = time.perf_counter() - upload_began

    cpu0 = _server_cpu(server)
    began = time.perf_counter()
    created = check(
        await client.post(
            f"/api/v1/accounts/{account_id}/contents",
            json={"kind": "video", "title": "Bench clip", "upload_id": location.rsplit("/", 1)[-1]},
            headers=key,
        ),
        201,
        "create content",
    )
    url = f"/api/v1/contents/{created.json()['id']}"
    published = await client.post(f"{url}/publish", json={}, headers=key)
    if not published.is_success:
        check(published, 200, "publish")
    deadline = began + 120.0 + 20.0 * duration_s + 30.0  # the worker's own bound, and some
    body: dict[str, Any] = {}
    polls = 0
    while time.perf_counter() < deadline:
        body = check(await client.get(url, headers=key), 200, "poll").json()
        polls += 1
        if body["media"]["state"] != "processing" or polls > 100_000:
            break
        await asyncio.sleep(POLL_S)  # polling the state the API shows, as a client would
    ready_s = time.perf_counter() - began
    cpu1 = _server_cpu(server)
    ok = body.get("status") == "published" and body.get("media", {}).get("state") == "ready"
    if not ok:
        raise RuntimeError(f"the video never got ready: {body}\n{server.log_tail()}")
    return {
        "upload_bytes": len(data),
        "upload_s": round(upload_s, 3),
        "ready_s": round(ready_s, 3),
        "polls": polls,
        "poll_interval_s": POLL_S,
        "server_cpu_s": round(cpu1[0] - cpu0[0], 3),
        "server_children_cpu_s": round(cpu1[1] - cpu0[1], 3),
        "renditions": body["media"].get("renditions"),
    }


# --- report -----------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarize(usages: list[Usage]) -> dict[str, Any]:
    others = [u.other_cpu_s for u in usages if u.other_cpu_s is not None]
    steps = sorted({s for u in usages for s in u.steps_s})
    return {
        "wall_s": round(_median([u.wall_s for u in usages]), 3),
        "cpu_s": round(_median([u.cpu_s for u in usages]), 3),
        "self_cpu_s": round(_median([u.self_cpu_s for u in usages]), 3),
        "children_cpu_s": round(_median([u.children_cpu_s for u in usages]), 3),
        "other_cpu_s": round(_median(others), 3) if others else None,
        "steps_s": {s: round(_median([u.steps_s.get(s, 0.0) for u in usages]), 3) for s in steps},
        "runs": [
            {
                "wall_s": round(u.wall_s, 3),
                "cpu_s": round(u.cpu_s, 3),
                "self_cpu_s": round(u.self_cpu_s, 3),
                "children_cpu_s": round(u.children_cpu_s, 3),
                "other_cpu_s": round(u.other_cpu_s, 3) if u.other_cpu_s is not None else None,
                "steps_s": u.steps_s,
            }
            for u in usages
        ],
    }


def _without(whole: list[Usage], part: list[Usage]) -> list[Usage]:
    """Each run's span minus its probe: the transcode alone, as the baseline measures it."""
    return [
        Usage(
            wall_s=w.wall_s - p.wall_s,
            self_cpu_s=w.self_cpu_s - p.self_cpu_s,
            children_cpu_s=w.children_cpu_s - p.children_cpu_s,
            machine_busy_s=w.machine_busy_s - p.machine_busy_s
            if w.machine_busy_s is not None and p.machine_busy_s is not None
            else None,
            steps_s=w.steps_s,
        )
        for w, p in zip(whole, part, strict=True)
    ]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def _row(name: str, s: dict[str, Any], base: dict[str, Any]) -> str:
    wall_x = _ratio(s["wall_s"], base["wall_s"])
    cpu_x = _ratio(s["cpu_s"], base["cpu_s"])
    other = "-" if s.get("other_cpu_s") is None else f"{s['other_cpu_s']:.2f}"
    return (
        f"{name:<30} {s['wall_s']:>8.2f} {_x(wall_x)} {s['cpu_s']:>8.2f} {_x(cpu_x)} "
        f"{s['self_cpu_s']:>9.2f} {other:>9}"
    )


def _x(value: float | None) -> str:
    return f"{value:>7.3f}×" if value is not None else f"{'-':>8}"


def report(
    opts: Options, facts: dict[str, Any], ffmpeg: str, source: Path, ran: dict[str, Any]
) -> dict[str, Any]:
    probed: ProbeResult = ran["probed"]
    base = summarize(ran["baseline"])
    pipe = summarize(ran["pipeline"])
    alone = summarize(ran["probe"])
    run_only = summarize(_without(ran["pipeline"], ran["probe"]))
    ready = ran["ready"]
    ladder = Transcoder(source, probed, source.parent / "unused").ladder
    settings = EncodeSettings()
    print()
    print(machine_line(facts))
    print(f"ffmpeg:  {ffmpeg}")
    print(
        f"clip:    {probed.width}x{probed.height} {probed.fps:g} fps, {probed.duration_s:.1f} s, "
        f"{probed.video_codec} ~{CLIP_VIDEO_KBPS // 1000} Mb/s + {probed.audio_codec}, "
        f"{source.stat().st_size / 1e6:.1f} MB (testsrc2 + sine, made with lavfi)"
    )
    print(
        f"encode:  ladder {', '.join(r.name for r in ladder)} in one ffmpeg run, preset "
        f"{settings.preset}, {settings.threads} threads, {settings.segment_s} s segments; "
        f"then MP4 remux and poster"
    )
    print(
        f"runs:    {opts.runs} of each, order {' '.join(o[0].upper() for o in ran['order'])} "
        "(B baseline, P pipeline); medians"
    )
    print()
    head = (
        f"{'measure':<30} {'wall s':>8} {'× base':>8} {'CPU s':>8} {'× base':>8} "
        f"{'self CPU':>9} {'other CPU':>9}"
    )
    print(head)
    print("-" * len(head))
    print(_row("baseline: argv by hand", base, base))
    print(_row("pipeline: probe + run", pipe, base))
    print(_row("pipeline: run only", run_only, base))
    print(_row("probe alone", alone, base))
    ready_row = {
        "wall_s": ready["ready_s"],
        "cpu_s": ready["server_cpu_s"] + ready["server_children_cpu_s"],
        "self_cpu_s": ready["server_cpu_s"],
        "other_cpu_s": None,
    }
    print(_row("API: create → published+ready", ready_row, base))
    print()
    print(
        "steps (median wall s): baseline "
        + ", ".join(f"{k} {v:.2f}" for k, v in base["steps_s"].items())
        + "; pipeline "
        + ", ".join(f"{k} {v:.2f}" for k, v in pipe["steps_s"].items())
    )
    print(
        f"upload:  {ready['upload_bytes'] / 1e6:.1f} MB through tus in one PATCH: "
        f"{ready['upload_s']:.2f} s (not in time-to-ready); ready polled every {POLL_S:g} s"
    )
    print(
        "CPU: user+sys seconds of this process and its children (ffmpeg, probe); self = this "
        "process alone (for the API row: the server process, children = its ffmpeg and probe); "
        "other = the rest of the machine over the same span."
    )
    print(
        "× base: against the baseline's median, which has no probe; the target is "
        "pipeline/baseline ≤ 1.05."
    )
    for name, s in (("baseline", base), ("pipeline", pipe)):
        if s["other_cpu_s"] is not None and s["other_cpu_s"] >= 0.2 * s["wall_s"]:
            share = 100 * s["other_cpu_s"] / s["wall_s"]
            print(f"note: other processes used {share:.0f}% of a core during the {name} runs")
    record_ready = ready | {
        "ready_vs_baseline_wall": _ratio(ready["ready_s"], base["wall_s"]),
    }
    return {
        "command": " ".join(["python -m bench.transcode", *sys.argv[1:]]),
        "machine": facts,
        "ffmpeg": ffmpeg,
        "options": asdict(opts),
        "clip": {
            "file": source.name,
            "bytes": source.stat().st_size,
            "probe": probed.to_dict(),
            "video_kbps_target": CLIP_VIDEO_KBPS,
        },
        "encode_settings": asdict(settings),
        "ladder": [r.name for r in ladder],
        "order": ran["order"],
        "commands": {
            k: [s.replace(ran["commands_dir"], "<tmp>") for s in v]
            for k, v in ran["commands"].items()
        },
        "baseline": base,
        "pipeline": pipe
        | {
            "wall_vs_baseline": _ratio(pipe["wall_s"], base["wall_s"]),
            "cpu_vs_baseline": _ratio(pipe["cpu_s"], base["cpu_s"]),
        },
        "pipeline_run_only": run_only
        | {
            "wall_vs_baseline": _ratio(run_only["wall_s"], base["wall_s"]),
            "cpu_vs_baseline": _ratio(run_only["cpu_s"], base["cpu_s"]),
        },
        "probe": alone,
        "time_to_ready": record_ready,
    }


# --- main -------------------------------------------------------------------------------------


async def run(opts: Options, source: Path) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    print(f"pipeline vs baseline, {opts.runs} runs each", flush=True)
    ran = await compare(source, opts.runs)
    ran["ready"] = await time_to_ready(source, ran["probed"].duration_s)
    return ran


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.transcode", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the clip")
    parser.add_argument("--runs", type=int, default=3, help="pipeline and baseline runs each")
    a = parser.parse_args(argv)
    if not 0 < a.seconds <= 600 or not 1 <= a.runs <= 50:
        parser.error("--seconds must be in (0, 600] and --runs in [1, 50]")
    return Options(a.seconds, a.runs)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    facts = machine()
    source = clip(opts.seconds)
    try:
        with asyncio.Runner() as runner:
            ffmpeg = runner.run(check_ffmpeg()).version
            ran = runner.run(run(opts, source))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; the server and ffmpeg were stopped", file=sys.stderr)
        return 130
    out = report(opts, facts, ffmpeg, source, ran)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"transcode-{stamp}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
