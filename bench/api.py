"""Throughput and latency of the core API calls, as ratios of a raw-ASGI baseline.

    .venv/bin/python -m bench.api [--seconds 8] [--concurrency 50] [--fans 2000]

Starts the baseline (``bench/baseline.py``, a raw ASGI app under the same uvicorn settings) and
the real ``lifeaccount serve``, each a child process on 127.0.0.1 port 0 with a fresh temporary
data dir, and drives both with the same keep-alive load generator (``bench/httpload.py``) from
this process. The baseline is measured before and after the real server, so drift shows.
Scenarios on the real server: follow/unfollow by fan tokens taken round-robin (each request
flips its fan, so every one writes), fan-token minting with the API key, and the anonymous
profile read. Every figure is printed beside its ratio to the baseline of the same run, and
written to ``bench/results/api-<timestamp>.json``. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.httpload import LoadGenerator, MakeRequest, fetch
from bench.report import Measured, machine, report
from bench.servers import (
    FAST_HASHING,
    HOST,
    ServerProcess,
    baseline_command,
    child_env,
    get_request,
    lifeaccount_command,
)

RESULTS = Path(__file__).resolve().parent / "results"
SETUP_TIMEOUT_S = 120.0
PASSWORD = "bench correct horse battery"


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    concurrency: int
    fans: int
    max_requests: int
    timeout: float


def request(method: str, path: str, port: int, token: str = "", body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class FollowToggle:
    """Fans in round-robin; pass k of the pool follows, pass k+1 unfollows, so each call writes.

    The sequence runs on across warm-up and measurement, so no call repeats its fan's state.
    """

    def __init__(self, account_id: str, port: int, tokens: Sequence[str]) -> None:
        path = f"/api/v1/accounts/{account_id}/follow"
        self.follow = [request("POST", path, port, t) for t in tokens]
        self.unfollow = [request("DELETE", path, port, t) for t in tokens]
        self.sent = 0

    def __call__(self, _: int) -> bytes:
        i, n = self.sent, len(self.follow)
        self.sent += 1
        return (self.follow if (i // n) % 2 == 0 else self.unfollow)[i % n]

    def expected_followers(self) -> int:
        """Fans whose last call was a follow (pass q covers fans below r, q-1 the rest)."""
        q, r = divmod(self.sent, len(self.follow))
        return r if q % 2 == 0 else len(self.follow) - r


def cycling(requests: Sequence[bytes]) -> MakeRequest:
    pool = itertools.cycle(requests)
    return lambda _: next(pool)


def fan_body(k: int) -> bytes:
    return orjson.dumps({"external_id": f"bench-fan-{k}", "name": f"Bench fan {k}"})


@dataclass
class Seeded:
    account_id: str
    api_key: str
    tokens: list[str]
    mint_seconds: float


async def seed(server: ServerProcess, opts: Options) -> Seeded:
    """One account (sign-up) and ``opts.fans`` fans with a token each, minted concurrently."""
    port = server.port
    signup = orjson.dumps(
        {
            "email": "owner@bench.example",
            "password": PASSWORD,
            "account": {"name": "Bench Brand", "handle": "bench-brand"},
        }
    )
    status, body = await fetch(
        HOST, port, request("POST", "/api/v1/signup", port, body=signup), 30.0
    )
    if status != 201:
        raise RuntimeError(f"sign-up answered {status}: {body[:500]!r}\n{server.log_tail()}")
    done = orjson.loads(body)
    account_id, api_key = done["account"]["id"], done["api_key"]
    path = f"/api/v1/accounts/{account_id}/fan-tokens"
    mints = [request("POST", path, port, api_key, fan_body(k)) for k in range(opts.fans)]
    tokens = [""] * opts.fans

    def keep(i: int, status: int, body: bytes) -> None:
        if status == 201:
            tokens[i] = orjson.loads(body)["token"]

    gen = LoadGenerator(HOST, port, opts.concurrency, opts.timeout)
    await gen.open()
    try:
        result = await gen.run(
            lambda i: mints[i], seconds=SETUP_TIMEOUT_S, max_requests=opts.fans, on_response=keep
        )
    finally:
        gen.close()
    if result.errors or not all(tokens):
        raise RuntimeError(
            f"minting the fans' tokens failed: {result.error_sample}\n{server.log_tail()}"
        )
    return Seeded(account_id, api_key, tokens, result.seconds)


async def measure(server: ServerProcess, name: str, make: MakeRequest, opts: Options) -> Measured:
    print(f"  measuring {name} ...", flush=True)
    gen = LoadGenerator(HOST, server.port, opts.concurrency, opts.timeout)
    await gen.open()
    try:
        warm = await gen.run(make, seconds=opts.warmup, max_requests=opts.max_requests)
        result = await gen.run(
            make,
            seconds=opts.seconds,
            max_requests=opts.max_requests,
            server_cpu=server.cpu_seconds,
        )
    finally:
        gen.close()
    return Measured(name, result, warm.errors)


async def scenarios(server: ServerProcess, opts: Options) -> tuple[list[Measured], dict[str, Any]]:
    """Seed the real server, then measure follow/unfollow, token mint and profile read."""
    seeded = await seed(server, opts)
    print(
        f"  seeded 1 account and {opts.fans} fans (tokens minted in {seeded.mint_seconds:.1f} s)",
        flush=True,
    )
    port, account = server.port, seeded.account_id
    toggle = FollowToggle(account, port, seeded.tokens)
    mint_path = f"/api/v1/accounts/{account}/fan-tokens"
    mints = [
        request("POST", mint_path, port, seeded.api_key, fan_body(k)) for k in range(opts.fans)
    ]
    profile = get_request(f"/api/v1/accounts/{account}", port)
    done = [await measure(server, "follow/unfollow", toggle, opts)]
    # Every follow and unfollow flipped its fan, so the count is known exactly.
    status, body = await fetch(HOST, port, profile, 10.0)
    count = orjson.loads(body).get("follower_count") if status == 200 else None
    expected = toggle.expected_followers()
    done.append(await measure(server, "fan-token mint", cycling(mints), opts))
    done.append(await measure(server, "profile read", cycling([profile]), opts))
    setup = {"fans": opts.fans, "mint_seconds": round(seeded.mint_seconds, 3)}
    checks = {"follower_count after follow/unfollow": {"got": count, "expected": expected}}
    return done, {"setup": setup, "checks": checks}


async def run(opts: Options) -> dict[str, Any]:
    """The baseline before and after the real server, so drift during the run shows."""
    # A SIGTERM (a CI timeout, say) cancels the run like Ctrl-C does, so the servers still stop.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="lifeaccount-bench-") as tmp:
        logs = Path(tmp)
        print("baseline: raw ASGI app under the same uvicorn settings", flush=True)
        async with ServerProcess("baseline", baseline_command(python), logs, child_env({})) as base:
            hello = cycling([get_request("/", base.port)])
            first = await measure(base, "baseline (start)", hello, opts)
            print(
                "lifeaccount serve: fresh data dir; sign-up hashing tuned down for set-up only "
                f"({' '.join(f'{k}={v}' for k, v in FAST_HASHING.items())})",
                flush=True,
            )
            async with ServerProcess(
                "lifeaccount",
                lifeaccount_command(python, logs / "data"),
                logs,
                child_env(FAST_HASHING),
            ) as server:
                measured, facts = await scenarios(server, opts)
            last = await measure(base, "baseline (end)", hello, opts)
    return {"module": "bench.api", "baselines": [first, last], "scenarios": measured} | facts


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each")
    parser.add_argument("--concurrency", type=int, default=50, help="keep-alive connections")
    parser.add_argument("--fans", type=int, default=2000, help="fan tokens in the follow pool")
    parser.add_argument(
        "--max-requests", type=int, default=1_000_000, help="cap per scenario, besides time"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    a = parser.parse_args(argv)
    if a.seconds <= 0 or a.concurrency < 1 or a.fans < 1 or a.warmup < 0:
        parser.error("--seconds, --concurrency and --fans must be positive, --warmup not negative")
    return Options(a.seconds, a.warmup, a.concurrency, a.fans, a.max_requests, a.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    return run_and_report("api", run(opts), asdict(opts))


def run_and_report(
    name: str, work: Coroutine[Any, Any, dict[str, Any]], opts: dict[str, Any]
) -> int:
    """Run a bench's coroutine on uvloop, print and save its report; the exit status is 1 if
    any request failed or a check did not hold (130 when interrupted)."""
    facts = machine()
    loop_factory = None
    try:
        import uvloop  # the client's loop: the cheapest per request, so it saturates last

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            ran = runner.run(work)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; the servers were stopped", file=sys.stderr)
        return 130
    out = report(opts, facts, ran)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    failed = any(r["errors"] for r in [*out["baseline"]["runs"], *out["scenarios"]])
    return 1 if failed or not all(c["ok"] for c in out["checks"].values()) else 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
