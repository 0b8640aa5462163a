"""The room channel's fan-out against a raw ``websockets.broadcast()`` server, in one run.

    .venv/bin/python -m bench.channel            # ~2.5 min: 10 s windows
    .venv/bin/python -m bench.channel --quick    # ~70 s: 3 s windows, 5,000 viewers at most

Each server is a child process (``bench/fanout.py``): ``ours`` is the real gateway with its
default limits over a real channel, SQLite store and in-process broker; ``raw`` is plain
``websockets`` calling ``broadcast()``. A publisher inside each publishes chat events on a
fixed schedule, each stamped with the ``time.monotonic_ns()`` it was due. The same load
generator drives both: two client processes (``bench/wsload.py``) of raw asyncio protocols,
each opening half the viewers to 127.0.0.1 and saying hello. Per scenario and server, a
fresh server and clients:

- deliveries/s: messages received of the events due inside a window of ``--seconds`` after
  ``--warmup``, per second of it; beside it the offered deliveries/s (rate x viewers) and
  the share delivered, latency p50/p99 (received - due), and the CPU of the server, of the
  clients and of the rest of the machine over the window (``/proc``);
- memory per connection: the server's VmRSS with every viewer joined and idle, minus before
  any joined, over the viewers;
- a slow-consumer run: some viewers stop reading (``pause_reading``) while the others read;
  the server's RSS is sampled through the window, then the stalled viewers read again and
  say how their connection ended (ours: 4008 after what their socket held).

Every figure of ours prints beside raw's of the same run, as a ratio
(``bench/channel_report.py``). Writes ``bench/results/channel-<timestamp>.json``; exit status
1 if a viewer failed to join, or a reader saw a message out of seq order or a gap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.channel_report import report
from bench.httpload import _machine_busy_s
from bench.report import machine
from bench.wsload import SHIFT
from webapp.gateway import Limits

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
CLIENTS = 2  # load generator processes, one per core
SETTLE_S = 1.0  # after the last join, before the idle RSS is read
JOIN_TIMEOUT_S = 60.0
RSS_EVERY_S = 0.25  # the server's RSS is sampled this often through the window
LATE_S = 1.0  # after the window, for messages published in it to arrive
STOP_TIMEOUT_S = 10.0
REPLY_LIMIT = 64 << 20  # a report's latency histogram is one long line


@dataclass(frozen=True)
class Scenario:
    name: str
    viewers: int
    rate: float  # events published a second
    stall: int = 0  # viewers that stop reading after their hello
    pad: int = 0  # bytes of ASCII added to each chat line's text


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    scenarios: tuple[Scenario, ...]
    slow: Scenario


class Child:
    """A bench child process spoken to in JSON lines (``bench.fanout``, ``bench.wsload``)."""

    def __init__(self, name: str, argv: list[str], logs: Path) -> None:
        self.name, self.argv = name, argv
        self.stderr_path = logs / f"{name}.stderr.log"
        self.process: asyncio.subprocess.Process | None = None
        self.first: dict[str, Any] = {}

    async def start(self, greets: bool = False) -> None:
        with self.stderr_path.open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                limit=REPLY_LIMIT,
            )
        if greets:
            self.first = await self._line()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        return await self._line()

    async def _line(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # fields[0] is field 3 of proc(5); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_kib(self) -> int:
        """Resident memory now (VmRSS)."""
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE_KIB

    async def stop(self) -> None:
        """End of input ends it; killed if it lingers."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()


def shares(total: int, parts: int) -> list[int]:
    return [total // parts + (k < total % parts) for k in range(parts)]


@dataclass
class Cpu:
    """CPU seconds so far: the server's, the clients' together, every core's busy time."""

    server: float
    clients: float
    machine: float | None

    @classmethod
    def now(cls, server: Child, clients: list[Child]) -> Cpu:
        return cls(server.cpu_s(), sum(c.cpu_s() for c in clients), _machine_busy_s())

    def since(self, before: Cpu, wall_s: float) -> dict[str, float | None]:
        """Each as % of one core over ``wall_s``; other = the rest of the machine."""
        server, clients = self.server - before.server, self.clients - before.clients
        other = None
        if self.machine is not None and before.machine is not None:
            other = max(0.0, self.machine - before.machine - server - clients)
        return {
            "server_cpu_s": round(server, 3),
            "server_cpu_pct": round(100 * server / wall_s, 1),
            "client_cpu_pct": round(100 * clients / wall_s, 1),
            "other_cpu_pct": round(100 * other / wall_s, 1) if other is not None else None,
        }


async def sleep_until(t_ns: int) -> None:
    await asyncio.sleep(max(0.0, (t_ns - time.monotonic_ns()) / 1e9))  # the window's edge


async def joined(server: Child, viewers: int) -> None:
    async with asyncio.timeout(JOIN_TIMEOUT_S):
        while (await server.ask({"count": None}))["connections"] < viewers:
            await asyncio.sleep(0.1)  # polling the server's own count


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One group's tallies from every client process, its histogram merged."""
    hist: Counter[int] = Counter()
    closes: Counter[str] = Counter()
    keys = ("received", "due_inside", "stamped", "other", "gaps", "disorder", "open")
    merged: dict[str, Any] = {k: sum(r[k] for r in reports) for k in keys}
    for r in reports:
        hist.update({int(slot): n for slot, n in r["hist"].items()})
        closes.update(r["closes"])
    merged["closes"] = dict(closes)
    merged |= {f"p{q}_ms": percentile_ms(hist, q) for q in (50, 99, 100)}
    return merged


def percentile_ms(hist: Counter[int], q: float) -> float | None:
    """Nearest-rank percentile of a histogram of 2**SHIFT ns slots, at the slot's middle."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, -(-total * q // 100))
    seen = 0
    for slot in sorted(hist):
        seen += hist[slot]
        if seen >= rank:
            return round((slot + 0.5) * (1 << SHIFT) / 1e6, 3)
    return None


async def measure(kind: str, sc: Scenario, opts: Options, logs: Path) -> dict[str, Any]:
    """One server under one scenario, with fresh processes on both sides."""
    python = sys.executable
    tag = f"{kind}-{sc.viewers}x{sc.rate:g}" + (f"-stall{sc.stall}" if sc.stall else "")
    server = Child(tag, [python, "-m", "bench.fanout", kind], logs)
    clients = [
        Child(f"{tag}-wsload{k}", [python, "-m", "bench.wsload"], logs) for k in range(CLIENTS)
    ]
    out: dict[str, Any] = {"server": kind, "scenario": sc.name}
    try:
        await server.start(greets=True)
        for client in clients:
            await client.start()
        rss0 = server.rss_kib()
        began = time.perf_counter()
        where = {"port": server.first["port"], "path": server.first["path"]}
        opened = await asyncio.gather(
            *(
                c.ask({"open": where | {"count": n, "first": kind == "ours", "stall": s}})
                for c, n, s in zip(
                    clients, shares(sc.viewers, CLIENTS), shares(sc.stall, CLIENTS), strict=True
                )
            )
        )
        out["join_failed"] = sum(o["failed"] for o in opened)
        out["join_error"] = next((o["error"] for o in opened if o["error"]), None)
        await joined(server, sc.viewers - out["join_failed"])
        out["join_s"] = round(time.perf_counter() - began, 2)
        await asyncio.sleep(SETTLE_S)  # the joins' last messages and garbage, before RSS
        rss1 = server.rss_kib()
        out["rss_before_mib"] = round(rss0 / 1024, 1)
        out["rss_idle_mib"] = round(rss1 / 1024, 1)
        out["kib_per_connection"] = round((rss1 - rss0) / sc.viewers, 2)
        t0 = time.monotonic_ns() + int(opts.warmup * 1e9)
        t1 = t0 + int(opts.seconds * 1e9)
        for client in clients:
            await client.ask({"window": [t0, t1]})
        await server.ask({"publish": {"rate": sc.rate, "pad": sc.pad, "window": [t0, t1]}})
        await sleep_until(t0)
        cpu0, wall0 = Cpu.now(server, clients), time.perf_counter()
        samples = [server.rss_kib()]
        while time.monotonic_ns() < t1:
            await asyncio.sleep(min(RSS_EVERY_S, max(0.0, (t1 - time.monotonic_ns()) / 1e9)))
            samples.append(server.rss_kib())
        out |= Cpu.now(server, clients).since(cpu0, time.perf_counter() - wall0)
        out["published"] = await server.ask({"stop": None})
        out["rss_window_mib"] = [round(s / 1024, 1) for s in samples]
        await asyncio.sleep(LATE_S)  # messages of the window still on their way
        if sc.stall:
            for client in clients:
                await client.ask({"resume": None})
            await drained(clients)
            out["rss_after_resume_mib"] = round(server.rss_kib() / 1024, 1)
        reports = [await c.ask({"report": None}) for c in clients]
        for group in ("readers", "stalled"):
            out[group] = merge([r[group] for r in reports])
        for client in clients:
            await client.ask({"close": None})
    except Exception as exc:
        out["error"] = repr(exc)
        print(f" FAILED: {exc!r}", end="", flush=True)
    finally:
        for child in (*clients, server):
            await child.stop()
    readers = sc.viewers - sc.stall
    out["window_s"] = opts.seconds
    out["offered_per_s"] = round(sc.rate * readers, 1)
    if "readers" in out and "published" in out:
        got, due = out["readers"], out["published"]["due_inside"]
        # What the window offered and what of it arrived: a server behind at the window's
        # start (or end) is neither credited with its backlog nor charged for it.
        out["deliveries_per_s"] = round(got["due_inside"] / opts.seconds, 1)
        out["received_per_s"] = round(got["received"] / opts.seconds, 1)
        out["delivered"] = round(got["due_inside"] / (due * readers), 4) if due else None
        if got["due_inside"]:
            per = 1e6 * out["server_cpu_s"] / got["due_inside"]
            out["server_us_per_delivery"] = round(per, 2)
    return out


async def drained(clients: list[Child]) -> None:
    """Until the stalled viewers have read what their sockets held (their tallies stand
    still for a second), 20 s at most."""
    last = -1
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)  # polling the clients' own counts
        reports = [await c.ask({"report": None}) for c in clients]
        now = sum(r["stalled"]["stamped"] + r["stalled"]["open"] for r in reports)
        if now == last:
            return
        last = now


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # children inherit it
    return soft


async def run(opts: Options, logs: Path) -> dict[str, Any]:
    ran: dict[str, Any] = {"load": [], "slow": []}
    for sc in (*opts.scenarios, opts.slow):
        for kind in ("raw", "ours"):
            began = time.perf_counter()
            print(f"  {sc.name}: {kind} …", end="", flush=True)
            result = await measure(kind, sc, opts, logs)
            ran["slow" if sc is opts.slow else "load"].append(result)
            print(f" {time.perf_counter() - began:.0f} s", flush=True)
    return ran


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.channel", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="publishing before it")
    parser.add_argument(
        "--quick", action="store_true", help="a look: 3 s windows, 5,000 viewers at most"
    )
    a = parser.parse_args(argv)
    if not a.quick and (not 1 <= a.seconds <= 60 or not 0 <= a.warmup <= 10):
        parser.error("--seconds must be in [1, 60] and --warmup in [0, 10]")
    big, fast = (5_000, 100.0) if a.quick else (10_000, 50.0)
    scenarios = (
        Scenario("1,000 viewers × 100 msg/s", 1_000, 100.0),
        Scenario(f"{big:,} viewers × 10 msg/s", big, 10.0),
        # 500,000 deliveries/s: past what one core writes a message at a time (raw's ~100,000),
        # so what a server delivers is what its batching makes of it.
        Scenario(f"{big:,} viewers × {fast:g} msg/s", big, fast),
    )
    # 16 KB events: the ~4 MB a stalled socket's kernel buffers hold on loopback fill in
    # seconds, so the servers' own buffering shows within the window.
    slow = Scenario("120 viewers × 100 msg/s, 20 stall", 120, 100.0, stall=20, pad=16_000)
    if a.quick:
        return Options(3.0, 1.0, scenarios, slow)
    return Options(a.seconds, a.warmup, scenarios, slow)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    raise_fd_limit(4 * max(s.viewers for s in opts.scenarios) + 1024)
    facts = machine()
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = RESULTS / f"channel-{stamp}-logs"
    logs.mkdir()
    try:
        ran = asyncio.run(run(opts, logs))
    except KeyboardInterrupt:
        print("interrupted; the servers and clients were stopped", file=sys.stderr)
        return 130
    record = {
        "command": " ".join(["python -m bench.channel", *(argv or sys.argv[1:])]),
        "machine": facts,
        "versions": {d: metadata.version(d) for d in ("websockets", "uvloop", "orjson")},
        "gateway_limits": asdict(Limits()),  # ours runs with these, the defaults
        "options": asdict(opts),
        "runs": ran,
    }
    failed = report(record)
    path = RESULTS / f"channel-{stamp}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 1 if failed else 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
