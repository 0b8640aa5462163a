"""Feed and search reads over a seeded catalogue, as ratios of a raw-ASGI baseline.

    .venv/bin/python -m bench.reads [--contents 10000] [--accounts 20] [--seconds 8]

Starts the baseline (``bench/baseline.py``) and the real ``lifeaccount serve`` (fresh data dir),
seeds the real server through its API (``--accounts`` sign-ups, ``--contents`` posts spread
over them and published, ``--fans`` fan tokens each following ``--follows`` accounts), then
drives each read with the same keep-alive load generator as ``bench.api`` (50 connections by
default): an account's first page, a deep page (the 10th, by cursor), a fan's following feed,
the discover feed, search by a two-character and a four-character Chinese query, and the
search box. The first search after seeding also brings the index up to date; that catch-up is
timed apart. The baseline runs before and after, and each figure prints beside its ratio.
Checks: walking one account's feed by cursor returns each of its contents exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from bench.api import PASSWORD, Options, cycling, fan_body, measure, request, run_and_report
from bench.httpload import LoadGenerator, fetch
from bench.report import Measured
from bench.servers import (
    FAST_HASHING,
    HOST,
    ServerProcess,
    baseline_command,
    child_env,
    get_request,
    lifeaccount_command,
)

SETUP_TIMEOUT_S = 600.0
# Everyday words of brand content: two-character words are the common Chinese query (DESIGN §2).
WORDS = (
    "新品 护肤 咖啡 奶茶 秋季 限定 优惠 会员 直播 上新 口红 面膜 防晒 早餐 甜品 火锅 "
    "门店 外卖 积分 礼盒 香水 面包 冰淇淋 旅行 酒店 运动 跑鞋 瑜伽 宠物 母婴"
).split()
QUERIES_2 = ["新品", "护肤", "咖啡", "奶茶", "限定", "会员", "火锅", "礼盒"]
QUERIES_4 = ["秋季新品", "会员优惠", "咖啡早餐", "限定礼盒"]


@dataclass(frozen=True)
class Catalogue:
    contents: int
    accounts: int
    follows: int


@dataclass
class Seeded:
    accounts: list[tuple[str, str]]  # (account id, api key)
    per_account: dict[str, int]
    tokens: list[str]
    seconds: float


async def _bulk(
    server: ServerProcess, opts: Options, requests: list[bytes], what: str
) -> list[bytes]:
    """Send every request once with ``opts.concurrency`` connections; the bodies, in order."""
    bodies: list[bytes] = [b""] * len(requests)

    def keep(i: int, status: int, body: bytes) -> None:
        bodies[i] = body

    gen = LoadGenerator(HOST, server.port, opts.concurrency, opts.timeout)
    await gen.open()
    try:
        done = await gen.run(
            lambda i: requests[i],
            seconds=SETUP_TIMEOUT_S,
            max_requests=len(requests),
            on_response=keep,
        )
    finally:
        gen.close()
    if done.errors or done.requests != len(requests):
        raise RuntimeError(f"seeding {what} failed: {done.error_sample}\n{server.log_tail()}")
    return bodies


def post_body(rng: random.Random, n: int) -> bytes:
    words = "".join(rng.sample(WORDS, 4))
    return orjson.dumps({"kind": "post", "text": f"第{n}条 {words} 欢迎到店"})


async def seed(server: ServerProcess, opts: Options, cat: Catalogue) -> Seeded:
    started = time.monotonic()
    port = server.port
    rng = random.Random(4)
    accounts: list[tuple[str, str]] = []
    for a in range(cat.accounts):
        signup = orjson.dumps(
            {
                "email": f"owner{a}@reads.example",
                "password": PASSWORD,
                "account": {"name": f"品牌{a} {rng.choice(WORDS)}", "handle": f"reads-{a}"},
            }
        )
        status, body = await fetch(
            HOST, port, request("POST", "/api/v1/signup", port, body=signup), 30.0
        )
        if status != 201:
            raise RuntimeError(f"sign-up answered {status}: {body[:300]!r}")
        done = orjson.loads(body)
        accounts.append((done["account"]["id"], done["api_key"]))
    owners = [accounts[n % cat.accounts] for n in range(cat.contents)]
    creates = [
        request("POST", f"/api/v1/accounts/{acc}/contents", port, key, post_body(rng, n))
        for n, (acc, key) in enumerate(owners)
    ]
    made = await _bulk(server, opts, creates, "contents")
    publishes = [
        request("POST", f"/api/v1/contents/{orjson.loads(b)['id']}/publish", port, key, b"{}")
        for b, (_, key) in zip(made, owners, strict=True)
    ]
    await _bulk(server, opts, publishes, "publishes")
    first_id, first_key = accounts[0]
    mint_path = f"/api/v1/accounts/{first_id}/fan-tokens"
    mints = [request("POST", mint_path, port, first_key, fan_body(k)) for k in range(opts.fans)]
    tokens = [orjson.loads(b)["token"] for b in await _bulk(server, opts, mints, "fan tokens")]
    follows = [
        request("POST", f"/api/v1/accounts/{acc}/follow", port, token)
        for token in tokens
        for acc, _ in rng.sample(accounts, min(cat.follows, cat.accounts))
    ]
    await _bulk(server, opts, follows, "follows")
    per_account = {acc: sum(1 for o, _ in owners if o == acc) for acc, _ in accounts}
    return Seeded(accounts, per_account, tokens, time.monotonic() - started)


async def get_json(port: int, path: str, token: str = "") -> dict[str, Any]:
    headers = f"Authorization: Bearer {token}\r\n" if token else ""
    status, body = await fetch(HOST, port, get_request(path, port, headers), 120.0)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    answer: dict[str, Any] = orjson.loads(body)
    return answer


async def walk(port: int, account_id: str) -> tuple[int, int, list[str]]:
    """Every page of an account's feed: (items, distinct ids, the cursor of each page)."""
    ids: list[str] = []
    cursors: list[str] = []
    cursor = ""
    while True:
        path = f"/api/v1/accounts/{account_id}/contents?limit=20"
        page = await get_json(port, path + (f"&cursor={cursor}" if cursor else ""))
        ids += [c["id"] for c in page["items"]]
        if not page.get("next_cursor"):
            return len(ids), len(set(ids)), cursors
        cursor = page["next_cursor"]
        cursors.append(cursor)


def search(path: str, queries: list[str], port: int) -> list[bytes]:
    return [get_request(f"{path}?q={quote(q)}", port) for q in queries]


async def scenarios(
    server: ServerProcess, opts: Options, cat: Catalogue
) -> tuple[list[Measured], dict[str, Any]]:
    seeded = await seed(server, opts, cat)
    port = server.port
    print(
        f"  seeded {cat.accounts} accounts, {cat.contents} published posts, {opts.fans} fans "
        f"following {cat.follows} accounts each, in {seeded.seconds:.1f} s",
        flush=True,
    )
    t0 = time.monotonic()
    await get_json(port, f"/api/v1/search?q={quote('新品')}")
    catch_up = time.monotonic() - t0
    print(f"  the first search brought the index up to date in {catch_up:.2f} s", flush=True)
    account_ids = [acc for acc, _ in seeded.accounts]
    got, distinct, cursors = await walk(port, account_ids[0])
    deep = []
    for acc in account_ids:
        page = f"/api/v1/accounts/{acc}/contents?limit=20"
        for _ in range(9):
            cursor = (await get_json(port, page))["next_cursor"]
            page = f"/api/v1/accounts/{acc}/contents?limit=20&cursor={cursor}"
        deep.append(get_request(page, port))
    firsts = [get_request(f"/api/v1/accounts/{a}/contents?limit=20", port) for a in account_ids]
    mine = [
        get_request("/api/v1/me/feed?limit=20", port, f"Authorization: Bearer {t}\r\n")
        for t in seeded.tokens
    ]
    discover = get_request("/api/v1/feed/discover?limit=20", port)
    boxes = search("/api/v1/search/box", [f"品牌{i}" for i in range(cat.accounts)], port)
    done = [
        await measure(server, "account feed p1", cycling(firsts), opts),
        await measure(server, "account feed p10", cycling(deep), opts),
        await measure(server, "following feed", cycling(mine), opts),
        await measure(server, "discover feed", cycling([discover]), opts),
        await measure(
            server, "search 2 chars", cycling(search("/api/v1/search", QUERIES_2, port)), opts
        ),
        await measure(
            server, "search 4 chars", cycling(search("/api/v1/search", QUERIES_4, port)), opts
        ),
        await measure(server, "search box", cycling(boxes), opts),
    ]
    expected = seeded.per_account[account_ids[0]]
    setup = {
        "accounts": cat.accounts,
        "contents": cat.contents,
        "follows_per_fan": cat.follows,
        "seed_seconds": round(seeded.seconds, 3),
        "index_catch_up_seconds": round(catch_up, 3),
    }
    checks = {
        "one account's feed walked by cursor (items, distinct)": {
            "got": [got, distinct],
            "expected": [expected, expected],
        }
    }
    return done, {"setup": setup, "checks": checks}


async def run(opts: Options, cat: Catalogue) -> dict[str, Any]:
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
            print("lifeaccount serve: fresh data dir", flush=True)
            async with ServerProcess(
                "lifeaccount",
                lifeaccount_command(python, logs / "data"),
                logs,
                child_env(FAST_HASHING),
            ) as server:
                measured, facts = await scenarios(server, opts, cat)
            last = await measure(base, "baseline (end)", hello, opts)
    return {"module": "bench.reads", "baselines": [first, last], "scenarios": measured} | facts


def parse(argv: Sequence[str] | None) -> tuple[Options, Catalogue]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reads", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per read")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each")
    parser.add_argument("--concurrency", type=int, default=50, help="keep-alive connections")
    parser.add_argument("--contents", type=int, default=10_000, help="published posts")
    parser.add_argument("--accounts", type=int, default=20, help="accounts they are spread over")
    parser.add_argument("--fans", type=int, default=200, help="fans with a following feed")
    parser.add_argument("--follows", type=int, default=10, help="accounts each fan follows")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    a = parser.parse_args(argv)
    if a.contents < a.accounts * 200 or a.accounts < 1 or a.fans < 1 or a.seconds <= 0:
        parser.error("need --contents >= 200 per account (the deep page is the 10th of 20)")
    opts = Options(a.seconds, a.warmup, a.concurrency, a.fans, 1_000_000, a.timeout)
    return opts, Catalogue(a.contents, a.accounts, a.follows)


def main(argv: Sequence[str] | None = None) -> int:
    opts, cat = parse(argv)
    return run_and_report("reads", run(opts, cat), asdict(opts) | asdict(cat))


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
