from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accounts import schema as accounts_schema
from accounts.accounts import Account, create_account
from content import schema as content_schema
from content.coupons import Coupon, create_coupon
from content.sensitive import ReviewPolicy, add_words
from content.uploads import Uploads
from media.blobs import BlobStore
from store.clock import rfc3339
from store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SENSITIVE = ("赌博", "casino")  # the global list every content test runs with


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    engine = SQLiteStore(tmp_path / "content.db")
    await engine.ensure_indexes([*accounts_schema.INDEXES, *content_schema.INDEXES])
    yield engine
    await engine.close()


@pytest.fixture
async def threaded_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """The engine with each connection on its own thread (its FULL mode), so that concurrent
    callers really interleave at every await: the inline default runs a caller's statements
    back to back, which would hide a missing guard."""
    engine = SQLiteStore(tmp_path / "threaded.db", synchronous="FULL")
    await engine.ensure_indexes([*accounts_schema.INDEXES, *content_schema.INDEXES])
    yield engine
    await engine.close()


@pytest.fixture
async def account(store: SQLiteStore) -> Account:
    return await create_account(store, name="Tea House", handle="tea-house", now=NOW)


@pytest.fixture
async def other_account(store: SQLiteStore) -> Account:
    return await create_account(store, name="Coffee Bar", handle="coffee-bar", now=NOW)


@pytest.fixture
async def policy(store: SQLiteStore) -> ReviewPolicy:
    await add_words(store, account_id=None, words=list(SENSITIVE), now=NOW)
    return ReviewPolicy(store)


async def make_coupon(
    store: SQLiteStore,
    account: Account,
    *,
    stock: int = 10,
    per_fan_limit: int = 1,
    starts: datetime = NOW - timedelta(hours=1),
    ends: datetime = NOW + timedelta(days=7),
) -> Coupon:
    return await create_coupon(
        store,
        account.id,
        title="满100减20",
        stock=stock,
        per_fan_limit=per_fan_limit,
        valid_from=rfc3339(starts),
        valid_until=rfc3339(ends),
        now=NOW,
    )


async def make_upload(
    store: SQLiteStore, blobs: BlobStore, account: Account, data: bytes = b"\xff\xd8\xff\xe0"
) -> str:
    """A complete upload of ``account`` holding ``data``; returns its id."""
    uploads = Uploads(store, blobs, max_size=64 << 20)
    made = await uploads.create(
        account_id=account.id, created_by="stf_test", length=len(data), metadata={}, now=NOW
    )

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await uploads.append(made.id, account_id=account.id, offset=0, chunks=chunks(), now=NOW)
    return made.id
