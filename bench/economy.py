"""bench.economy: red packet grabs/s and prop sends/s through the domain (``live.red_packets``,
``live.props``) on the embedded engine — a real SQLite file — each beside a baseline measured
in the same run: the same rows written with Python's ``sqlite3`` module directly (one
connection, one transaction per grab or send, WAL and synchronous=NORMAL as the store uses),
with none of the store's layers. After each run the invariants are checked: exactly one
share per winner, the shares sum to the total, the reveal recomputes to the commitment, and
the ledger audit finds nothing.

    .venv/bin/python -m bench.economy            # ~30 s: 10,000 shares for 15,000 fans
    .venv/bin/python -m bench.economy --quick    # ~10 s: 2,000 shares for 3,000 fans
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from accounts import ledger
from accounts import schema as accounts_schema
from accounts.accounts import create_account
from accounts.errors import Conflict
from bench.report import machine, machine_line
from content import schema as content_schema
from live import props, red_packets, rooms, split
from live import schema as live_schema
from store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Options:
    shares: int
    fans: int
    concurrency: int
    sends: int


async def _store(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.ensure_indexes(
        [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]
    )
    return store


async def _room(store: SQLiteStore, budget: int) -> rooms.Room:
    account = await create_account(store, name="Bench Tea", handle="bench-eco", now=NOW)
    room = await rooms.create_room(store, account.id, title="bench", now=NOW)
    room = await rooms.go_live(store, room.id, now=NOW)
    await ledger.credit_budget(
        store,
        account_id=account.id,
        points=budget,
        reason=None,
        reference=None,
        idempotency_key="bench",
        now=NOW,
    )
    return room


async def grabs_domain(opts: Options, folder: Path) -> dict[str, Any]:
    """Every fan grabs once, ``concurrency`` at a time; a sixth of them grab twice at once."""
    store = await _store(folder / "grabs.db")
    total = opts.shares * 5
    room = await _room(store, total)
    packet = await red_packets.drop(
        store, room, total=total, count=opts.shares, mode="random", now=NOW
    )
    fans = [f"fan_{n:026d}" for n in range(opts.fans)]
    attempts = [*fans, *fans[::6]]
    gate = asyncio.Semaphore(opts.concurrency)
    answers = {"won": 0, "repeat": 0, "empty": 0}

    async def grab(fan: str) -> None:
        async with gate:
            try:
                got = await red_packets.grab(store, packet.id, fan_id=fan, now=NOW)
            except Conflict:
                answers["empty"] += 1
                return
            answers["repeat" if got.repeat else "won"] += 1

    began = time.perf_counter()
    await asyncio.gather(*(grab(f) for f in attempts))
    seconds = time.perf_counter() - began
    done = await red_packets.get_packet(store, packet.id, with_shares=True)
    taken = await red_packets.grabs(store, packet.id)
    reveal = done.reveal()
    assert reveal is not None, "the packet did not finish"
    checks = {
        "winners": len({g["fan_id"] for g in taken}) == opts.shares == answers["won"],
        "sum": sum(g["amount"] for g in taken) == total,
        "min_1": min(g["amount"] for g in taken) >= 1,
        "shares_match": all(g["amount"] == reveal["shares"][g["n"]] for g in taken),
        "reveal": split.verify(
            reveal["seed"], reveal["shares"], total, opts.shares, "random", packet.commitment
        )
        == [],
        "ledger_audit": await ledger.audit(store) == [],
    }
    await store.close()
    return {
        "attempts": len(attempts),
        "seconds": round(seconds, 3),
        "attempts_per_s": round(len(attempts) / seconds),
        "grabs_per_s": round(opts.shares / seconds),
        "answers": answers,
        "checks": checks,
    }


BASELINE_SCHEMA = """
CREATE TABLE packet (id TEXT PRIMARY KEY, count INTEGER, grabbed INTEGER, total INTEGER);
CREATE TABLE grab (packet TEXT, fan TEXT, n INTEGER, amount INTEGER,
                   UNIQUE (packet, fan), UNIQUE (packet, n));
CREATE TABLE balance (id TEXT PRIMARY KEY, balance INTEGER);
CREATE TABLE entry (id INTEGER PRIMARY KEY, debit TEXT, credit TEXT, points INTEGER,
                    key TEXT UNIQUE);
"""


def grabs_baseline(opts: Options, folder: Path) -> dict[str, Any]:
    """The same grabs as rows, with ``sqlite3`` directly: claim the next share, record the
    grab, move the points between two balances and write the entry, one transaction each."""
    db = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(BASELINE_SCHEMA)
    shares = [5] * opts.shares
    db.execute("INSERT INTO packet VALUES ('p', ?, 0, ?)", (opts.shares, sum(shares)))
    db.execute("INSERT INTO balance VALUES ('packet', ?)", (sum(shares),))
    fans = [f"fan_{n:026d}" for n in range(opts.fans)]
    attempts = [*fans, *fans[::6]]
    won = 0
    began = time.perf_counter()
    for fan in attempts:
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM grab WHERE packet = 'p' AND fan = ?", (fan,)).fetchone():
            db.execute("COMMIT")
            continue
        row = db.execute(
            "UPDATE packet SET grabbed = grabbed + 1 WHERE id = 'p' AND grabbed < count "
            "RETURNING grabbed"
        ).fetchone()
        if row is None:
            db.execute("COMMIT")
            continue
        n = row[0] - 1
        db.execute("INSERT INTO grab VALUES ('p', ?, ?, ?)", (fan, n, shares[n]))
        db.execute("UPDATE balance SET balance = balance - ? WHERE id = 'packet'", (shares[n],))
        db.execute(
            "INSERT INTO balance VALUES (?, ?) ON CONFLICT (id) DO UPDATE "
            "SET balance = balance + excluded.balance",
            (f"wallet:{fan}", shares[n]),
        )
        db.execute(
            "INSERT INTO entry (debit, credit, points, key) VALUES ('packet', ?, ?, ?)",
            (f"wallet:{fan}", shares[n], f"grab:{fan}"),
        )
        db.execute("COMMIT")
        won += 1
    seconds = time.perf_counter() - began
    db.close()
    assert won == opts.shares
    return {
        "attempts": len(attempts),
        "seconds": round(seconds, 3),
        "attempts_per_s": round(len(attempts) / seconds),
        "grabs_per_s": round(opts.shares / seconds),
    }


async def sends_domain(opts: Options, folder: Path) -> dict[str, Any]:
    """``sends`` prop sends by 500 funded fans, ``concurrency`` at a time."""
    store = await _store(folder / "sends.db")
    room = await _room(store, 1)
    [tea] = await props.set_catalog(store, room.account_id, [{"name": "奶茶", "price": 1}], now=NOW)
    fans = [f"fan_{n:026d}" for n in range(500)]
    for fan in fans:
        await ledger.transfer(
            store,
            account_id=room.account_id,
            debit=ledger.ISSUED,
            credit=ledger.wallet(fan),
            points=opts.sends,
            reason="bench",
            reference="bench",
            idempotency_key=f"fund:{fan}",
            now=NOW,
        )
    gate = asyncio.Semaphore(opts.concurrency)

    async def send(n: int) -> None:
        async with gate:
            fan = fans[n % len(fans)]
            await props.send(
                store,
                room,
                fan_id=fan,
                fan_name=fan,
                prop_id=tea.id,
                count=1,
                idempotency_key=f"s{n}",
                now=NOW,
            )

    began = time.perf_counter()
    await asyncio.gather(*(send(n) for n in range(opts.sends)))
    seconds = time.perf_counter() - began
    points, _ = await props.room_total(store, room.id)
    checks = {
        "takings": await ledger.balance(store, room.account_id, props.TAKINGS) == opts.sends,
        "board": points == opts.sends,
        "ledger_audit": await ledger.audit(store) == [],
    }
    await store.close()
    return {
        "sends": opts.sends,
        "seconds": round(seconds, 3),
        "sends_per_s": round(opts.sends / seconds),
        "checks": checks,
    }


def sends_baseline(opts: Options, folder: Path) -> dict[str, Any]:
    """The same sends as rows with ``sqlite3``: debit the wallet if it holds the price,
    credit the takings, write the entry and add to the board, one transaction each."""
    db = sqlite3.connect(folder / "baseline-sends.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(BASELINE_SCHEMA + "CREATE TABLE board (fan TEXT PRIMARY KEY, points INTEGER);")
    fans = [f"fan_{n:026d}" for n in range(500)]
    db.executemany("INSERT INTO balance VALUES (?, ?)", [(f"wallet:{f}", opts.sends) for f in fans])
    db.execute("INSERT INTO balance VALUES ('takings', 0)")
    began = time.perf_counter()
    for n in range(opts.sends):
        fan = fans[n % len(fans)]
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM entry WHERE key = ?", (f"s{n}",)).fetchone() is None:
            db.execute(
                "UPDATE balance SET balance = balance - 1 WHERE id = ? AND balance >= 1",
                (f"wallet:{fan}",),
            )
            db.execute("UPDATE balance SET balance = balance + 1 WHERE id = 'takings'")
            db.execute(
                "INSERT INTO entry (debit, credit, points, key) VALUES (?, 'takings', 1, ?)",
                (f"wallet:{fan}", f"s{n}"),
            )
            db.execute(
                "INSERT INTO board VALUES (?, 1) ON CONFLICT (fan) DO UPDATE "
                "SET points = points + 1",
                (fan,),
            )
        db.execute("COMMIT")
    seconds = time.perf_counter() - began
    db.close()
    return {
        "sends": opts.sends,
        "seconds": round(seconds, 3),
        "sends_per_s": round(opts.sends / seconds),
    }


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.economy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a look: 2,000 shares, 3,000 fans")
    parser.add_argument("--concurrency", type=int, default=200, help="grabs or sends at once")
    a = parser.parse_args(argv)
    if a.quick:
        return Options(shares=2_000, fans=3_000, concurrency=a.concurrency, sends=2_000)
    return Options(shares=10_000, fans=15_000, concurrency=a.concurrency, sends=10_000)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    facts = machine()
    print(machine_line(facts))
    with tempfile.TemporaryDirectory(prefix="bench-economy-") as tmp:
        folder = Path(tmp)
        base_grabs = grabs_baseline(opts, folder)
        ours_grabs = asyncio.run(grabs_domain(opts, folder))
        base_sends = sends_baseline(opts, folder)
        ours_sends = asyncio.run(sends_domain(opts, folder))
    rows = [
        ("red packet grabs (winners/s)", ours_grabs["grabs_per_s"], base_grabs["grabs_per_s"]),
        ("red packet grab attempts/s", ours_grabs["attempts_per_s"], base_grabs["attempts_per_s"]),
        ("prop sends/s (with the ledger)", ours_sends["sends_per_s"], base_sends["sends_per_s"]),
    ]
    print(
        f"{opts.shares:,} shares for {opts.fans:,} fans (+{opts.fans // 6:,} grabbing twice), "
        f"{opts.sends:,} prop sends; {opts.concurrency} at a time; SQLite file, WAL"
    )
    print(f"{'figure':34} {'domain':>10} {'sqlite3 baseline':>17} {'× baseline':>11}")
    for name, ours, base in rows:
        print(f"{name:34} {ours:>10,} {base:>17,} {ours / base:>10.2f}×")
    checks = {**ours_grabs["checks"], **{f"sends_{k}": v for k, v in ours_sends["checks"].items()}}
    print("invariants: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in checks.items()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"economy-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(
        json.dumps(
            {
                "machine": facts,
                "options": opts.__dict__,
                "grabs": {"domain": ours_grabs, "baseline": base_grabs},
                "sends": {"domain": ours_sends, "baseline": base_sends},
            },
            indent=1,
        )
    )
    print(f"wrote {out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
