"""CPU of a process tree over a window, from Linux ``/proc``, with the machine's other load.

A live room's CPU is the server process's and its ffmpeg child's: the child runs for the
whole window, so it is read from its own ``/proc/<pid>/stat`` (a parent's ``cutime`` counts
only children that ended and were waited for); one that ended is in ``cutime`` instead.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.httpload import _machine_busy_s

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # The fields after the command name: [0] is field 3 of proc(5), so the parent's pid
    # (field 4) is [1] and utime, stime, cutime, cstime (fields 14-17) are [11:15].
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu_s(pid: int) -> float:
    """User+sys CPU seconds of ``pid``, its ended children and its running ones."""
    ticks = sum(int(f) for f in _stat(pid)[11:15])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except OSError:  # it ended while we looked
            continue
        if int(fields[1]) == pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / TICK


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Span:
    """One window: the measured tree's CPU, this process's (the bench's publisher and
    viewers), and the rest of the machine's (other load that would skew the figures)."""

    wall_s: float
    cpu_s: float
    bench_cpu_s: float
    other_cpu_s: float | None

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s

    def record(self) -> dict[str, Any]:
        fields = {k: round(v, 3) if v is not None else None for k, v in asdict(self).items()}
        return fields | {"cores": round(self.cores, 3)}


async def measure(pid: int, seconds: float) -> Span:
    """CPU of ``pid``'s tree over the next ``seconds``."""
    cpu0, own0, busy0 = tree_cpu_s(pid), _own_cpu_s(), _machine_busy_s()
    wall0 = time.perf_counter()
    await asyncio.sleep(seconds)  # the window itself
    cpu1, own1, busy1 = tree_cpu_s(pid), _own_cpu_s(), _machine_busy_s()
    wall = time.perf_counter() - wall0
    cpu, own = cpu1 - cpu0, own1 - own0
    other = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - cpu - own)
    return Span(wall, cpu, own, other)
