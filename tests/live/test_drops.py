"""Collectible drops on a real SQLite file (live/drops.py, live/certificates.py): 500 editions
for 1,500 concurrent fans and their retries go once each, numbered 1..500, and every
certificate checks offline against the deployment's public key — and fails for any change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from accounts import ledger
from accounts import schema as accounts_schema
from accounts.accounts import create_account
from accounts.errors import Conflict
from content import schema as content_schema
from live import certificates, drops, rooms
from live import schema as live_schema
from live.rooms import Room
from store.clock import utc_now
from store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=utc_now().tzinfo)
SIGNER = certificates.Signer.from_secret(b"k" * 32)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "drops.db")
    await opened.ensure_indexes(
        [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]
    )
    yield opened
    assert await ledger.audit(opened) == []  # drops move no points: nothing may have moved
    await opened.close()


async def live_room(store: SQLiteStore) -> Room:
    account = await create_account(store, name="Tea", handle="tea-drop", now=NOW)
    room = await rooms.create_room(store, account.id, title="限量", now=NOW)
    return await rooms.go_live(store, room.id, now=NOW)


async def test_five_hundred_editions_for_fifteen_hundred_fans_go_once_each(
    store: SQLiteStore,
) -> None:
    room = await live_room(store)
    drop = await drops.create_drop(store, room, name="秋季限定杯", editions=500, now=NOW)
    fans = [f"fan_{n:026d}" for n in range(1_500)]

    async def claim(fan: str) -> drops.Claim | None:
        try:
            return await drops.claim(store, drop.id, fan_id=fan, signer=SIGNER, now=NOW)
        except Conflict as exc:
            assert exc.code == "sold_out"
            return None

    got = await asyncio.gather(*(claim(f) for f in [*fans, *fans[::5]]))
    won: dict[str, int] = {}
    for c in got:
        if c is not None:
            assert won.setdefault(c.fan_id, c.edition) == c.edition
    assert len(won) == 500 and sorted(won.values()) == list(range(1, 501))
    assert (await drops.get_drop(store, drop.id)).claimed == 500
    key = SIGNER.public_key()
    for c in [x for x in got if x is not None][:50]:
        told = certificates.verify(c.certificate, key)
        assert (told["fan_id"], told["edition"], told["of"]) == (c.fan_id, c.edition, 500)
    # A fan's collection shows it; the edition, once more, is the same.
    fan, edition = next(iter(won.items()))
    [(kept, mine)] = await drops.collection(store, fan)
    assert (kept.id, mine.edition) == (drop.id, edition)
    again = await drops.claim(store, drop.id, fan_id=fan, signer=SIGNER, now=NOW)
    assert (again.edition, again.repeat) == (edition, True)


def test_a_certificate_fails_for_another_key_or_any_change() -> None:
    cert = SIGNER.sign({"v": 1, "edition": 7, "of": 500, "fan_id": "fan_x"})
    assert certificates.verify(cert, SIGNER.public_key())["edition"] == 7
    other = certificates.Signer.from_secret(b"o" * 32).public_key()
    with pytest.raises(certificates.BadCertificate):
        certificates.verify(cert, other)
    forged = SIGNER.sign({"v": 1, "edition": 8, "of": 500, "fan_id": "fan_x"})
    spliced = forged.split(".")[0] + "." + cert.split(".")[1]  # edition 8 with 7's signature
    with pytest.raises(certificates.BadCertificate):
        certificates.verify(spliced, SIGNER.public_key())
    with pytest.raises(certificates.BadCertificate):
        certificates.verify("not a certificate", SIGNER.public_key())
