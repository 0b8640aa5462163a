"""The printed table and the JSON record of one ``bench.api`` or ``bench.reads`` run, with the
machine's facts."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.httpload import LoadResult
from bench.servers import FAST_HASHING


@dataclass
class Measured:
    name: str
    result: LoadResult
    warmup_errors: int


def figures(m: Measured, base_rps: float, base_p99: float) -> dict[str, Any]:
    r = m.result

    def pct(cpu_s: float | None) -> float | None:
        return round(100 * cpu_s / r.seconds, 1) if cpu_s is not None and r.seconds else None

    other = None
    if r.machine_busy_s is not None:
        other = max(0.0, r.machine_busy_s - r.client_cpu_s - (r.server_cpu_s or 0.0))
    return {
        "name": m.name,
        "requests": r.requests,
        "seconds": round(r.seconds, 3),
        "rps": round(r.rps, 1),
        "rps_vs_baseline": round(r.rps / base_rps, 4) if base_rps else None,
        "p50_ms": round(r.ms(50), 3),
        "p90_ms": round(r.ms(90), 3),
        "p99_ms": round(r.ms(99), 3),
        "p99_vs_baseline": round(r.ms(99) / base_p99, 3) if base_p99 else None,
        "max_ms": round(r.ms(100), 3),
        "errors": r.errors,
        "warmup_errors": m.warmup_errors,
        "statuses": dict(r.statuses),
        "error_sample": r.error_sample or None,
        "client_cpu_pct": pct(r.client_cpu_s),
        "server_cpu_pct": pct(r.server_cpu_s),
        "other_cpu_pct": pct(other),
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("uvicorn", "uvloop", "httptools", "starlette", "pydantic"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": versions,
    }


def machine_line(facts: dict[str, Any]) -> str:
    """The machine of :func:`machine`, in one line for a report."""
    return (
        f"machine: {facts['cores']} cores ({facts['usable_cores']} usable), {facts['cpu_model']}; "
        f"{facts['python']}; {facts['platform']}"
    )


def _cpu(value: float | None) -> str:
    return f"{value:>9.0f}%" if value is not None else f"{'-':>10}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'scenario':<18} {'requests':>8} {'req/s':>7} {'× base':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'p99 × base':>10} {'errors':>6} "
        f"{'client CPU':>10} {'server CPU':>10} {'other CPU':>10}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"{row['name']:<18} {row['requests']:>8} {row['rps']:>7.0f} "
            f"{row['rps_vs_baseline']:>6.3f}× {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} "
            f"{row['p99_vs_baseline']:>9.2f}× {row['errors']:>6} "
            f"{_cpu(row['client_cpu_pct'])} {_cpu(row['server_cpu_pct'])} "
            f"{_cpu(row['other_cpu_pct'])}"
        )
    return "\n".join(lines)


def report(opts: dict[str, Any], facts: dict[str, Any], ran: dict[str, Any]) -> dict[str, Any]:
    """Print the run and return its JSON record."""
    first, last = (m.result for m in ran["baselines"])
    # The reference is the mean of the two baseline runs around the real server's.
    base_rps = (first.rps + last.rps) / 2
    base_p99 = (first.ms(99) + last.ms(99)) / 2
    rows = [figures(m, base_rps, base_p99) for m in [*ran["baselines"], *ran["scenarios"]]]
    v = facts["versions"]
    print()
    print(
        f"machine: {facts['cores']} cores ({facts['usable_cores']} usable), {facts['cpu_model']}; "
        f"{facts['python']}; {facts['platform']}"
    )
    print(
        f"server:  1 uvicorn process, uvloop {v['uvloop']} + httptools {v['httptools']}, "
        f"uvicorn {v['uvicorn']}, access log on (as `lifeaccount serve`)"
    )
    print(
        f"load:    {opts['concurrency']} keep-alive connections, {opts['seconds']:g} s per "
        f"scenario after {opts['warmup']:g} s warm-up; client in this process (uvloop); "
        f"{opts['fans']} fans" + (f", {opts['contents']} contents" if "contents" in opts else "")
    )
    print()
    print(table(rows))
    print()
    print(
        f"× base: against the mean of the two baseline runs ({base_rps:.0f} req/s, "
        f"p99 {base_p99:.2f} ms); they differ by {100 * abs(last.rps / first.rps - 1):.0f}% "
        "in req/s."
    )
    print(
        "CPU: % of one core over the measured seconds; server counts all its threads; "
        "other = the rest of the machine."
    )
    checks = {name: c | {"ok": c["got"] == c["expected"]} for name, c in ran["checks"].items()}
    for name, c in checks.items():
        print(
            f"check:   {name} = {c['got']} (expected {c['expected']}) "
            f"{'ok' if c['ok'] else 'MISMATCH'}"
        )
    for row in rows:
        if row["errors"] or row["warmup_errors"]:
            print(
                f"ERRORS in {row['name']}: {row['errors']} (+{row['warmup_errors']} in warm-up); "
                f"statuses {row['statuses']}; first: {row['error_sample']}"
            )
        if (row["client_cpu_pct"] or 0) >= 90:
            print(f"note: the client was near one core in {row['name']}; its figure is a floor")
        if (row["other_cpu_pct"] or 0) >= 20:
            print(f"note: other processes used {row['other_cpu_pct']:.0f}% during {row['name']}")
    return {
        "command": " ".join([f"python -m {ran['module']}", *sys.argv[1:]]),
        "machine": facts,
        "options": opts,
        "setup": ran["setup"]
        | {"hashing_env_for_signup_only": FAST_HASHING, "access_log": "on (uvicorn default)"},
        "baseline": {"rps": round(base_rps, 1), "p99_ms": round(base_p99, 3), "runs": rows[:2]},
        "scenarios": rows[2:],
        "checks": checks,
    }
