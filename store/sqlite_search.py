"""The embedded search engine: SQLite FTS5 in the document store's own file.

Three tables:

- ``search_docs``: one row per visible document, its metadata and its text (the fields of
  :data:`store.search.FIELDS`, NFKC-normalised), keyed by an integer ``doc_no`` that both
  full-text tables use as their rowid;
- ``search_text``: FTS5 with the ``trigram`` tokenizer over ``search_docs`` (external content,
  so the text is stored once). It answers terms of three characters or more as substring
  phrases, case-insensitively, with BM25;
- ``search_grams``: a contentless FTS5 "bigram side index" for the shorter terms trigrams
  cannot index (茶, 护肤, "or"). Each run of text becomes tokens naming its bigrams, plus its last
  character alone, so a two-character term is one token lookup and a one-character term a
  prefix lookup (served by a prefix index).

Why a bigram index rather than a ``LIKE`` scan: on 10,000 generated Chinese documents (about
200 characters each) a two-character query took 0.4-0.5 ms through the bigram index against
10 ms as a ``LIKE`` scan over ``search_docs``, and a scan grows with the corpus whatever the
query. The price is space: there, the bigram index took 17.6 MB beside 15.2 MB of trigram
index and 7.1 MB of documents.

Invisible documents are not stored at all, so no query path can ever return one.

Writes go through the :class:`~store.sqlite.SQLiteStore`'s writer rather than a connection of
the index's own: they share its lock (a second writer connection, inline on the event loop,
would wait out SQLite's busy timeout there while a store transaction holds the write lock), an
``upsert`` inside ``store.transaction()`` commits or rolls back with the content it indexes,
and the store's checkpointer covers the index's writes. Searches read through a connection of
the index's own, on a thread (see :class:`_Reader`), so they see committed data only.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from store.port import StoreError
from store.search import (
    FIELD_WEIGHTS,
    FIELDS,
    HALF_LIFE_S,
    After,
    Hit,
    SearchDoc,
    SearchPage,
    check_doc,
    check_kinds,
    check_limit,
    decode_cursor,
    encode_cursor,
    epoch_now,
    highlights,
    segments,
    terms,
)
from store.sqlite import SQLiteStore

T = TypeVar("T")

# SQLiteStore.write/read take a collection name and create that collection's table on first
# use; the index's own tables are made by `ensure`, so this name only gets an empty `c_search`.
_COLLECTION = "search"
_COLUMNS = ", ".join(FIELDS)
_MARKS = ", ".join("?" for _ in FIELDS)
_WEIGHTS = ", ".join(repr(FIELD_WEIGHTS[f]) for f in FIELDS)
_TRIGRAM_MIN_VERSION = (3, 34, 0)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS search_docs ("
    " doc_no INTEGER PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL,"
    " account_id TEXT NOT NULL, published_s REAL, boost REAL NOT NULL, "
    + ", ".join(f"{f} TEXT NOT NULL" for f in FIELDS)
    + ")",
    "CREATE UNIQUE INDEX IF NOT EXISTS search_docs_key ON search_docs (kind, id)",
    # case_sensitive 0 folds case; detail stays full, as a term longer than three characters
    # is a phrase of consecutive trigrams.
    f"CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5({_COLUMNS},"
    " content='search_docs', content_rowid='doc_no', tokenize='trigram case_sensitive 0')",
    # Contentless: its tokens are derived from search_docs, so they are not stored twice. The
    # 'ascii' tokenizer suffices since tokens are hex; prefix='6' makes a one-character term
    # (the first 6 hex digits of a token) a single index lookup instead of a range merge.
    # detail stays full because BM25 needs term frequencies (it returns 0 under detail=column).
    f"CREATE VIRTUAL TABLE IF NOT EXISTS search_grams USING fts5({_COLUMNS},"
    " content='', tokenize='ascii', prefix='6')",
)


def _code(ch: str) -> str:
    # Fixed width, so the code of one character is never a prefix of another's.
    return f"{ord(ch):06x}"


def grams(text: str) -> str:
    """The bigram-index tokens of ``text``: per run, each bigram and the last character."""
    out: list[str] = []
    for run in segments(text):
        codes = [_code(ch) for ch in run]
        out.extend(a + b for a, b in zip(codes, codes[1:], strict=False))
        out.append(codes[-1])
    return " ".join(out)


def _phrase(term: str) -> str:
    # Terms hold no quotes (quotes split terms, see store.search.segments), but the escaping is
    # what makes any text a literal FTS5 phrase, so it stays.
    return '"' + term.replace('"', '""') + '"'


def _gram_query(term: str) -> str:
    if len(term) == 1:
        return f'"{_code(term)}" *'
    return f'"{_code(term[0])}{_code(term[1])}"'


class _Reader:
    """The index's own read connection, on a thread of its own whatever ``synchronous`` is.

    The store runs its reads inline on the event loop because a document read costs
    microseconds, less than a hand-off to a thread (~0.15 ms). A search costs more: 0.4 ms for
    a selective term, and 10-12 ms on 10,000 documents for a one-character term that most of
    them contain (ranking every match), so it would stall every socket of the process; on a
    thread it does not, as SQLite runs without the GIL.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-search")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA query_only = ON")
            try:
                conn.execute("SELECT exp(0)")
            except sqlite3.OperationalError:
                # exp() is one of SQLite's optional math functions; a build without them
                # (some platform Pythons) gets Python's on this connection.
                conn.create_function("exp", 1, math.exp, deterministic=True)
            self._conn = conn
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._open()))
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


class SQLiteSearch:
    """The SQLite engine of :class:`store.search.SearchIndex`, on a store's database file.

    Writes go through the store (see the module doc); searches through a reader of the
    index's own, which ``close`` closes. Close the index before the store.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._reader = _Reader(store.path)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the search index is closed")

    async def ensure(self) -> None:
        self._check_open()
        if sqlite3.sqlite_version_info < _TRIGRAM_MIN_VERSION:
            raise StoreError(
                f"search needs SQLite 3.34 or later for the trigram tokenizer; "
                f"this Python has {sqlite3.sqlite_version}"
            )

        def run(conn: sqlite3.Connection) -> None:
            for sql in _SCHEMA:
                conn.execute(sql)

        await self._store.write(_COLLECTION, run)

    async def upsert(
        self,
        kind: str,
        id: str,
        *,
        account_id: str,
        fields: Mapping[str, str],
        published_at: str | None,
        engagement: float,
        visible: bool,
    ) -> None:
        self._check_open()
        doc = check_doc(
            kind,
            id,
            account_id=account_id,
            fields=fields,
            published_at=published_at,
            engagement=engagement,
            visible=visible,
        )
        await self._store.write(_COLLECTION, lambda conn: _replace(conn, doc))

    async def remove(self, kind: str, id: str) -> None:
        self._check_open()

        def run(conn: sqlite3.Connection) -> None:
            _forget(conn, kind, id)

        await self._store.write(_COLLECTION, run)

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str],
        limit: int,
        cursor: str | None = None,
        now: datetime,
    ) -> SearchPage:
        self._check_open()
        wanted = check_kinds(kinds)
        check_limit(limit)
        now_s = epoch_now(now)
        query_terms = terms(query)
        after = None if cursor is None else decode_cursor(cursor, query_terms, wanted)
        if not query_terms or not wanted:
            return SearchPage(items=[], next_cursor=None)
        if after is not None:
            now_s = after.now_s  # the first page's clock, so scores stay comparable
        sql, params = _select(query_terms, wanted, limit + 1, now_s, after)
        rows = await self._reader.run(lambda conn: conn.execute(sql, params).fetchall())
        items = [
            Hit(
                kind=row[0],
                id=row[1],
                account_id=row[2],
                score=row[3],
                highlights=highlights(dict(zip(FIELDS, row[4:], strict=True)), query_terms),
            )
            for row in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            position = After(now_s, last.score, last.id, last.kind)
            next_cursor = encode_cursor(query_terms, wanted, position)
        return SearchPage(items=items, next_cursor=next_cursor)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._reader.close()


# -- writes -----------------------------------------------------------------------------------


def _forget(conn: sqlite3.Connection, kind: str, id: str) -> int | None:
    """Drop a document from all three tables; returns its doc_no, if it was there."""
    row = conn.execute(
        f"SELECT doc_no, {_COLUMNS} FROM search_docs WHERE kind = ? AND id = ?", (kind, id)
    ).fetchone()
    if row is None:
        return None
    doc_no, texts = int(row[0]), [str(t) for t in row[1:]]
    # External-content and contentless FTS5 tables delete by being told the exact values that
    # were indexed: the stored text, and the grams derived from it the same way as at insert.
    conn.execute(
        f"INSERT INTO search_text (search_text, rowid, {_COLUMNS}) VALUES ('delete', ?, {_MARKS})",
        (doc_no, *texts),
    )
    conn.execute(
        f"INSERT INTO search_grams (search_grams, rowid, {_COLUMNS})"
        f" VALUES ('delete', ?, {_MARKS})",
        (doc_no, *(grams(t) for t in texts)),
    )
    conn.execute("DELETE FROM search_docs WHERE doc_no = ?", (doc_no,))
    return doc_no


def _replace(conn: sqlite3.Connection, doc: SearchDoc) -> None:
    doc_no = _forget(conn, doc.kind, doc.id)
    if not doc.visible:
        return
    texts = [doc.fields[f] for f in FIELDS]
    inserted = conn.execute(
        f"INSERT INTO search_docs (doc_no, kind, id, account_id, published_s, boost, {_COLUMNS})"
        f" VALUES (?, ?, ?, ?, ?, ?, {_MARKS})",
        (doc_no, doc.kind, doc.id, doc.account_id, doc.published_s, doc.boost, *texts),
    )
    doc_no = inserted.lastrowid
    conn.execute(
        f"INSERT INTO search_text (rowid, {_COLUMNS}) VALUES (?, {_MARKS})", (doc_no, *texts)
    )
    conn.execute(
        f"INSERT INTO search_grams (rowid, {_COLUMNS}) VALUES (?, {_MARKS})",
        (doc_no, *(grams(t) for t in texts)),
    )


# -- queries ----------------------------------------------------------------------------------


def _select(
    query_terms: Sequence[str],
    kinds: Sequence[str],
    limit: int,
    now_s: float,
    after: After | None,
) -> tuple[str, dict[str, Any]]:
    """One statement, so a page and its highlights come from one snapshot."""
    long = [t for t in query_terms if len(t) >= 3]
    short = [t for t in query_terms if len(t) < 3]
    params: dict[str, Any] = {"now": now_s, "decay": -math.log(2) / HALF_LIFE_S, "limit": limit}
    ctes: list[str] = []
    joins: list[str] = []
    relevance: list[str] = []
    # MATERIALIZED keeps each MATCH in a subquery of its own: bm25() may only run in the query
    # that does the matching, which flattening into the join would break.
    if long:
        params["text_match"] = " AND ".join(_phrase(t) for t in long)
        ctes.append(
            f"t AS MATERIALIZED (SELECT rowid AS n, bm25(search_text, {_WEIGHTS}) AS s"
            " FROM search_text WHERE search_text MATCH :text_match)"
        )
        joins.append("JOIN t ON t.n = d.doc_no")
        relevance.append("t.s")
    if short:
        params["gram_match"] = " AND ".join(_gram_query(t) for t in short)
        ctes.append(
            f"g AS MATERIALIZED (SELECT rowid AS n, bm25(search_grams, {_WEIGHTS}) AS s"
            " FROM search_grams WHERE search_grams MATCH :gram_match)"
        )
        joins.append("JOIN g ON g.n = d.doc_no")
        relevance.append("g.s")
    kind_marks = []
    for i, kind in enumerate(kinds):
        params[f"k{i}"] = kind
        kind_marks.append(f":k{i}")
    # bm25() is negative, better when lower. Freshness: see store.search; the future counts
    # as now, so a clock skew between writers cannot push a document above 1.
    score = (
        f"-({' + '.join(relevance)}) * d.boost * CASE"
        " WHEN d.published_s IS NULL OR d.published_s >= :now THEN 1.0"
        " ELSE exp(:decay * (:now - d.published_s)) END"
    )
    keyset = ""
    if after is not None:
        params.update(a_score=after.score, a_id=after.id, a_kind=after.kind)
        keyset = (
            "WHERE score < :a_score OR (score = :a_score"
            " AND (id > :a_id OR (id = :a_id AND kind > :a_kind)))"
        )
    sql = (
        f"WITH {', '.join(ctes)}, hits AS ("
        f" SELECT d.doc_no, d.kind, d.id, d.account_id, {score} AS score"
        f" FROM search_docs d {' '.join(joins)} WHERE d.kind IN ({', '.join(kind_marks)}))"
        f" SELECT h.kind, h.id, h.account_id, h.score, {', '.join('d.' + f for f in FIELDS)}"
        f" FROM (SELECT * FROM hits {keyset} ORDER BY score DESC, id, kind LIMIT :limit) h"
        " JOIN search_docs d ON d.doc_no = h.doc_no ORDER BY h.score DESC, h.id, h.kind"
    )
    return sql, params
