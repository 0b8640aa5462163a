"""The document-store port: the small Mongo-shaped subset that domain code speaks.

Documents are JSON objects (``dict[str, Any]``) with a string ``id``. Filters use equality and
the operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists`` on (dotted) fields, combined with
``$and`` / ``$or``. Updates use ``$set $unset $inc $push $setOnInsert``. Every engine passes
``tests/store/test_contract.py``.

Unique indexes are sparse: a document that lacks one of the indexed fields is not constrained
by that index (SQLite's NULL semantics; MongoDB gets a partial filter on ``$exists``).

Operations issued by a task inside ``async with store.transaction():`` join that transaction,
so domain functions compose without passing a session around.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

Doc = dict[str, Any]
Filter = dict[str, Any]
Update = dict[str, Any]
SortKey = tuple[str, Literal[1, -1]]
Sort = Sequence[SortKey]


class StoreError(Exception):
    """Base class of the errors a store engine raises."""


class DuplicateKeyError(StoreError):
    """A write would break a unique index (or reuse an ``id``)."""

    def __init__(self, collection: str, fields: Sequence[str]) -> None:
        self.collection = collection
        self.fields = tuple(fields)
        super().__init__(f"duplicate key in {collection} on ({', '.join(fields)})")


class InvalidQueryError(StoreError):
    """A filter, update or sort the port does not support."""


class InvalidCursorError(StoreError):
    """A pagination cursor that this store did not issue for this query."""


@dataclass(frozen=True)
class Index:
    """A secondary index on one collection; ``unique`` indexes are sparse (see module doc)."""

    collection: str
    fields: tuple[str, ...]
    unique: bool = False

    @property
    def name(self) -> str:
        # Readable, plus a digest of the exact (collection, fields) so that ("a", "b") and
        # ("a_b",) cannot share a name and silently skip one another.
        kind = "ux" if self.unique else "ix"
        readable = "_".join(f.replace(".", "_") for f in self.fields)
        digest = hashlib.sha256(repr((self.collection, self.fields)).encode()).hexdigest()[:8]
        return f"{kind}_{self.collection}_{readable}_{digest}"


@dataclass(frozen=True)
class Page:
    items: list[Doc]
    next_cursor: str | None


class Collection(Protocol):
    name: str

    async def insert(self, doc: Doc) -> Doc:
        """Insert one document; raises :class:`DuplicateKeyError`."""
        ...

    async def insert_many(self, docs: Sequence[Doc]) -> list[Doc]:
        """Insert every document or none: a :class:`DuplicateKeyError` (with one another, or
        with what is stored) leaves the collection as it was."""
        ...

    async def get(self, id: str) -> Doc | None: ...

    async def find_one(self, filter: Filter, *, sort: Sort = ()) -> Doc | None: ...

    async def find(
        self, filter: Filter, *, sort: Sort = (), limit: int | None = None
    ) -> list[Doc]: ...

    async def count(self, filter: Filter) -> int: ...

    async def update_one(
        self, filter: Filter, update: Update, *, upsert: bool = False
    ) -> Doc | None:
        """Atomically update the first match and return it as it is after the update.

        Returns ``None`` when nothing matched and ``upsert`` is false. An upsert builds the new
        document from the filter's equality terms, ``$setOnInsert`` and the update.
        """
        ...

    async def update_many(self, filter: Filter, update: Update) -> int: ...

    async def update_each(
        self, changes: Sequence[tuple[Filter, Update]], *, upsert: bool = False
    ) -> list[Doc | None]:
        """Several ``update_one`` in order, all or none, in one trip to the engine (a batch
        of different documents: a payout's wallets). Returns each result as ``update_one``
        would; a failure leaves every document as it was."""
        ...

    async def delete_one(self, filter: Filter) -> Doc | None:
        """Delete the first match and return it."""
        ...

    async def delete_many(self, filter: Filter) -> int: ...

    async def page(
        self, filter: Filter, *, sort: Sort, limit: int, cursor: str | None = None
    ) -> Page:
        """Keyset pagination: ``limit`` items after ``cursor``, ordered by ``sort`` then id."""
        ...


class DocumentStore(Protocol):
    def collection(self, name: str) -> Collection: ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """All-or-nothing: operations inside commit together or not at all."""
        ...

    async def ensure_indexes(self, indexes: Sequence[Index]) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


T = TypeVar("T")


async def retry_if_raced(fields: tuple[str, ...], attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, once more if another writer inserted a document with the same unique
    value of one of ``fields`` between its look-up and its insert (an engine without a global
    write lock): the second attempt finds the winner's document and answers from it."""
    try:
        return await attempt()
    except DuplicateKeyError as exc:
        if not set(fields) & set(exc.fields):
            raise
        return await attempt()
