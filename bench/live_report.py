"""The figures of one ``bench.live`` run, each beside its baseline, as a printed table."""

from __future__ import annotations

import statistics
from typing import Any

from bench.report import machine_line

HLS_EDGE_SEGMENTS = 3  # hls.js liveSyncDurationCount: a player starts this far from the end
BUSY_CORES = 0.2  # other load above this during a window is called out


def per_seat(steps: list[dict[str, Any]]) -> float:
    """Mean cores a seat adds: (all seats - none) / seats."""
    added: float = steps[-1]["cores"] - steps[0]["cores"]
    return added / len(steps[1:])


def seat_fps(steps: list[dict[str, Any]]) -> float:
    """Frames per second a viewer got, on average, with every seat taken."""
    return float(statistics.mean(steps[-1]["seat_fps"]))


def per_seat_frame_ms(steps: list[dict[str, Any]]) -> float:
    """CPU ms the seats cost per frame they delivered: a seat that drops frames costs less
    per second, not per frame."""
    added: float = steps[-1]["cores"] - steps[0]["cores"]
    delivered: float = sum(steps[-1]["seat_fps"])
    return 1000 * added / delivered


def _get(ran: dict[str, Any], *keys: str) -> Any:
    """``ran[k1][k2]…``, or None where a step failed and left no figures."""
    found: Any = ran
    for key in keys:
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return found


def _latency(side: dict[str, Any] | None) -> dict[str, float]:
    if not side or not side["hls_delays_ms"] or len(side["webrtc_ms"]) < 2:
        return {}
    hls_s = statistics.median(side["hls_delays_ms"]) / 1000
    g2g = statistics.quantiles(side["webrtc_ms"], n=100, method="inclusive")
    return {
        "hls": hls_s,
        "edge": hls_s + HLS_EDGE_SEGMENTS * side["target_s"],
        "p50": g2g[49],
        "p95": g2g[94],
    }


def figures(ran: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure beside its baseline and their ratio; one whose steps failed is left out."""
    rows: list[dict[str, Any]] = []

    def add(name: str, unit: str, ours: float | None, base: float | None) -> None:
        if ours is not None and base is not None:
            ratio = round(ours / base, 3) if base else None
            rows.append(
                {"figure": name, "unit": unit, "server": ours, "baseline": base, "ratio": ratio}
            )

    for codec, how in (("h264", "H.264 in, copied"), ("vp8", "VP8 in, to H.264")):
        add(
            f"CPU per live room ({how})",
            "cores",
            _get(ran, f"server_{codec}", "cores"),
            _get(ran, f"ffmpeg_{codec}", "cores"),
        )
    seats, relay = _get(ran, "server_h264", "seats"), ran.get("relay_seats")
    if seats and relay:
        n = len(seats) - 1
        add(f"CPU per added WHEP seat (mean of {n})", "cores", per_seat(seats), per_seat(relay))
        add(f"frames a seat gets, {n} seats taken", "fps", seat_fps(seats), seat_fps(relay))
        add(
            "seat CPU per frame delivered", "ms", per_seat_frame_ms(seats), per_seat_frame_ms(relay)
        )
    for codec, name in (("h264", "H.264"), ("vp8", "VP8")):
        ours_s = _get(ran, f"server_{codec}", "first_segment_s")
        base_s = _get(ran, f"ffmpeg_{codec}", "first_segment_s")
        if ours_s and base_s:
            add(
                f"publish → first HLS segment ({name}, median)",
                "s",
                statistics.median(ours_s),
                statistics.median(base_s),
            )
    ours, base = _latency(ran.get("server_latency")), _latency(ran.get("baseline_latency"))
    for key, name, unit in (
        ("hls", "HLS segment listed, behind live (p50)", "s"),
        ("edge", "at hls.js live edge (computed)", "s"),
        ("p50", "WebRTC glass to glass p50", "ms"),
        ("p95", "WebRTC glass to glass p95", "ms"),
    ):
        add(name, unit, ours.get(key), base.get(key))
    return rows


def _num(value: float, unit: str) -> str:
    text = f"{value:.0f}" if unit in ("ms", "fps") else f"{value:.2f}"
    return f"{text} {unit}"


def _share(span: dict[str, Any], key: str) -> float:
    return float(span[key] or 0.0) / float(span["wall_s"])


def report(
    options: dict[str, Any], facts: dict[str, Any], ffmpeg: str, ran: dict[str, Any]
) -> list[dict[str, Any]]:
    """Print the run; return its figures."""
    rows = figures(ran)
    print()
    print(machine_line(facts))
    print(f"ffmpeg:  {ffmpeg}")
    print(
        "clips:   1280x720 30 fps testsrc2 + 440 Hz tone, 2.5 Mb/s H.264 baseline (MPEG-TS) or "
        "VP8 (WebM), Opus 64 kb/s; aiortc sends their packets as they are"
    )
    print(
        f"windows: {options['seconds']:g} s per room from its first HLS segment; "
        f"{options['seat_s']:g} s per seat count (0 to {options['seats']}), each seat past its "
        "first second of frames"
    )
    print()
    head = f"{'figure':<44} {'lifeaccount':>12} {'baseline':>12} {'× base':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "-"
        print(
            f"{r['figure']:<44} {_num(r['server'], r['unit']):>12} "
            f"{_num(r['baseline'], r['unit']):>12} {ratio:>7}"
        )
    print()
    print(
        "baselines: rooms and first segment = the server's own ffmpeg argv fed the clip on "
        "stdin at its pace; seats = aiortc MediaRelay in a child process; HLS delay = the "
        "stamped frames piped raw into that ffmpeg (libx264 as aiortc encodes); glass to glass "
        "= the same aiortc publisher and viewer, peer to peer"
    )
    _starts(ran)
    _seat_table(ran)
    _latency_lines(ran)
    _spans(ran)
    for step, error in ran["errors"].items():
        print(f"FAILED {step}: {error}")
    return rows


def _starts(ran: dict[str, Any]) -> None:
    cells = []
    for step in ("server_h264", "ffmpeg_h264", "server_vp8", "ffmpeg_vp8"):
        firsts = _get(ran, step, "first_segment_s") or []
        lengths = _get(ran, step, "first_segment_length_s") or []
        starts = " ".join(
            f"{at:.2f} ({length:.2f})" for at, length in zip(firsts, lengths, strict=True)
        )
        if starts:
            cells.append(f"{step} {starts}")
    if cells:
        print(f"first segment at, each start, s (its length): {'; '.join(cells)}")


def _seat_table(ran: dict[str, Any]) -> None:
    sides = [
        (name, steps)
        for name, steps in (
            ("server", _get(ran, "server_h264", "seats")),
            ("relay", ran.get("relay_seats")),
        )
        if steps
    ]
    if not sides:
        return
    print()
    print(
        f"{'seats':>5}"
        + "".join(
            f" | {name + ' cores':>13} {'bench':>5} {'other':>5} {'fps each':>12}"
            for name, _ in sides
        )
    )
    for i in range(min(len(steps) for _, steps in sides)):
        cells = []
        for _, steps in sides:
            s = steps[i]
            fps = " ".join(f"{f:.0f}" for f in s["seat_fps"]) or "-"
            cells.append(
                f" | {s['cores']:>13.2f} {_share(s, 'bench_cpu_s'):>5.2f} "
                f"{_share(s, 'other_cpu_s'):>5.2f} {fps:>12}"
            )
        print(f"{i:>5}" + "".join(cells))
    codecs = "/".join(sorted({steps[-1]["codec_out"] for _, steps in sides}))
    print(
        f"seats send {codecs}: viewers offer aiortc's codecs, VP8 first as Chrome does; "
        "fps each = frames each viewer decoded per second"
    )


def _latency_lines(ran: dict[str, Any]) -> None:
    print()
    for step in ("server_latency", "baseline_latency"):
        lat = ran.get(step)
        if not lat:
            continue
        print(
            f"{step}: publisher {lat['publisher_fps']:.1f} fps (1280x720 stamped, aiortc "
            f"H.264), HLS fed {lat['hls_source_fps']:.1f} fps; viewer got {lat['codec_out']}, "
            f"{len(lat['webrtc_ms'])} frames read ({lat['webrtc_unreadable']} unreadable); "
            f"{len(lat['hls_delays_ms'])} segments read ({lat['hls_unreadable']} unreadable), "
            f"target {lat['target_s']:g} s"
        )
    print(
        "HLS delay: a segment listed minus the time its last frame was made; a player at "
        f"hls.js's default live edge is {HLS_EDGE_SEGMENTS} target durations further back "
        "(computed, not played)"
    )


def _spans(ran: dict[str, Any]) -> None:
    print()
    print(
        "cores = CPU s / wall s of the measured process and its children (the server with its "
        "ffmpeg; the baseline ffmpeg; the relay), from /proc. The publisher and viewers run in "
        "this bench process and are NOT counted: 'bench' is their CPU, 'other' the rest of "
        "the machine, in cores:"
    )
    windows: list[tuple[str, float]] = []
    for step in ("ffmpeg_h264", "server_h264", "ffmpeg_vp8", "server_vp8"):
        s = ran.get(step)
        if s:
            windows.append((step, _share(s, "other_cpu_s")))
            print(
                f"  {step:<12} {s['cores']:.2f} cores, bench {_share(s, 'bench_cpu_s'):.2f}, "
                f"other {windows[-1][1]:.2f}"
            )
    for name, steps in (
        ("server", _get(ran, "server_h264", "seats")),
        ("relay", ran.get("relay_seats")),
    ):
        windows += [(f"{name} {s['seats']} seats", _share(s, "other_cpu_s")) for s in steps or []]
    busy = [(name, other) for name, other in windows if other >= BUSY_CORES]
    if busy:
        worst = max(busy, key=lambda w: w[1])
        print(
            f"note: other processes used ≥ {BUSY_CORES:g} cores in {len(busy)} of {len(windows)} "
            f"windows (most: {worst[1]:.2f} in {worst[0]}); those figures are contended"
        )
    broken = [
        e
        for step in ("server_h264", "server_vp8", "server_latency")
        for e in _get(ran, step, "playlist_errors") or []
    ]
    if broken:
        print(f"note: {len(broken)} playlist fetches from the server broke (retried): {broken[0]}")
    errors = sorted(set(ran.get("server_log_errors") or []))
    if errors:
        print(f"note: the server logged errors: {'; '.join(errors)[:400]}")
