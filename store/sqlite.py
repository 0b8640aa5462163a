"""The embedded document-store engine: one SQLite file in WAL mode.

Each collection is a table ``(id TEXT PRIMARY KEY, doc TEXT)`` holding JSON; indexes are
expression indexes over ``json_extract`` so filters and sorts use them. One writer connection
(behind an asyncio lock) runs every write and every transaction; a second connection serves
reads outside transactions from the last committed state, which WAL keeps readable while the
writer works. See :class:`_Worker` for where each connection runs. ``synchronous=NORMAL``
keeps every committed transaction across a process crash;
``synchronous=FULL`` adds power-loss durability at the cost of an fsync per commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from store.documents import (
    apply_update,
    check_update,
    decode_cursor,
    encode_cursor,
    full_sort,
    keyset_filter,
    upsert_seed,
)
from store.port import (
    Doc,
    DuplicateKeyError,
    Filter,
    Index,
    InvalidQueryError,
    Page,
    Sort,
    StoreError,
    Update,
)
from store.sqlquery import column, order, table, where

T = TypeVar("T")


class _Open:
    """The mark of an open transaction, carried by the tasks that run inside it. It goes
    inactive when the transaction ends, so a task spawned inside that outlives it stops
    joining (and takes the lock like any other)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.active = True


_in_transaction: contextvars.ContextVar[_Open | None] = contextvars.ContextVar(
    "sqlite_transaction", default=None
)


class _Worker:
    """One SQLite connection, used on the event loop or on a thread of its own.

    Without fsync on commit (``synchronous=NORMAL``) a statement costs microseconds, less than
    a hand-off to a thread and back (measured: a follow was 6 hand-offs of ~150 µs each under
    load), so the connection runs inline. With ``FULL`` each commit waits for the disk, which
    must not stall the event loop, so the connection gets its own thread.

    The writer never checkpoints by itself (a checkpoint fsyncs, even under ``NORMAL``): the
    store's checkpointer, a third connection on its own thread, moves WAL pages into the
    database file about once a second.
    """

    def __init__(self, path: str, synchronous: str, readonly: bool, *, threaded: bool) -> None:
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite") if threaded else None
        )
        self._path = path
        self._synchronous = synchronous
        self._readonly = readonly
        self.conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self.conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            if not self._readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            self.conn = conn
        return self.conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            return fn(self._open())
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        done = loop.run_in_executor(self._executor, lambda: ctx.run(fn, self._open()))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            # The statement goes on running on its thread; wait for it to end so the caller's
            # clean-up (a ROLLBACK) sees the connection in a known state, then cancel.
            await asyncio.wait([done])
            raise

    async def close(self) -> None:
        def _close(_: sqlite3.Connection) -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

        if self.conn is not None:
            await self.run(_close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)


class SQLiteStore:
    """The SQLite engine of :class:`store.port.DocumentStore`."""

    def __init__(
        self, path: str | Path, *, synchronous: str = "NORMAL", threaded: bool | None = None
    ) -> None:
        """``threaded`` (default: only with FULL) puts each connection on a thread: needed
        when another process (``lifeaccount worker``) writes the same file, since waiting
        out its write lock must block a thread, not the event loop."""
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = str(path)
        mode = synchronous.upper()
        on_threads = mode == "FULL" if threaded is None else threaded
        self._writer = _Worker(self.path, mode, readonly=False, threaded=on_threads)
        self._reader = _Worker(self.path, mode, readonly=True, threaded=on_threads)
        self._checkpointer = _Worker(self.path, mode, readonly=True, threaded=True)
        self._checkpoints: asyncio.Task[None] | None = None
        self._written = False
        self._lock = asyncio.Lock()
        self._tables: set[str] = set()
        # Tables created inside the open transaction: they exist only if it commits.
        self._tables_pending: set[str] = set()

    # -- plumbing -----------------------------------------------------------------------------
    def collection(self, name: str) -> SQLiteCollection:
        table(name)
        return SQLiteCollection(self, name)

    def _wrote(self) -> None:
        self._written = True
        if self._checkpoints is None:
            self._checkpoints = asyncio.create_task(self._checkpoint_forever())

    async def _checkpoint_forever(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            if self._written:
                self._written = False
                try:
                    await self.checkpoint()
                except StoreError:
                    self._written = True  # try again next round; the WAL keeps the data

    async def checkpoint(self) -> tuple[int, int]:
        """Copy committed WAL pages into the database file without blocking the writer;
        returns (pages in the WAL, pages copied)."""

        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            try:
                _, in_wal, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc
            return int(in_wal), int(copied)

        return await self._checkpointer.run(run)

    def _joined(self) -> bool:
        mark = _in_transaction.get()
        return mark is not None and mark.store is self and mark.active

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._joined():
            yield  # nested: join the enclosing transaction
            return
        async with self._lock:
            self._tables_pending.clear()
            mark = _Open(self)
            token = _in_transaction.set(mark)
            try:
                await self._writer.run(lambda c: self._translate("", _begin, c))
                yield
                mark.active = False  # tasks spawned inside must not join from here on
                await self._writer.run(_commit)
                self._wrote()
                self._tables |= self._tables_pending
            except BaseException:
                mark.active = False
                await self._writer.run(_rollback)
                raise
            finally:
                self._tables_pending.clear()
                _in_transaction.reset(token)

    async def write(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer, atomically (its own transaction unless one is open)."""
        await self._ensure_table(name)
        if self._joined():
            return await self._writer.run(lambda c: self._translate(name, fn, c))

        def atomic(conn: sqlite3.Connection) -> T:
            self._translate(name, _begin, conn)
            try:
                result = self._translate(name, fn, conn)
                _commit(conn)
            except BaseException:
                _rollback(conn)
                raise
            return result

        async with self._lock:
            result = await self._writer.run(atomic)
        self._wrote()
        return result

    async def read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._ensure_table(name)
        worker = self._writer if self._joined() else self._reader
        return await worker.run(lambda c: self._translate(name, fn, c))

    def _translate(
        self, name: str, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection
    ) -> T:
        try:
            return fn(conn)
        except sqlite3.IntegrityError as exc:
            message = str(exc)
            if "UNIQUE" not in message:
                raise StoreError(message) from exc
            raise DuplicateKeyError(name, _unique_fields(conn, name, message)) from exc
        except sqlite3.OperationalError as exc:
            raise StoreError(str(exc)) from exc

    async def _ensure_table(self, name: str) -> None:
        if name in self._tables:
            return
        sql = f"CREATE TABLE IF NOT EXISTS {table(name)} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)"
        if self._joined():
            # A rollback drops the table again, so it is only known to exist after the commit.
            if name not in self._tables_pending:
                await self._writer.run(lambda c: c.execute(sql))
                self._tables_pending.add(name)
            return
        async with self._lock:
            await self._writer.run(lambda c: c.execute(sql))
        self._tables.add(name)

    async def ensure_indexes(self, indexes: Sequence[Index]) -> None:
        for index in indexes:
            columns = ", ".join(column(f) for f in index.fields)
            unique = "UNIQUE " if index.unique else ""
            sql = (
                f"CREATE {unique}INDEX IF NOT EXISTS {index.name} "
                f"ON {table(index.collection)} ({columns})"
            )
            try:
                await self.write(index.collection, _statement(sql))
            except DuplicateKeyError as exc:
                # Existing documents break the new index, which is therefore not in the schema.
                raise DuplicateKeyError(index.collection, index.fields) from exc

    async def ping(self) -> None:
        if self._joined():
            await self._writer.run(lambda c: c.execute("SELECT 1").fetchone())
        else:
            async with self._lock:
                await self._writer.run(lambda c: c.execute("SELECT 1").fetchone())
        await self._reader.run(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        async with self._lock:
            await self._writer.run(_statement("PRAGMA wal_checkpoint(TRUNCATE)"))
        await self._checkpointer.close()
        await self._reader.close()
        await self._writer.close()


def _statement(sql: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute(sql)

    return run


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


def _all_or_none(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """``fn`` under a savepoint: a batch that fails midway inside an enclosing transaction
    (which the caller may go on with) leaves none of its writes behind."""

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("SAVEPOINT batch")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            raise
        conn.execute("RELEASE batch")
        return result

    return run


def _rollback(conn: sqlite3.Connection) -> None:
    # A failed COMMIT may leave the transaction open; the next BEGIN would then fail forever.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


_INDEX_NAME = re.compile(r"index '([^']+)'")
_INDEX_COLUMN = re.compile(r"json_extract\(doc, '\$\.([A-Za-z0-9_.]+)'\)|\bid\b")


def _unique_fields(conn: sqlite3.Connection, name: str, message: str) -> tuple[str, ...]:
    """The fields of the unique index SQLite names in ``message``, read back from the schema.

    Read from ``sqlite_master`` rather than remembered from ``ensure_indexes``, so the answer is
    right after a restart too; a primary-key clash names no index and is the ``id``.
    """
    found = _INDEX_NAME.search(message)
    if found is None:
        return ("id",)
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (found.group(1),)
    ).fetchone()
    if row is None or not row[0]:
        return ("id",)
    columns = str(row[0]).split(f"ON {table(name)} (", 1)[-1]
    return tuple(m.group(1) or "id" for m in _INDEX_COLUMN.finditer(columns))


def _rows(cursor: sqlite3.Cursor) -> list[Doc]:
    return [json.loads(doc) for (doc,) in cursor.fetchall()]


def _dump(doc: Doc) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class SQLiteCollection:
    def __init__(self, store: SQLiteStore, name: str) -> None:
        self.name = name
        self._store = store
        self._table = table(name)

    def _select(self, filter: Filter, sort: Sort, limit: int | None) -> tuple[str, list[Any]]:
        params: list[Any] = []
        sql = f"SELECT doc FROM {self._table} WHERE {where(filter, params)} ORDER BY {order(sort)}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return sql, params

    async def insert(self, doc: Doc) -> Doc:
        if not isinstance(doc.get("id"), str) or not doc["id"]:
            raise InvalidQueryError("a document needs a string id")
        body = _dump(doc)
        sql = f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)"
        await self._store.write(self.name, lambda c: c.execute(sql, (doc["id"], body)))
        return doc

    async def insert_many(self, docs: Sequence[Doc]) -> list[Doc]:
        if any(not isinstance(d.get("id"), str) or not d["id"] for d in docs):
            raise InvalidQueryError("a document needs a string id")
        rows = [(d["id"], _dump(d)) for d in docs]
        sql = f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)"
        if rows:
            await self._store.write(self.name, _all_or_none(lambda c: c.executemany(sql, rows)))
        return list(docs)

    async def get(self, id: str) -> Doc | None:
        return await self.find_one({"id": id})

    async def find_one(self, filter: Filter, *, sort: Sort = ()) -> Doc | None:
        found = await self.find(filter, sort=sort, limit=1)
        return found[0] if found else None

    async def find(self, filter: Filter, *, sort: Sort = (), limit: int | None = None) -> list[Doc]:
        sql, params = self._select(filter, sort, limit)
        return await self._store.read(self.name, lambda c: _rows(c.execute(sql, params)))

    async def count(self, filter: Filter) -> int:
        params: list[Any] = []
        sql = f"SELECT count(*) FROM {self._table} WHERE {where(filter, params)}"
        return int(
            await self._store.read(self.name, lambda c: c.execute(sql, params).fetchone()[0])
        )

    def _updater(
        self, filter: Filter, update: Update, upsert: bool
    ) -> Callable[[sqlite3.Connection], Doc | None]:
        check_update(update)
        sql, params = self._select(filter, (), 1)
        table = self._table

        def run(conn: sqlite3.Connection) -> Doc | None:
            found = _rows(conn.execute(sql, params))
            if found:
                new = apply_update(found[0], update)
                conn.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (_dump(new), new["id"]))
                return new
            if not upsert:
                return None
            new = apply_update(upsert_seed(filter), update, inserting=True)
            if not isinstance(new.get("id"), str):
                raise InvalidQueryError("an upsert needs the id in its filter or $setOnInsert")
            conn.execute(f"INSERT INTO {table} (id, doc) VALUES (?, ?)", (new["id"], _dump(new)))
            return new

        return run

    async def update_one(
        self, filter: Filter, update: Update, *, upsert: bool = False
    ) -> Doc | None:
        return await self._store.write(self.name, self._updater(filter, update, upsert))

    async def update_each(
        self, changes: Sequence[tuple[Filter, Update]], *, upsert: bool = False
    ) -> list[Doc | None]:
        runs = [self._updater(f, u, upsert) for f, u in changes]
        if not runs:
            return []
        return await self._store.write(self.name, _all_or_none(lambda c: [run(c) for run in runs]))

    async def update_many(self, filter: Filter, update: Update) -> int:
        check_update(update)
        sql, params = self._select(filter, (), None)
        table = self._table

        def run(conn: sqlite3.Connection) -> int:
            found = _rows(conn.execute(sql, params))
            for doc in found:
                new = apply_update(doc, update)
                conn.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (_dump(new), new["id"]))
            return len(found)

        return await self._store.write(self.name, run)

    async def delete_one(self, filter: Filter) -> Doc | None:
        sql, params = self._select(filter, (), 1)
        table = self._table

        def run(conn: sqlite3.Connection) -> Doc | None:
            found = _rows(conn.execute(sql, params))
            if not found:
                return None
            conn.execute(f"DELETE FROM {table} WHERE id = ?", (found[0]["id"],))
            return found[0]

        return await self._store.write(self.name, run)

    async def delete_many(self, filter: Filter) -> int:
        params: list[Any] = []
        sql = f"DELETE FROM {self._table} WHERE {where(filter, params)}"
        return await self._store.write(self.name, lambda c: c.execute(sql, params).rowcount)

    async def page(
        self, filter: Filter, *, sort: Sort, limit: int, cursor: str | None = None
    ) -> Page:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidQueryError("a page holds at least one item")
        keys = full_sort(sort)
        query = (
            filter if cursor is None else keyset_filter(filter, keys, decode_cursor(cursor, keys))
        )
        found = await self.find(query, sort=keys, limit=limit + 1)
        items = found[:limit]
        more = len(found) > limit
        return Page(items=items, next_cursor=encode_cursor(items[-1], keys) if more else None)
