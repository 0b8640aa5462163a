"""The document-store contract: every engine of ``store.port.DocumentStore`` passes this file.

Tests speak only the port. An engine joins the suite as one more ``engine`` param: its opener
must return a store on the *same* data each time it is called within one test (that is how
restarts are tested) and fresh data for every test.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from store.port import (
    Collection,
    Doc,
    DocumentStore,
    DuplicateKeyError,
    Filter,
    Index,
    InvalidCursorError,
    InvalidQueryError,
    Sort,
    SortKey,
)
from store.sqlite import SQLiteStore


class Engine:
    """Opens stores on one test's data, and closes whatever is still open at teardown."""

    def __init__(self, opener: Callable[[], DocumentStore]) -> None:
        self._opener = opener
        self._open: list[DocumentStore] = []

    def open(self) -> DocumentStore:
        store = self._opener()
        self._open.append(store)
        return store

    async def close(self, store: DocumentStore) -> None:
        self._open.remove(store)
        await store.close()

    async def close_all(self) -> None:
        while self._open:
            await self.close(self._open[-1])


def _sqlite(tmp_path: Path) -> Callable[[], DocumentStore]:
    return lambda: SQLiteStore(tmp_path / "contract.db")


def _sqlite_full(tmp_path: Path) -> Callable[[], DocumentStore]:
    # synchronous=FULL runs each connection on a thread of its own instead of the event loop.
    return lambda: SQLiteStore(tmp_path / "contract.db", synchronous="FULL")


OPENERS: dict[str, Callable[[Path], Callable[[], DocumentStore]]] = {
    "sqlite": _sqlite,
    "sqlite-full": _sqlite_full,
}


@pytest.fixture(params=sorted(OPENERS))
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    opened = Engine(OPENERS[request.param](tmp_path))
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest.fixture
def store(engine: Engine) -> DocumentStore:
    return engine.open()


@pytest.fixture
def things(store: DocumentStore) -> Collection:
    return store.collection("things")


def ids(found: list[Doc]) -> list[str]:
    return [doc["id"] for doc in found]


# -- insert and get ---------------------------------------------------------------------------


async def test_an_inserted_document_comes_back_equal(things: Collection) -> None:
    doc = {"id": "t1", "name": "茶", "n": 3, "ok": True, "meta": {"tags": ["a"], "x": None}}
    await things.insert(doc)
    assert await things.get("t1") == doc
    assert await things.get("t2") is None


async def test_a_document_needs_a_string_id(things: Collection) -> None:
    with pytest.raises(InvalidQueryError):
        await things.insert({"name": "no id"})
    with pytest.raises(InvalidQueryError):
        await things.insert({"id": 7})
    assert await things.count({}) == 0


async def test_reusing_an_id_is_a_duplicate_and_keeps_the_first(things: Collection) -> None:
    await things.insert({"id": "t1", "v": 1})
    with pytest.raises(DuplicateKeyError) as caught:
        await things.insert({"id": "t1", "v": 2})
    assert caught.value.collection == "things"
    assert caught.value.fields == ("id",)
    assert await things.get("t1") == {"id": "t1", "v": 1}


async def test_collections_are_separate(store: DocumentStore) -> None:
    await store.collection("left").insert({"id": "same"})
    await store.collection("right").insert({"id": "same", "side": "right"})
    assert await store.collection("left").get("same") == {"id": "same"}
    assert await store.collection("right").count({}) == 1


# -- unique indexes ---------------------------------------------------------------------------


async def test_a_unique_index_rejects_a_duplicate_and_names_its_field(
    store: DocumentStore,
) -> None:
    users = store.collection("users")
    await store.ensure_indexes([Index("users", ("email",), unique=True)])
    await users.insert({"id": "u1", "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError) as caught:
        await users.insert({"id": "u2", "email": "a@example.com"})
    assert (caught.value.collection, caught.value.fields) == ("users", ("email",))
    assert await users.get("u2") is None
    await users.insert({"id": "u3", "email": "b@example.com"})
    with pytest.raises(DuplicateKeyError):
        await users.update_one({"id": "u3"}, {"$set": {"email": "a@example.com"}})
    assert (await users.get("u3") or {})["email"] == "b@example.com"


async def test_a_unique_index_is_sparse(store: DocumentStore) -> None:
    users = store.collection("users")
    await store.ensure_indexes([Index("users", ("email",), unique=True)])
    await users.insert({"id": "u1"})
    await users.insert({"id": "u2"})
    await users.insert({"id": "u3", "email": "a@example.com"})
    assert await users.count({}) == 3


async def test_a_compound_unique_index_constrains_the_combination(store: DocumentStore) -> None:
    fans = store.collection("fans")
    await store.ensure_indexes([Index("fans", ("account_id", "handle"), unique=True)])
    await fans.insert({"id": "f1", "account_id": "a1", "handle": "kai"})
    await fans.insert({"id": "f2", "account_id": "a2", "handle": "kai"})
    await fans.insert({"id": "f3", "account_id": "a1", "handle": "mei"})
    with pytest.raises(DuplicateKeyError) as caught:
        await fans.insert({"id": "f4", "account_id": "a1", "handle": "kai"})
    assert caught.value.fields == ("account_id", "handle")
    # Sparse: lacking one of the fields frees the document from the index.
    await fans.insert({"id": "f5", "account_id": "a1"})
    await fans.insert({"id": "f6", "account_id": "a1"})
    assert await fans.count({}) == 5


async def test_the_error_names_the_index_that_failed_not_one_with_a_similar_name(
    store: DocumentStore,
) -> None:
    codes = store.collection("codes")
    await store.ensure_indexes(
        [Index("codes", ("code_hash",), unique=True), Index("codes", ("code",), unique=True)]
    )
    await codes.insert({"id": "c1", "code": "A", "code_hash": "h"})
    with pytest.raises(DuplicateKeyError) as caught:
        await codes.insert({"id": "c2", "code": "B", "code_hash": "h"})
    assert caught.value.fields == ("code_hash",)


async def test_a_dotted_unique_index(store: DocumentStore) -> None:
    links = store.collection("links")
    await store.ensure_indexes([Index("links", ("target.url",), unique=True)])
    await links.insert({"id": "l1", "target": {"url": "https://a.example"}})
    with pytest.raises(DuplicateKeyError) as caught:
        await links.insert({"id": "l2", "target": {"url": "https://a.example"}})
    assert caught.value.fields == ("target.url",)


async def test_ensure_indexes_over_existing_duplicates_fails_as_a_duplicate(
    store: DocumentStore,
) -> None:
    users = store.collection("users")
    await users.insert({"id": "u1", "email": "a@example.com"})
    await users.insert({"id": "u2", "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError) as caught:
        await store.ensure_indexes([Index("users", ("email",), unique=True)])
    assert caught.value.fields == ("email",)
    # The index was not made: removing the duplicate lets it be made afterwards.
    await users.delete_one({"id": "u2"})
    await store.ensure_indexes([Index("users", ("email",), unique=True)])
    with pytest.raises(DuplicateKeyError):
        await users.insert({"id": "u3", "email": "a@example.com"})


# -- filters ----------------------------------------------------------------------------------

FILTER_DOCS: list[Doc] = [
    {"id": "a", "n": 1, "s": "apple", "flag": True, "note": "hi", "meta": {"k": "x", "v": 1}},
    {"id": "b", "n": 2, "s": "banana", "flag": False, "meta": {"k": "y", "v": 2}},
    {"id": "c", "n": 3, "s": "cherry", "note": None, "meta": {"k": "x"}},
    {"id": "d", "n": 2.5, "s": "date", "flag": True},
    {"id": "e", "s": "elder", "meta": None},
]
EVERY = "abcde"

FILTER_CASES: list[tuple[Filter, str]] = [
    ({}, EVERY),
    ({"n": 2}, "b"),
    ({"n": {"$eq": 2}}, "b"),
    ({"n": 2.5}, "d"),
    ({"n": 2, "s": "banana"}, "b"),
    ({"n": 2, "s": "apple"}, ""),
    ({"n": {"$ne": 2}}, "acde"),
    ({"n": {"$gt": 2}}, "cd"),
    ({"n": {"$gte": 2}}, "bcd"),
    ({"n": {"$lt": 2}}, "a"),
    ({"n": {"$lte": 2}}, "ab"),
    ({"n": {"$gt": 1, "$lt": 3}}, "bd"),
    ({"n": {"$in": [1, 3, 99]}}, "ac"),
    ({"n": {"$in": []}}, ""),
    ({"n": {"$nin": [1, 3]}}, "bde"),
    ({"n": {"$nin": []}}, EVERY),
    ({"s": {"$gt": "c"}}, "cde"),
    ({"s": {"$lte": "banana"}}, "ab"),
    ({"s": "x'); DROP TABLE c_things; --"}, ""),
    ({"id": "c"}, "c"),
    ({"id": {"$in": ["a", "c", "zz"]}}, "ac"),
    ({"id": {"$gt": "c"}}, "de"),
    ({"id": {"$exists": True}}, EVERY),
    # booleans
    ({"flag": True}, "ad"),
    ({"flag": False}, "b"),
    ({"flag": {"$ne": True}}, "bce"),
    ({"flag": {"$in": [False]}}, "b"),
    ({"flag": {"$exists": True}}, "abd"),
    ({"flag": {"$exists": False}}, "ce"),
    # null and missing: null equality matches both; $exists counts a stored null as present
    ({"note": None}, "bcde"),
    ({"note": {"$eq": None}}, "bcde"),
    ({"note": {"$ne": None}}, "a"),
    ({"note": {"$exists": True}}, "ac"),
    ({"note": {"$exists": False}}, "bde"),
    ({"note": {"$in": [None]}}, "bcde"),
    ({"note": {"$in": [None, "hi"]}}, EVERY),
    ({"note": {"$nin": [None]}}, "a"),
    ({"s": {"$nin": [None, "apple"]}}, "bcde"),
    ({"nothing": None}, EVERY),
    ({"nothing": {"$exists": True}}, ""),
    # dotted fields
    ({"meta.k": "x"}, "ac"),
    ({"meta.v": {"$gte": 2}}, "b"),
    ({"meta.k": {"$exists": False}}, "de"),
    ({"meta.k": {"$ne": "x"}}, "bde"),
    ({"meta": None}, "de"),
    # $and / $or
    ({"$and": [{"n": {"$gte": 2}}, {"flag": True}]}, "d"),
    ({"$or": [{"n": 1}, {"s": "cherry"}]}, "ac"),
    ({"flag": True, "$or": [{"n": 1}, {"n": 3}]}, "a"),
    ({"$or": [{"n": 1}, {"n": 3}], "flag": True}, "a"),
    ({"$or": [{"$and": [{"n": {"$gt": 1}}, {"n": {"$lt": 3}}]}, {"s": "elder"}]}, "bde"),
    ({"$and": [{"$or": [{"n": 1}, {"n": 2}]}, {"$or": [{"n": 2}, {"n": 3}]}]}, "b"),
]


@pytest.mark.parametrize(
    ("filter", "expected"), FILTER_CASES, ids=[repr(f) for f, _ in FILTER_CASES]
)
async def test_filter(things: Collection, filter: Filter, expected: str) -> None:
    for doc in FILTER_DOCS:
        await things.insert(doc)
    assert ids(await things.find(filter)) == list(expected)
    assert await things.count(filter) == len(expected)


TYPED_DOCS: list[Doc] = [
    {"id": "w", "v": {"a": 1}},
    {"id": "x", "v": "10"},
    {"id": "y", "v": 10},
    {"id": "z", "v": True},
    {"id": "zz", "v": 1},
]
TYPED_CASES: list[tuple[Filter, list[str]]] = [
    ({"v": 1}, ["zz"]),
    ({"v": True}, ["z"]),
    ({"v": 10}, ["y"]),
    ({"v": "10"}, ["x"]),
    ({"v": {"$gt": 5}}, ["y"]),
    ({"v": {"$gte": 0}}, ["y", "zz"]),
    ({"v": {"$lt": "zzz"}}, ["x"]),
    ({"v": {"$in": [10, "10"]}}, ["x", "y"]),
    ({"v": {"$in": [1]}}, ["zz"]),
    ({"v": {"$nin": [1, True]}}, ["1", "w", "x", "y"]),
    ({"v": {"$ne": 10}}, ["1", "w", "x", "z", "zz"]),
    ({"v": {"$exists": False}}, ["1"]),
    ({"id": {"$in": [1, 2]}}, []),
]


@pytest.mark.parametrize(("filter", "expected"), TYPED_CASES, ids=[repr(f) for f, _ in TYPED_CASES])
async def test_values_of_another_type_never_match(
    things: Collection, filter: Filter, expected: list[str]
) -> None:
    await things.insert({"id": "1"})
    for doc in TYPED_DOCS:
        await things.insert(doc)
    assert ids(await things.find(filter)) == expected


# -- sort, limit, count -----------------------------------------------------------------------

SORT_CASES: list[tuple[Sort, str]] = [
    ((), "abcde"),
    ([("n", 1)], "eabdc"),  # missing sorts first ascending
    ([("n", -1)], "cdbae"),  # and last descending
    ([("s", -1)], "edcba"),
    ([("meta.k", 1), ("n", -1)], "decab"),
    ([("flag", -1), ("n", 1)], "adbec"),
    ([("id", -1)], "edcba"),
]


@pytest.mark.parametrize(("sort", "expected"), SORT_CASES, ids=[repr(s) for s, _ in SORT_CASES])
async def test_sort(things: Collection, sort: Sort, expected: str) -> None:
    for doc in reversed(FILTER_DOCS):
        await things.insert(doc)
    assert ids(await things.find({}, sort=sort)) == list(expected)


async def test_limit_takes_from_the_front_of_the_sort(things: Collection) -> None:
    for doc in FILTER_DOCS:
        await things.insert(doc)
    assert ids(await things.find({}, sort=[("n", -1)], limit=2)) == ["c", "d"]
    assert ids(await things.find({"flag": True}, sort=[("n", -1)], limit=10)) == ["d", "a"]
    found = await things.find_one({"meta.k": "x"}, sort=[("n", -1)])
    assert found is not None and found["id"] == "c"
    assert await things.find_one({"n": 42}) is None
    assert await things.count({"n": {"$exists": True}}) == 4


# -- updates ----------------------------------------------------------------------------------


async def test_update_one_applies_every_operator_and_returns_the_result(
    things: Collection,
) -> None:
    await things.insert(
        {"id": "w", "balance": 10, "tags": ["a"], "profile": {"name": "x"}, "tmp": 1}
    )
    after = await things.update_one(
        {"id": "w"},
        {
            "$set": {"profile.name": "y", "profile.bio": "b"},
            "$unset": {"tmp": ""},
            "$inc": {"balance": -3, "visits": 1},
            "$push": {"tags": "b"},
            "$setOnInsert": {"created": "now"},
        },
    )
    expected = {
        "id": "w",
        "balance": 7,
        "visits": 1,
        "tags": ["a", "b"],
        "profile": {"name": "y", "bio": "b"},
    }
    assert after == expected
    assert await things.get("w") == expected


async def test_update_one_touches_only_the_first_match(things: Collection) -> None:
    for doc in FILTER_DOCS:
        await things.insert(doc)
    after = await things.update_one({"flag": True}, {"$set": {"picked": True}})
    assert after is not None and after["flag"] is True
    assert await things.count({"picked": True}) == 1


async def test_a_guarded_update_returns_none_and_changes_nothing_when_the_guard_fails(
    things: Collection,
) -> None:
    await things.insert({"id": "wallet", "balance": 7})
    spend = ({"id": "wallet", "balance": {"$gte": 5}}, {"$inc": {"balance": -5}})
    first = await things.update_one(*spend)
    assert first == {"id": "wallet", "balance": 2}
    assert await things.update_one(*spend) is None
    assert await things.get("wallet") == {"id": "wallet", "balance": 2}
    assert await things.update_one({"id": "nobody"}, {"$set": {"x": 1}}) is None
    assert await things.count({}) == 1


async def test_an_upsert_builds_from_the_filter_equalities(things: Collection) -> None:
    filter = {"account_id": "acc", "fan_id": {"$eq": "f1"}, "points": {"$gte": 0}}
    update = {"$inc": {"points": 5}, "$setOnInsert": {"id": "pts_1", "since": "t0"}}
    created = await things.update_one(filter, update, upsert=True)
    assert created == {
        "id": "pts_1",
        "account_id": "acc",
        "fan_id": "f1",
        "points": 5,
        "since": "t0",
    }
    again = await things.update_one(
        filter, {**update, "$setOnInsert": {"id": "pts_2", "since": "t1"}}, upsert=True
    )
    assert again == {**created, "points": 10}
    assert await things.count({}) == 1
    assert await things.get("pts_1") == again


async def test_an_upsert_with_a_dotted_filter_builds_nested_fields(things: Collection) -> None:
    made = await things.update_one(
        {"id": "p1", "owner.kind": "fan"}, {"$set": {"owner.name": "kai"}}, upsert=True
    )
    assert made == {"id": "p1", "owner": {"kind": "fan", "name": "kai"}}
    assert await things.get("p1") == made


async def test_update_many_updates_every_match_and_counts_them(things: Collection) -> None:
    for doc in FILTER_DOCS:
        await things.insert(doc)
    assert await things.update_many({"flag": True}, {"$inc": {"n": 10}}) == 2
    assert ids(await things.find({"n": {"$gte": 10}})) == ["a", "d"]
    assert (await things.get("b") or {})["n"] == 2
    assert await things.update_many({"n": 99}, {"$set": {"x": 1}}) == 0


async def test_delete_one_returns_what_it_deleted(things: Collection) -> None:
    for doc in FILTER_DOCS:
        await things.insert(doc)
    gone = await things.delete_one({"s": "banana"})
    assert gone == FILTER_DOCS[1]
    assert await things.get("b") is None
    assert await things.delete_one({"s": "banana"}) is None
    assert await things.count({}) == 4


async def test_delete_many_deletes_every_match_and_counts_them(things: Collection) -> None:
    for doc in FILTER_DOCS:
        await things.insert(doc)
    assert await things.delete_many({"meta.k": "x"}) == 2
    assert ids(await things.find({})) == ["b", "d", "e"]
    assert await things.delete_many({"meta.k": "x"}) == 0
    assert await things.delete_many({}) == 3
    assert await things.count({}) == 0


async def test_concurrent_increments_are_exact(things: Collection) -> None:
    await things.insert({"id": "counter", "n": 0})
    await asyncio.gather(
        *(things.update_one({"id": "counter"}, {"$inc": {"n": 1}}) for _ in range(200))
    )
    assert await things.get("counter") == {"id": "counter", "n": 200}


# -- keyset pages -----------------------------------------------------------------------------

# Ties on rank (and on at), and two items lacking rank, which sort before every rank.
PAGE_DOCS: list[Doc] = [
    {"id": f"p{i:02d}", "kind": "post", **({} if rank is None else {"rank": rank}), "at": i % 3}
    for i, rank in enumerate([2, 1, 3, 1, None, 2, 2, 1, 3, None, 2])
] + [{"id": "other", "kind": "comment", "rank": 1, "at": 0}]


def _key(doc: Doc, *, field: str) -> tuple[int, Any]:
    value = doc.get(field)
    return (0, 0) if value is None else (1, value)


def _expected(sort: list[SortKey]) -> list[str]:
    posts = [d for d in PAGE_DOCS if d["kind"] == "post"]
    for field, direction in reversed([*sort, ("id", sort[-1][1])]):
        posts.sort(key=partial(_key, field=field), reverse=direction == -1)
    return [d["id"] for d in posts]


async def _walk(things: Collection, sort: Sort, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await things.page({"kind": "post"}, sort=sort, limit=size, cursor=cursor)
        pages.append([d["id"] for d in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) <= len(PAGE_DOCS), "the walk does not end"


PAGE_SORTS: list[list[SortKey]] = [
    [("rank", 1)],
    [("rank", -1)],
    [("rank", 1), ("at", -1)],
    [("rank", -1), ("at", 1)],
    [("at", 1)],
]


@pytest.mark.parametrize("sort", PAGE_SORTS, ids=[repr(s) for s in PAGE_SORTS])
async def test_pages_walk_the_whole_listing_once_in_order(
    things: Collection, sort: list[SortKey]
) -> None:
    for doc in PAGE_DOCS:
        await things.insert(doc)
    pages = await _walk(things, sort, 3)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    walked = [item for page in pages for item in page]
    assert walked == _expected(sort)
    assert len(set(walked)) == 11


async def test_a_page_that_ends_exactly_has_no_next_cursor(things: Collection) -> None:
    for i in range(6):
        await things.insert({"id": f"p{i}", "kind": "post", "rank": 1})
    pages = await _walk(things, [("rank", 1)], 3)
    assert pages == [["p0", "p1", "p2"], ["p3", "p4", "p5"]]
    empty = await things.page({"kind": "none"}, sort=[("rank", 1)], limit=3)
    assert (empty.items, empty.next_cursor) == ([], None)


async def test_a_cursor_works_only_with_the_sort_that_issued_it(things: Collection) -> None:
    for doc in PAGE_DOCS:
        await things.insert(doc)
    first = await things.page({"kind": "post"}, sort=[("rank", 1)], limit=3)
    assert first.next_cursor is not None
    others: list[Sort] = [[("rank", -1)], [("at", 1)], [("rank", 1), ("at", 1)]]
    for other in others:
        with pytest.raises(InvalidCursorError):
            await things.page({"kind": "post"}, sort=other, limit=3, cursor=first.next_cursor)


@pytest.mark.parametrize(
    "cursor", ["garbage", "", "%%%", "e30", "WzEsMiwzXQ", "WyJ4IiwgWzFdXQ", "😀"]
)
async def test_a_garbage_cursor_is_invalid(things: Collection, cursor: str) -> None:
    await things.insert({"id": "a", "rank": 1})
    with pytest.raises(InvalidCursorError):
        await things.page({}, sort=[("rank", 1)], limit=3, cursor=cursor)


async def test_a_page_holds_at_least_one_item(things: Collection) -> None:
    with pytest.raises(InvalidQueryError):
        await things.page({}, sort=[("rank", 1)], limit=0)


# -- transactions -----------------------------------------------------------------------------


async def test_a_transaction_commits_together(store: DocumentStore) -> None:
    wallets, ledger = store.collection("wallets"), store.collection("ledger")
    await wallets.insert({"id": "w1", "balance": 10})
    async with store.transaction():
        await wallets.update_one({"id": "w1"}, {"$inc": {"balance": -4}})
        await ledger.insert({"id": "e1", "amount": -4})
        # Reads inside the transaction see its own writes.
        assert (await wallets.get("w1") or {})["balance"] == 6
    assert (await wallets.get("w1") or {})["balance"] == 6
    assert await ledger.get("e1") == {"id": "e1", "amount": -4}


async def test_an_exception_rolls_everything_back(store: DocumentStore) -> None:
    wallets = store.collection("wallets")
    await wallets.insert({"id": "w1", "balance": 10})
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction():
            await wallets.update_one({"id": "w1"}, {"$inc": {"balance": -4}})
            await wallets.insert({"id": "w2", "balance": 1})
            # A collection first used inside the transaction.
            await store.collection("fresh").insert({"id": "f1"})
            raise RuntimeError("boom")
    assert await wallets.get("w1") == {"id": "w1", "balance": 10}
    assert await wallets.get("w2") is None
    fresh = store.collection("fresh")
    assert await fresh.count({}) == 0
    await fresh.insert({"id": "f2"})
    assert await fresh.get("f2") == {"id": "f2"}


async def test_a_duplicate_inside_a_transaction_rolls_it_back(store: DocumentStore) -> None:
    users = store.collection("users")
    await users.insert({"id": "u1"})
    with pytest.raises(DuplicateKeyError):
        async with store.transaction():
            await users.insert({"id": "u2"})
            await users.insert({"id": "u1"})
    assert await users.get("u2") is None


async def test_a_nested_transaction_joins_the_outer_one(store: DocumentStore) -> None:
    things = store.collection("things")
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await things.insert({"id": "outer"})
            async with store.transaction():
                await things.insert({"id": "inner"})
            # The inner block has ended, but its write still belongs to the outer transaction.
            raise RuntimeError("abort the outer")
    assert await things.count({}) == 0

    async with store.transaction():
        await things.insert({"id": "outer"})
        async with store.transaction():
            await things.insert({"id": "inner"})
    assert ids(await things.find({})) == ["inner", "outer"]


async def test_tasks_started_inside_a_transaction_join_it(store: DocumentStore) -> None:
    things = store.collection("things")
    with pytest.raises(RuntimeError):
        async with store.transaction():
            for i in range(3):
                await asyncio.create_task(things.insert({"id": f"t{i}"}))
            raise RuntimeError("abort")
    assert await things.count({}) == 0


async def test_others_do_not_see_a_transaction_before_it_commits(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert({"id": "seed"})

    async def outside() -> int:
        return await things.count({})

    async with store.transaction():
        await things.insert({"id": "new"})
        # A task with a fresh context is not part of the transaction.
        seen = await asyncio.create_task(outside(), context=contextvars.Context())
        assert seen == 1
    assert await things.count({}) == 2


# -- restarts ---------------------------------------------------------------------------------


async def test_data_survives_closing_and_reopening(engine: Engine) -> None:
    store = engine.open()
    things = store.collection("things")
    await things.insert({"id": "a", "n": 1})
    await things.update_one({"id": "a"}, {"$inc": {"n": 1}})
    async with store.transaction():
        await things.insert({"id": "b"})
    await engine.close(store)

    reopened = engine.open()
    assert ids(await reopened.collection("things").find({})) == ["a", "b"]
    assert await reopened.collection("things").get("a") == {"id": "a", "n": 2}


async def test_indexes_survive_reopening_and_ensuring_them_again_is_harmless(
    engine: Engine,
) -> None:
    indexes = [
        Index("users", ("email",), unique=True),
        Index("users", ("account_id", "at")),
    ]
    store = engine.open()
    await store.ensure_indexes(indexes)
    await store.ensure_indexes(indexes)
    await store.collection("users").insert({"id": "u1", "email": "a@example.com"})
    await engine.close(store)

    reopened = engine.open()
    users = reopened.collection("users")
    with pytest.raises(DuplicateKeyError) as caught:
        await users.insert({"id": "u2", "email": "a@example.com"})
    assert caught.value.fields == ("email",)
    await reopened.ensure_indexes(indexes)
    with pytest.raises(DuplicateKeyError):
        await users.insert({"id": "u2", "email": "a@example.com"})
    assert await users.count({}) == 1


async def test_ping_answers(store: DocumentStore) -> None:
    await store.ping()
    async with store.transaction():
        await store.ping()


async def test_ensure_indexes_inside_a_transaction_joins_it(store: DocumentStore) -> None:
    async with store.transaction():
        await store.ensure_indexes([Index("users", ("email",), unique=True)])
        await store.collection("users").insert({"id": "u1", "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await store.collection("users").insert({"id": "u2", "email": "a@example.com"})


# -- what the port refuses --------------------------------------------------------------------

INJECTION = "a'); DROP TABLE c_things; --"

BAD_FILTERS: list[Filter] = [
    {INJECTION: 1},
    {"n": {"$gt": 1, INJECTION: 2}},
    {"$where": "1 = 1"},
    {"n": {"$regex": "x"}},
    {"n": {"$gt": None}},
    {"n": {"$in": "abc"}},
    {"n": {"$in": [{"a": 1}]}},
    {"n": [1, 2]},
    {"$or": []},
    {"$or": {"n": 1}},
    {"$and": ["n"]},
    {"$nor": [{"n": 1}]},
    {"1n": 1},
    {"a..b": 1},
    {"a.$b": 1},
    {"n\n": 1},
]


@pytest.mark.parametrize("filter", BAD_FILTERS, ids=[repr(f) for f in BAD_FILTERS])
async def test_an_unsupported_filter_is_refused(things: Collection, filter: Filter) -> None:
    await things.insert({"id": "a", "n": 1})
    with pytest.raises(InvalidQueryError):
        await things.find(filter)
    with pytest.raises(InvalidQueryError):
        await things.delete_many(filter)
    assert await things.count({}) == 1


BAD_UPDATES: list[dict[str, Any]] = [
    {},
    {"$rename": {"n": "m"}},
    {"n": 2},
    {"$set": {INJECTION: 1}},
    {"$set": 5},
    {"$set": {"id": "other"}},
    {"$unset": {"id": ""}},
    {"$inc": {"n": "1"}},
    {"$inc": {"s": 1}},
    {"$inc": {"n": True}},
    {"$push": {"n": 1}},
    {"$set": {"n.deeper": 1}},
]


@pytest.mark.parametrize("update", BAD_UPDATES, ids=[repr(u) for u in BAD_UPDATES])
async def test_an_unsupported_update_is_refused_and_changes_nothing(
    things: Collection, update: dict[str, Any]
) -> None:
    doc = {"id": "a", "n": 1, "s": "x"}
    await things.insert(doc)
    with pytest.raises(InvalidQueryError):
        await things.update_one({"id": "a"}, update)
    with pytest.raises(InvalidQueryError):
        await things.update_many({}, update)
    assert await things.get("a") == doc


MALFORMED_UPDATES: list[dict[str, Any]] = [
    {},
    {"$rename": {"n": "m"}},
    {"n": 2},
    {"$set": {INJECTION: 1}},
    {"$set": 5},
    {"$inc": {"n": "1"}},
    {"$inc": {"n": True}},
]


@pytest.mark.parametrize("update", MALFORMED_UPDATES, ids=[repr(u) for u in MALFORMED_UPDATES])
async def test_a_malformed_update_is_refused_even_when_nothing_matches(
    things: Collection, update: dict[str, Any]
) -> None:
    with pytest.raises(InvalidQueryError):
        await things.update_one({"id": "nobody"}, update)
    with pytest.raises(InvalidQueryError):
        await things.update_many({"id": "nobody"}, update)


BAD_SORTS: list[Any] = [[(INJECTION, 1)], [("n", 0)], [("n", "desc")], [("n desc", 1)]]


@pytest.mark.parametrize("sort", BAD_SORTS, ids=[repr(s) for s in BAD_SORTS])
async def test_an_unsupported_sort_is_refused(things: Collection, sort: Any) -> None:
    await things.insert({"id": "a", "n": 1})
    with pytest.raises(InvalidQueryError):
        await things.find({}, sort=sort)
    with pytest.raises(InvalidQueryError):
        await things.page({}, sort=sort, limit=3)


async def test_bad_collection_and_index_names_are_refused(store: DocumentStore) -> None:
    await store.collection("things").insert({"id": "a"})
    for name in (INJECTION, "a.b", "", 'x"; --', "x\n"):
        with pytest.raises(InvalidQueryError):
            store.collection(name)
    with pytest.raises(InvalidQueryError):
        await store.ensure_indexes([Index("things", (INJECTION,), unique=True)])
    with pytest.raises(InvalidQueryError):
        await store.ensure_indexes([Index(INJECTION, ("a",))])
    assert await store.collection("things").count({}) == 1


async def test_sqlite_checkpoints_off_the_writer_and_truncates_the_wal_on_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    engine = SQLiteStore(path)
    for i in range(50):
        await engine.collection("items").insert({"id": f"i{i}", "n": i})
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0  # the writer itself never checkpoints
    in_wal, copied = await engine.checkpoint()
    assert in_wal > 0 and copied == in_wal
    await engine.close()
    assert not wal.exists() or wal.stat().st_size == 0
    reopened = SQLiteStore(path)
    assert await reopened.collection("items").count({}) == 50
    await reopened.close()


# -- batches ---------------------------------------------------------------------------------
async def test_insert_many_inserts_every_document(things: Collection) -> None:
    docs = [{"id": f"b{n}", "n": n} for n in range(250)]
    assert await things.insert_many(docs) == docs
    assert await things.count({}) == 250
    assert await things.get("b249") == {"id": "b249", "n": 249}
    assert await things.insert_many([]) == []


@pytest.mark.parametrize("clash", ["within", "stored"])
async def test_insert_many_with_a_duplicate_inserts_none(store: DocumentStore, clash: str) -> None:
    things = store.collection("things")
    await things.insert({"id": "kept", "v": 1})
    batch = [{"id": "new1"}, {"id": "new2"}, {"id": "new1" if clash == "within" else "kept"}]
    with pytest.raises(DuplicateKeyError):
        await things.insert_many(batch)
    assert ids(await things.find({})) == ["kept"]
    # Inside a transaction the caller goes on with, the failed batch leaves nothing either.
    async with store.transaction():
        await things.insert({"id": "before"})
        with pytest.raises(DuplicateKeyError):
            await things.insert_many(batch)
        await things.insert({"id": "after"})
    assert ids(await things.find({})) == ["after", "before", "kept"]


async def test_insert_many_needs_an_id_on_every_document(things: Collection) -> None:
    with pytest.raises(InvalidQueryError):
        await things.insert_many([{"id": "a"}, {"v": 1}])
    assert await things.count({}) == 0


async def test_update_each_applies_each_change_in_order(things: Collection) -> None:
    await things.insert_many([{"id": "a", "v": 1}, {"id": "b", "v": 10}])
    found = await things.update_each(
        [
            ({"id": "a"}, {"$inc": {"v": 1}}),
            ({"id": "a", "v": {"$gte": 2}}, {"$inc": {"v": 5}}),  # sees the change before it
            ({"id": "b", "v": {"$lt": 0}}, {"$set": {"v": 0}}),  # guard fails: None
            ({"id": "c"}, {"$inc": {"v": 3}}),  # nothing there, no upsert: None
        ]
    )
    assert found == [{"id": "a", "v": 2}, {"id": "a", "v": 7}, None, None]
    assert await things.find({}, sort=(("id", 1),)) == [{"id": "a", "v": 7}, {"id": "b", "v": 10}]
    assert await things.update_each([]) == []


async def test_update_each_upserts(things: Collection) -> None:
    await things.insert({"id": "a", "v": 1})
    found = await things.update_each(
        [({"id": k}, {"$inc": {"v": 2}, "$setOnInsert": {"new": True}}) for k in ("a", "z")],
        upsert=True,
    )
    assert found == [{"id": "a", "v": 3}, {"id": "z", "v": 2, "new": True}]


async def test_update_each_that_fails_midway_changes_nothing(store: DocumentStore) -> None:
    things = store.collection("things")
    await store.ensure_indexes([Index("things", ("email",), unique=True)])
    await things.insert_many([{"id": "a", "v": 1, "email": "a@x"}, {"id": "b", "email": "b@x"}])
    changes = [({"id": "a"}, {"$inc": {"v": 1}}), ({"id": "b"}, {"$set": {"email": "a@x"}})]
    with pytest.raises(DuplicateKeyError):
        await things.update_each(changes)
    async with store.transaction():
        with pytest.raises(DuplicateKeyError):
            await things.update_each(changes)
    assert await things.get("a") == {"id": "a", "v": 1, "email": "a@x"}
    assert await things.get("b") == {"id": "b", "email": "b@x"}
