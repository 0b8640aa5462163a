from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accounts.accounts import Account, create_account
from accounts.fans import Fan, upsert_fan
from accounts.passwords import Passwords
from accounts.schema import INDEXES
from store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    engine = SQLiteStore(tmp_path / "accounts.db")
    await engine.ensure_indexes(INDEXES)
    yield engine
    await engine.close()


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(time_cost=1, memory_kib=1024, parallelism=1)


@pytest.fixture
async def account(store: SQLiteStore) -> Account:
    return await create_account(store, name="Tea House", handle="tea-house", now=NOW)


@pytest.fixture
async def fan(store: SQLiteStore, account: Account) -> Fan:
    return await upsert_fan(store, issuer_id=account.id, external_id="u1", name="Lily", now=NOW)
