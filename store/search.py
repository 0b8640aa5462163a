"""The search port: a full-text index of accounts and contents, ranked for a search box.

Matching is case-insensitive *substring* matching, so Chinese needs no word segmenter
(DESIGN §3, the "search" row). A query is cut into terms at whitespace and punctuation; every
term must occur in some field of a document (AND). Terms of any length match, including the
one- and two-character terms that are common in Chinese (茶, 护肤).

Ranking is ``relevance × freshness × engagement``:

- relevance: the engine's text score (BM25 in the SQLite engine), where a match in a heavier
  field (:data:`FIELD_WEIGHTS`: a title over a body) counts for more;
- freshness: ``0.5 ** (age / HALF_LIFE)`` from ``published_at`` to the query's ``now``
  (1 for a document without ``published_at``, such as an account, or published in the future);
- engagement: ``1 + log1p(engagement)``, so popularity helps without drowning relevance.

Results come in non-increasing score order, ties broken by ``id`` then ``kind``. The cursor is
a keyset over that order and pins the ``now`` of the first page, so a listing stays consistent
across pages while the index is unchanged.

The pure helpers below are shared by every engine so that all of them cut queries, weigh
fields and encode cursors alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from store.port import InvalidCursorError, InvalidQueryError

# The fields a document may carry, heaviest first. A fixed set, so an engine can give each its
# own column and weight, and a typo in a caller's field name fails loudly instead of being
# silently unsearchable.
FIELD_WEIGHTS: Mapping[str, float] = {
    "title": 8.0,
    "name": 8.0,
    "handle": 6.0,
    "keywords": 4.0,
    "tags": 3.0,
    "body": 1.0,
}
FIELDS: tuple[str, ...] = tuple(FIELD_WEIGHTS)
HALF_LIFE_S = 7 * 24 * 3600.0
# A search box query is a few words; a longer input is cut rather than refused, so hostile or
# pasted input can never turn into an error or an unbounded index query.
MAX_QUERY_CHARS = 200
MAX_TERMS = 12
SNIPPET_CHARS = 160


@dataclass(frozen=True)
class Highlight:
    """Where the query's terms occur in one field: ``spans`` are ``[start, end)`` offsets into
    ``text``, an excerpt of the field (the field as indexed, NFKC-normalised). Offsets rather
    than markup, so whoever renders the excerpt escapes it and nothing is injected."""

    field: str
    text: str
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Hit:
    kind: str
    id: str
    account_id: str
    score: float
    highlights: tuple[Highlight, ...] = ()


@dataclass(frozen=True)
class SearchPage:
    items: list[Hit]
    next_cursor: str | None


@dataclass(frozen=True)
class SearchDoc:
    """A checked document as an engine stores it."""

    kind: str
    id: str
    account_id: str
    fields: dict[str, str]  # every name of FIELDS, NFKC-normalised, "" when absent
    published_s: float | None  # seconds since the epoch
    boost: float  # the engagement factor, 1 + log1p(engagement)
    visible: bool


class SearchIndex(Protocol):
    async def ensure(self) -> None:
        """Create the index's tables at start-up; idempotent."""
        ...

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
        """Index a document under ``(kind, id)``, replacing whatever was there. A document
        with ``visible=False`` never matches. Raises ``InvalidQueryError`` on bad input."""
        ...

    async def remove(self, kind: str, id: str) -> None:
        """Forget a document; removing one that is not indexed is not an error."""
        ...

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str],
        limit: int,
        cursor: str | None = None,
        now: datetime,
    ) -> SearchPage:
        """Up to ``limit`` hits of ``kinds`` after ``cursor``, best first. Any query text is
        accepted; one with no searchable term yields an empty page. Raises
        ``InvalidCursorError`` for a cursor not issued for this query and these kinds."""
        ...

    async def close(self) -> None: ...


# -- checking documents -----------------------------------------------------------------------


def check_doc(
    kind: str,
    id: str,
    *,
    account_id: str,
    fields: Mapping[str, str],
    published_at: str | None,
    engagement: float,
    visible: bool,
) -> SearchDoc:
    for label, value in (("kind", kind), ("id", id), ("account_id", account_id)):
        if not _text(value) or not value:
            raise InvalidQueryError(f"{label} must be a non-empty string")
    unknown = set(fields) - set(FIELD_WEIGHTS)
    if unknown:
        raise InvalidQueryError(f"unknown search fields {sorted(unknown)}; use {list(FIELDS)}")
    texts: dict[str, str] = {}
    for name in FIELDS:
        value = fields.get(name, "")
        if not _text(value):
            raise InvalidQueryError(f"search field {name!r} must be a string of Unicode text")
        texts[name] = unicodedata.normalize("NFKC", value)
    if isinstance(engagement, bool) or not isinstance(engagement, int | float):
        raise InvalidQueryError("engagement must be a number")
    if not math.isfinite(engagement) or engagement < 0:
        raise InvalidQueryError("engagement must be finite and not negative")
    published_s = None if published_at is None else _epoch(published_at)
    return SearchDoc(
        kind, id, account_id, texts, published_s, 1.0 + math.log1p(engagement), bool(visible)
    )


def _text(value: object) -> bool:
    # JSON's "\ud800" escape decodes to a lone surrogate, which no engine can store as UTF-8.
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _epoch(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidQueryError("published_at must be an RFC 3339 time with an offset")
    return moment.timestamp()


def epoch_now(now: datetime) -> float:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidQueryError("now must be a timezone-aware datetime")
    return now.timestamp()


# -- cutting text into terms ------------------------------------------------------------------

# Punctuation, separators, controls, maths and modifier symbols split terms: users type 护肤，
# 新品 or "C#" meaning words, and dropping them keeps quotes and operators out of engine query
# languages. Other symbols (emoji, currency: ¥99) stay searchable.
_SPLIT_CATEGORIES = ("P", "Z", "C")
_SPLIT_SYMBOLS = ("Sm", "Sk")


def _splits(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in _SPLIT_CATEGORIES or category in _SPLIT_SYMBOLS


def segments(text: str) -> list[str]:
    """The runs of searchable characters in ``text``, NFKC-normalised and lower-cased."""
    out: list[str] = []
    run: list[str] = []
    for ch in unicodedata.normalize("NFKC", text).lower():
        if _splits(ch):
            if run:
                out.append("".join(run))
                run = []
        else:
            run.append(ch)
    if run:
        out.append("".join(run))
    return out


def terms(query: str) -> tuple[str, ...]:
    """The distinct terms of a query, at most :data:`MAX_TERMS`; a term contained in another
    is dropped, as the longer one already requires it."""
    if not isinstance(query, str):
        raise InvalidQueryError("a query is a string")
    # Cut before and after normalising: NFKC can expand one character into eighteen (U+FDFA).
    text = unicodedata.normalize("NFKC", query[:MAX_QUERY_CHARS])[:MAX_QUERY_CHARS]
    found: list[str] = []
    for term in segments(text):
        if term not in found:
            found.append(term)
    kept = [t for t in found if not any(t != other and t in other for other in found)]
    return tuple(kept[:MAX_TERMS])


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    if isinstance(kinds, str) or not all(isinstance(k, str) and k for k in kinds):
        raise InvalidQueryError("kinds is a list of non-empty strings")
    return tuple(sorted(set(kinds)))


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidQueryError("a page holds at least one item")
    return limit


# -- cursors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class After:
    """The position a cursor encodes: the last hit of a page, and the page's ``now``."""

    now_s: float
    score: float
    id: str
    kind: str


def _listing_tag(query_terms: Sequence[str], kinds: Sequence[str]) -> str:
    raw = json.dumps(["search", list(query_terms), list(kinds)], ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def encode_cursor(query_terms: Sequence[str], kinds: Sequence[str], after: After) -> str:
    body = [_listing_tag(query_terms, kinds), after.now_s, after.score, after.id, after.kind]
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, query_terms: Sequence[str], kinds: Sequence[str]) -> After:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, now_s, score, id, kind = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("the cursor is not one this server issued") from exc
    if tag != _listing_tag(query_terms, kinds):
        raise InvalidCursorError("the cursor belongs to a different search")
    numbers_ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in (now_s, score)
    )
    if not numbers_ok or not isinstance(id, str) or not isinstance(kind, str):
        raise InvalidCursorError("the cursor is not one this server issued")
    return After(float(now_s), float(score), id, kind)


# -- highlights -------------------------------------------------------------------------------


def highlights(fields: Mapping[str, str], query_terms: Sequence[str]) -> tuple[Highlight, ...]:
    """An excerpt of each field that contains a term, with the terms' spans, heaviest first."""
    if not query_terms:
        return ()
    pattern = re.compile("|".join(re.escape(t) for t in query_terms), re.IGNORECASE)
    out: list[Highlight] = []
    for name in FIELDS:
        text = fields.get(name, "")
        spans = [m.span() for m in pattern.finditer(text)]
        if not spans:
            continue
        start = 0 if len(text) <= SNIPPET_CHARS else max(0, spans[0][0] - SNIPPET_CHARS // 4)
        end = min(len(text), start + SNIPPET_CHARS)
        shown = tuple((a - start, min(b, end) - start) for a, b in spans if a < end)
        out.append(Highlight(name, text[start:end], shown))
    return tuple(out)
