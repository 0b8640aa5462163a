"""bench.grabs: a red packet grabbed end to end through the real ``lifeaccount serve`` — by
3,000 fans connected to the room channel (the ``grab`` op), and by 3,000 fans over HTTP
(``POST /api/v1/red-packets/{id}/grabs``) — beside the same grabs through the domain in this
process (``bench.economy``'s run, the baseline of the same run). After each run the packet's
audit is checked: exactly one share per winner, no fan twice, the shares sum to the total,
the reveal recomputes to the commitment.

    .venv/bin/python -m bench.grabs              # ~40 s: 1,000 shares, 3,000 fans each way
    .venv/bin/python -m bench.grabs --fans 1000  # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.economy import Options, grabs_domain
from bench.httpload import connect as http_connect
from bench.report import machine, machine_line
from bench.servers import FAST_HASHING, HOST, ServerProcess, child_env, lifeaccount_command
from live import split

RESULTS = Path(__file__).parent / "results"
TOTAL_PER_SHARE = 5


async def _setup(base: str, fans: int) -> dict[str, Any]:
    """An account with a budget, a live room, and ``fans`` fan tokens."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        signed = await client.post(
            "/api/v1/signup",
            json={
                "email": "owner@bench-grabs.example",
                "password": "correct horse battery",
                "account": {"name": "Bench Tea", "handle": "bench-grabs"},
            },
        )
        signed.raise_for_status()
        client.cookies.clear()
        body = signed.json()
        key = {"Authorization": f"Bearer {body['api_key']}"}
        account = f"/api/v1/accounts/{body['account']['id']}"
        room = (await client.post(f"{account}/rooms", json={"title": "bench"}, headers=key)).json()
        (await client.post(f"/api/v1/rooms/{room['id']}/start", headers=key)).raise_for_status()
        budget = {"points": 10_000_000, "reason": "bench"}
        topped = await client.post(
            f"{account}/budget/credits", json=budget, headers={**key, "Idempotency-Key": "b"}
        )
        topped.raise_for_status()
        gate = asyncio.Semaphore(50)

        async def mint(n: int) -> str:
            async with gate:
                r = await client.post(
                    f"{account}/fan-tokens",
                    json={"external_id": f"f{n}", "name": f"fan {n}"},
                    headers=key,
                )
                r.raise_for_status()
                token: str = r.json()["token"]
                return token

        tokens = await asyncio.gather(*(mint(n) for n in range(fans)))
    return {"key": key, "room": room, "tokens": tokens}


async def _drop(base: str, setup: dict[str, Any], shares: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        made = await client.post(
            f"/api/v1/rooms/{setup['room']['id']}/red-packets",
            json={"total": shares * TOTAL_PER_SHARE, "count": shares, "mode": "random"},
            headers=setup["key"],
        )
        made.raise_for_status()
        packet: dict[str, Any] = made.json()
        return packet


async def _audit(base: str, packet: dict[str, Any], shares: int) -> dict[str, bool]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        done = (await client.get(f"/api/v1/red-packets/{packet['id']}")).json()
    grabs = done.get("grabs") or []
    total = shares * TOTAL_PER_SHARE
    reveal = done.get("reveal") or {"seed": "", "shares": []}
    return {
        "finished": done["state"] == "finished" and done["grabbed_count"] == shares,
        "winners": len({g["fan_id"] for g in grabs}) == shares,
        "sum": sum(g["amount"] for g in grabs) == total,
        "shares_match": [g["amount"] for g in grabs] == reveal["shares"],
        "reveal": split.verify(
            reveal["seed"], reveal["shares"], total, shares, "random", packet["commitment"]
        )
        == [],
    }


def _rates(
    started: float, ended: float, latencies: list[float], won: int, tried: int
) -> dict[str, Any]:
    seconds = ended - started
    ordered = sorted(latencies)
    return {
        "seconds": round(seconds, 3),
        "grabs_per_s": round(won / seconds),
        "attempts_per_s": round(tried / seconds),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)], 1),
    }


async def over_channel(base: str, setup: dict[str, Any], shares: int) -> dict[str, Any]:
    """Every fan connected to the room channel and caught up, then all grab at once."""
    packet = await _drop(base, setup, shares)
    url = setup["room"]["channel_url"]
    gate = asyncio.Semaphore(200)

    async def join(token: str) -> ClientConnection:
        async with gate:
            ws = await connect(url, max_queue=None, compression=None)
            await ws.send(json.dumps({"op": "hello", "id": "hello", "token": token}))
            while json.loads(await ws.recv()).get("type") != "snapshot":
                pass
            return ws

    sockets = await asyncio.gather(*(join(t) for t in setup["tokens"]))
    answers: dict[str, Any] = {"won": 0, "refused": 0}
    latencies: list[float] = []

    async def grab(ws: ClientConnection) -> None:
        sent = time.perf_counter()
        await ws.send(json.dumps({"op": "grab", "id": "g", "red_packet_id": packet["id"]}))
        while True:
            message = json.loads(await ws.recv())
            if message.get("id") == "g":
                latencies.append(time.perf_counter() - sent)
                answers["won" if message["type"] == "ack" else "refused"] += 1
                return

    started = time.perf_counter()
    await asyncio.gather(*(grab(ws) for ws in sockets))
    ended = time.perf_counter()
    await asyncio.gather(*(ws.close() for ws in sockets))
    return {
        **_rates(started, ended, latencies, answers["won"], len(sockets)),
        "connected": len(sockets),
        "answers": answers,
        "checks": await _audit(base, packet, shares),
    }


async def over_http(base: str, setup: dict[str, Any], shares: int) -> dict[str, Any]:
    """Every fan POSTs its grab: 100 keep-alive connections of the raw client of
    ``bench.httpload`` (httpx's pool itself slows down past a few dozen connections), one
    request in flight on each."""
    packet = await _drop(base, setup, shares)
    path = f"/api/v1/red-packets/{packet['id']}/grabs"
    port = int(base.rsplit(":", 1)[1])
    answers = {"won": 0, "refused": 0}
    latencies: list[float] = []
    conns = [await http_connect(HOST, port) for _ in range(100)]
    tokens: list[str] = setup["tokens"]

    async def client(slot: int) -> None:
        for token in tokens[slot :: len(conns)]:
            raw = (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            sent = time.perf_counter()
            status, _ = await conns[slot].request(raw)
            latencies.append(time.perf_counter() - sent)
            answers["won" if status == 200 else "refused"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(len(conns))))
    ended = time.perf_counter()
    for conn in conns:
        conn.close()
    return {
        **_rates(started, ended, latencies, answers["won"], len(setup["tokens"])),
        "answers": answers,
        "checks": await _audit(base, packet, shares),
    }


async def run(shares: int, fans: int, folder: Path) -> dict[str, Any]:
    domain = await grabs_domain(Options(shares=shares, fans=fans, concurrency=200, sends=0), folder)
    server = ServerProcess(
        "lifeaccount",
        lifeaccount_command(Path(sys.executable), folder / "data"),
        folder / "logs",
        child_env(FAST_HASHING),
    )
    async with server:
        base = f"http://127.0.0.1:{server.port}"
        setup = await _setup(base, fans)
        channel = await over_channel(base, setup, shares)
        http = await over_http(base, setup, shares)
    return {"domain": domain, "channel": channel, "http": http}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.grabs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--shares", type=int, default=1_000)
    parser.add_argument("--fans", type=int, default=3_000)
    a = parser.parse_args(argv)
    facts = machine()
    print(machine_line(facts))
    with tempfile.TemporaryDirectory(prefix="bench-grabs-") as tmp:
        ran = asyncio.run(run(a.shares, a.fans, Path(tmp)))
    base = ran["domain"]["grabs_per_s"]
    print(f"a red packet of {a.shares:,} shares, {a.fans:,} fans grabbing at once each way")
    print(
        f"{'path':42} {'grabs/s':>9} {'attempts/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'× domain':>9}"
    )
    rows = [("domain, in process (baseline)", {**ran["domain"], "p50_ms": "", "p99_ms": ""})]
    rows += [
        (f"room channel, {a.fans:,} connected fans", ran["channel"]),
        ("HTTP, 100 requests in flight", ran["http"]),
    ]
    for name, r in rows:
        ratio = r["grabs_per_s"] / base
        rates = f"{r['grabs_per_s']:>9,} {r['attempts_per_s']:>11,}"
        print(f"{name:42} {rates} {r['p50_ms']:>8} {r['p99_ms']:>8} {ratio:>8.2f}×")
    checks = {
        **{f"domain_{k}": v for k, v in ran["domain"]["checks"].items()},
        **{f"channel_{k}": v for k, v in ran["channel"]["checks"].items()},
        **{f"http_{k}": v for k, v in ran["http"]["checks"].items()},
    }
    failed = [k for k, v in checks.items() if not v]
    print("invariants: " + ("all hold" if not failed else "FAILED " + ", ".join(failed)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"grabs-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(
        json.dumps({"machine": facts, "shares": a.shares, "fans": a.fans, **ran}, indent=1)
    )
    print(f"wrote {out}")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
