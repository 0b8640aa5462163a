"""The figures of one ``bench.channel`` run, ours beside raw ``broadcast()``, printed."""

from __future__ import annotations

from typing import Any

from bench.report import machine_line

THROUGHPUT_TARGET = 1.0  # ours/raw deliveries/s, at a p99 no worse than raw's…
BATCHING_TARGET = 4.0  # …and with batching, at the largest room
BUSY_PCT = 90.0  # a process at or above this % of a core was the limit
MACHINE_PCT = 180.0  # the processes together at or above this % of the 2 cores: the machine


def _ratio(ours: float | None, raw: float | None) -> float | None:
    return round(ours / raw, 3) if ours is not None and raw else None


def _f(value: float | None, spec: str, width: int) -> str:
    return f"{value:>{width}{spec}}" if value is not None else f"{'-':>{width}}"


def pairs(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(scenario, raw's row, ours) in the order they ran."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["scenario"], {})[row["server"]] = row
    return [(name, kinds["raw"], kinds["ours"]) for name, kinds in found.items()]


def limit(row: dict[str, Any]) -> str:
    """What ran out, as far as the window's CPU shows."""
    server = row.get("server_cpu_pct") or 0.0
    clients = row.get("client_cpu_pct") or 0.0
    other = row.get("other_cpu_pct") or 0.0
    if server >= BUSY_PCT:
        return f"server CPU ({server:.0f}% of its one core)"
    if server + clients + other >= MACHINE_PCT:
        return (
            f"the machine's 2 cores (server {server:.0f}% + clients {clients:.0f}% + "
            f"other {other:.0f}%)"
        )
    return "no CPU limit seen"


def load_table(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        f"{'scenario':<26} {'server':<6} {'deliv/s':>9} {'× raw':>6} {'offered/s':>9} "
        f"{'got':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99 raw/ours':>12} {'KiB/conn':>8} "
        f"{'server CPU':>10} {'µs/deliv':>8} {'clients CPU':>11} {'other':>6}"
    )
    lines = [head, "-" * len(head)]
    for scenario, raw, ours in pairs(rows):
        for row in (raw, ours):
            got = row.get("readers", {})
            ratio = _ratio(row.get("deliveries_per_s"), raw.get("deliveries_per_s"))
            p99_ratio = _ratio(raw.get("readers", {}).get("p99_ms"), got.get("p99_ms"))
            delivered = row.get("delivered")
            lines.append(
                f"{scenario if row is raw else '':<26} {row['server']:<6} "
                f"{_f(row.get('deliveries_per_s'), ',.0f', 9)} {_f(ratio, '.2f', 5)}× "
                f"{row['offered_per_s']:>9,.0f} "
                f"{_f(100 * delivered if delivered is not None else None, '.1f', 5)}% "
                f"{_f(got.get('p50_ms'), '.2f', 7)} {_f(got.get('p99_ms'), '.2f', 7)} "
                f"{_f(p99_ratio, '.2f', 11)}× {_f(row.get('kib_per_connection'), '.1f', 8)} "
                f"{_f(row.get('server_cpu_pct'), '.0f', 9)}% "
                f"{_f(row.get('server_us_per_delivery'), '.2f', 8)} "
                f"{_f(row.get('client_cpu_pct'), '.0f', 10)}% "
                f"{_f(row.get('other_cpu_pct'), '.0f', 5)}%"
            )
    return lines


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """Each target, met or not, and what limited a side that fell short."""
    lines = []
    scenarios = pairs(rows)
    for scenario, raw, ours in scenarios[:2]:
        ratio = _ratio(ours.get("deliveries_per_s"), raw.get("deliveries_per_s"))
        p99_ours, p99_raw = (
            ours.get("readers", {}).get("p99_ms"),
            raw.get("readers", {}).get("p99_ms"),
        )
        met = (
            ratio is not None
            and p99_ours is not None
            and p99_raw is not None
            and ratio >= THROUGHPUT_TARGET
            and p99_ours <= p99_raw
        )
        lines.append(
            f"target ≥ {THROUGHPUT_TARGET:g}× raw at an equal or better p99, {scenario}: "
            f"{_f(ratio, '.2f', 0)}×, p99 {_f(p99_ours, '.1f', 0)} ms vs raw "
            f"{_f(p99_raw, '.1f', 0)} ms: {'met' if met else 'NOT met'}"
        )
        lines.append(f"  CPU: ours: {limit(ours)}; raw: {limit(raw)}")
    if len(scenarios) > 2:
        scenario, raw, ours = scenarios[2]
        ratio = _ratio(ours.get("deliveries_per_s"), raw.get("deliveries_per_s"))
        met = ratio is not None and ratio >= BATCHING_TARGET
        lines.append(
            f"target ≥ {BATCHING_TARGET:g}× raw with batching, {scenario}: "
            f"{_f(ratio, '.2f', 0)}×: {'met' if met else 'NOT met'}"
        )
        lines.append(f"  CPU: ours: {limit(ours)}; raw: {limit(raw)}")
    return lines


def slow_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        if "error" in row or "stalled" not in row:
            lines.append(f"{row['server']:<5} FAILED: {row.get('error')}")
            continue
        rss, idle = row["rss_window_mib"], row["rss_idle_mib"]
        stalled, readers = row["stalled"], row["readers"]
        ended = ", ".join(f"{n} with {code}" for code, n in sorted(stalled["closes"].items()))
        lines.append(
            f"{row['server']:<5} server RSS: {idle:.0f} MiB idle, peak {max(rss):.0f} "
            f"(+{max(rss) - idle:.0f}), end of window {rss[-1]:.0f} (+{rss[-1] - idle:.0f}); "
            f"readers {row['deliveries_per_s']:,.0f} deliveries/s "
            f"({100 * row['delivered']:.1f}% of what was due), p99 "
            f"{_f(readers['p99_ms'], '.1f', 0)} ms; stalled, reading again: "
            f"{ended or 'none closed'}, {stalled['open']} still open"
        )
        lines.append(f"      RSS through the window (MiB): {' '.join(f'{m:.0f}' for m in rss)}")
    return lines


def report(record: dict[str, Any]) -> bool:
    """Print the run; whether anything failed (a join, seq order, a reader's message)."""
    runs, opts = record["runs"], record["options"]
    load = runs["load"]
    sizes = sorted({r["published"]["size"] for r in load if "published" in r})
    print()
    print(machine_line(record["machine"]))
    print(
        f"window: {opts['seconds']:g} s after {opts['warmup']:g} s of publishing; chat events "
        f"of {'/'.join(map(str, sizes))} bytes; 2 client processes; servers and clients on "
        f"uvloop; websockets {record['versions']['websockets']}; 127.0.0.1"
    )
    limits = record["gateway_limits"]
    print(
        f"ours: the gateway's default limits: rounds of writes {1000 * limits['tick_s']:g} ms "
        f"apart at least, a backlog of {limits['max_events']:,} events or "
        f"{limits['max_bytes'] / (1 << 20):g} MiB per connection"
    )
    print()
    print("\n".join(load_table(load)))
    print()
    print(
        "deliv/s: messages received of the events due in the window, per second of it; got: "
        "that, of every viewer getting every one; p50/p99: of the messages received in the "
        "window, received - due; µs/deliv: server CPU per delivery; CPU: % of one core "
        "(clients: both processes); KiB/conn: server RSS with every viewer joined and idle, "
        "minus before, per viewer."
    )
    for line in targets(load):
        print(line)
    slow = opts["slow"]
    size = next((r["published"]["size"] for r in runs["slow"] if "published" in r), 0)
    print()
    print(
        f"slow consumers: {slow['viewers']} viewers, {slow['stall']} of them stop reading after "
        f"their hello; {slow['rate']:g} events/s of {size:,} bytes; the stalled read again "
        "after the window"
    )
    print("\n".join(slow_lines(runs["slow"])))
    failed = False
    for row in [*load, *runs["slow"]]:
        readers = row.get("readers", {})
        if "error" in row or row.get("join_failed") or readers.get("disorder"):
            failed = True
            print(
                f"FAILED: {row['server']} {row['scenario']}: {row.get('error') or ''} "
                f"joins failed {row.get('join_failed')} ({row.get('join_error')}), "
                f"out of order {readers.get('disorder')}"
            )
        if readers.get("gaps"):
            failed = True
            print(f"GAPS: {row['server']} {row['scenario']}: {readers['gaps']} seq gaps")
    return failed
