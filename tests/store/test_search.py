"""The search contract: every engine of ``store.search.SearchIndex`` passes this file.

Tests speak only the port. An engine joins the suite as one more entry of ``OPENERS``: its
opener, called within one test, must return an index on the *same* data each time (that is how
restarts are tested), with fresh data for every test, plus a function that closes whatever it
opened. A few SQLite-only tests at the end check what the port cannot express.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store.port import InvalidCursorError, InvalidQueryError
from store.search import SearchIndex, SearchPage
from store.sqlite import SQLiteStore
from store.sqlite_search import SQLiteSearch

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
Closer = Callable[[], Awaitable[None]]
Opener = Callable[[], Awaitable[tuple[SearchIndex, Closer]]]


def _sqlite(tmp_path: Path, synchronous: str) -> Opener:
    async def open() -> tuple[SearchIndex, Closer]:
        store = SQLiteStore(tmp_path / "search.db", synchronous=synchronous)
        index = SQLiteSearch(store)
        await index.ensure()

        async def close() -> None:
            await index.close()
            await store.close()

        return index, close

    return open


OPENERS: dict[str, Callable[[Path], Opener]] = {
    "sqlite": lambda tmp_path: _sqlite(tmp_path, "NORMAL"),
    # synchronous=FULL runs the store's connections on threads instead of the event loop.
    "sqlite-full": lambda tmp_path: _sqlite(tmp_path, "FULL"),
}


@dataclass
class Engine:
    """Opens indexes on one test's data, and closes whatever is still open at teardown."""

    opener: Opener
    open_ones: list[tuple[SearchIndex, Closer]] = field(default_factory=list)

    async def open(self) -> SearchIndex:
        opened = await self.opener()
        self.open_ones.append(opened)
        return opened[0]

    async def close(self, index: SearchIndex) -> None:
        for i, (candidate, closer) in enumerate(self.open_ones):
            if candidate is index:
                del self.open_ones[i]
                await closer()
                return
        raise AssertionError("not open")

    async def close_all(self) -> None:
        while self.open_ones:
            await self.close(self.open_ones[-1][0])


@pytest.fixture(params=sorted(OPENERS))
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    opened = Engine(OPENERS[request.param](tmp_path))
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest.fixture
async def index(engine: Engine) -> SearchIndex:
    return await engine.open()


async def put(
    index: SearchIndex,
    id: str,
    *,
    kind: str = "content",
    title: str = "",
    body: str = "",
    days_old: float | None = 1.0,
    engagement: float = 0,
    visible: bool = True,
    account_id: str = "acc_1",
) -> None:
    published = None if days_old is None else (NOW - timedelta(days=days_old)).isoformat()
    fields = {k: v for k, v in (("title", title), ("body", body)) if v}
    await index.upsert(
        kind,
        id,
        account_id=account_id,
        fields=fields,
        published_at=published,
        engagement=engagement,
        visible=visible,
    )


async def search(
    index: SearchIndex, query: str, kinds: tuple[str, ...] = ("content",)
) -> list[str]:
    page = await index.search(query, kinds=kinds, limit=100, now=NOW)
    assert page.next_cursor is None
    return [hit.id for hit in page.items]


# -- matching ---------------------------------------------------------------------------------

CORPUS = {
    "skin": ("秋冬护肤指南", "保湿是关键。"),
    "launch": ("新品上市", "本周限时优惠"),
    "preview": ("新品预告", "下个月见"),
    "listed": ("上市公司年报", "营收增长"),
    "tea": ("龙井绿茶", "明前采摘"),
    "life": ("欢迎来到生活号", "关注我们"),
    "run": ("户外跑步", "护理你的鞋子"),
    "latin": ("Hello World", "Tea Time with ＡＢＣ"),
}


@pytest.fixture
async def corpus(index: SearchIndex) -> SearchIndex:
    for id, (title, body) in CORPUS.items():
        await put(index, id, title=title, body=body)
    return index


CHINESE = [
    ("茶", {"tea"}),  # the last character of a run
    ("龙", {"tea"}),  # the first
    ("护", {"skin", "run"}),
    ("护肤", {"skin"}),
    ("新品", {"launch", "preview"}),
    ("上市", {"launch", "listed"}),
    ("生活号", {"life"}),
    ("品上市", {"launch"}),
    ("新品上市", {"launch"}),
    ("欢迎来到生活号", {"life"}),
    ("生活号吗", set()),
    ("护肤品", set()),
    ("绿", {"tea"}),
    ("鞋", {"run"}),
]


async def test_chinese_substrings_of_every_length_match_exactly_the_documents_holding_them(
    corpus: SearchIndex,
) -> None:
    # One corpus for the whole table (not a parametrized test per row) keeps the suite fast.
    assert {q: set(await search(corpus, q)) for q, _ in CHINESE} == dict(CHINESE)


LATIN = [
    ("hello", {"latin"}),
    ("HELLO", {"latin"}),
    ("wOrLd", {"latin"}),
    ("TEA", {"latin"}),  # in the body of "latin"; the title 龙井绿茶 has no Latin
    ("te", {"latin"}),
    ("W", {"latin"}),
    ("ＨＥＬＬＯ", {"latin"}),  # full-width, as Chinese input methods type it
    ("abc", {"latin"}),  # stored full-width, searched half-width
    ("worlds", set()),
    ("xy", set()),
]


async def test_latin_matches_ignore_case_and_width(corpus: SearchIndex) -> None:
    assert {q: set(await search(corpus, q)) for q, _ in LATIN} == dict(LATIN)


ALL_TERMS = [
    ("护肤 保湿", {"skin"}),
    ("护肤 跑步", set()),
    ("新品 限时", {"launch"}),  # two short terms
    ("新品上市 限时", {"launch"}),  # a long and a short one
    ("上市 年报", {"listed"}),
    ("新品上市 本周限时优惠", {"launch"}),  # two long ones, in two fields
    ("hello 茶", set()),
    ("hello tea", {"latin"}),
    ("护肤，保湿", {"skin"}),  # punctuation separates terms too
    ("新品 新品上市", {"launch"}),
]


async def test_every_term_must_match(corpus: SearchIndex) -> None:
    assert {q: set(await search(corpus, q)) for q, _ in ALL_TERMS} == dict(ALL_TERMS)


HOSTILE = [
    "",
    "   ",
    '"',
    '""',
    "*",
    ")",
    "(",
    "，。！",
    "OR",
    "AND",
    "NOT",
    "NEAR(",
    "NEAR(护肤 保湿, 2)",
    "'; DROP TABLE search_docs; --",
    'a"b',
    "title:茶",
    "{title body}: 茶",
    "^茶",
    "茶*",
    "-茶",
    "+",
    "🍵😀",
    "\x00\x01",
    "\ud800",
    "a\ud800bcd \udfff\udfff\udfff",
    "\ufdfa" * 200,  # NFKC expands each into 18 characters
    "x" * 2000,
    "茶" * 2000,
    " ".join(f"t{i}" for i in range(300)),
]


async def test_hostile_input_never_raises_and_breaks_nothing(corpus: SearchIndex) -> None:
    for query in HOSTILE:
        page = await corpus.search(query, kinds=["content"], limit=20, now=NOW)
        assert isinstance(page, SearchPage), query
    assert set(await search(corpus, "护肤")) == {"skin"}


async def test_queries_without_a_searchable_character_return_nothing(corpus: SearchIndex) -> None:
    for query in ["", "   ", '"', '""', "*", ")", "(", "，。！", "\x00\x01"]:
        page = await corpus.search(query, kinds=["content"], limit=20, now=NOW)
        assert page == SearchPage(items=[], next_cursor=None), query


@pytest.mark.parametrize(
    ("query", "expected"),
    [('"护肤"', {"skin"}), ("茶*", {"tea"}), ("(新品上市)", {"launch"}), ("NEAR(护肤", set())],
)
async def test_operators_are_read_as_text(
    corpus: SearchIndex, query: str, expected: set[str]
) -> None:
    assert set(await search(corpus, query)) == expected


async def test_emoji_are_searchable(index: SearchIndex) -> None:
    await put(index, "emoji", title="🍵 下午茶")
    await put(index, "plain", title="下午茶")
    assert await search(index, "🍵") == ["emoji"]
    assert set(await search(index, "下午茶")) == {"emoji", "plain"}


async def test_kinds_select_what_is_searched(index: SearchIndex) -> None:
    await put(index, "acc_tea", kind="account", title="茶语生活号", days_old=None)
    await put(index, "c_tea", title="茶")
    assert await search(index, "茶", kinds=("account",)) == ["acc_tea"]
    assert set(await search(index, "茶", kinds=("account", "content"))) == {"acc_tea", "c_tea"}
    assert await search(index, "茶", kinds=()) == []


async def test_a_hit_carries_its_account_and_where_it_matched(index: SearchIndex) -> None:
    await put(index, "c1", title="秋冬护肤指南", body="护肤先保湿", account_id="acc_9")
    page = await index.search("护肤", kinds=["content"], limit=5, now=NOW)
    (hit,) = page.items
    assert (hit.kind, hit.id, hit.account_id) == ("content", "c1", "acc_9")
    assert hit.score > 0
    by_field = {h.field: h for h in hit.highlights}
    assert set(by_field) == {"title", "body"}
    title = by_field["title"]
    assert [title.text[a:b] for a, b in title.spans] == ["护肤"]
    assert [by_field["body"].text[a:b] for a, b in by_field["body"].spans] == ["护肤"]


# -- visibility, removal, replacement ---------------------------------------------------------


async def test_invisible_documents_never_match(index: SearchIndex) -> None:
    await put(index, "hidden", title="护肤新品上市", visible=False)
    await put(index, "hidden_later", title="护肤新品上市")
    await put(index, "hidden_later", title="护肤新品上市", visible=False)
    for query in ("护", "护肤", "新品上市"):
        assert await search(index, query) == []


async def test_removed_documents_never_match(index: SearchIndex) -> None:
    await put(index, "gone", title="护肤新品上市")
    await put(index, "kept", title="护肤")
    await index.remove("content", "gone")
    await index.remove("content", "never-indexed")  # not an error
    assert await search(index, "护肤") == ["kept"]
    assert await search(index, "新品上市") == []


async def test_upsert_replaces_the_old_text(index: SearchIndex) -> None:
    await put(index, "c1", title="旧标题 abc护肤", body="old words", account_id="acc_1")
    await put(index, "c1", title="新标题", body="fresh", account_id="acc_2")
    for query in ("旧", "护肤", "abc护", "old", "旧标题"):
        assert await search(index, query) == [], query
    assert await search(index, "新标题") == ["c1"]
    page = await index.search("fresh", kinds=["content"], limit=5, now=NOW)
    assert [(h.id, h.account_id) for h in page.items] == [("c1", "acc_2")]


async def test_the_same_id_under_two_kinds_is_two_documents(index: SearchIndex) -> None:
    await put(index, "x1", kind="account", title="茶")
    await put(index, "x1", kind="content", title="茶")
    await index.remove("content", "x1")
    assert await search(index, "茶", kinds=("account", "content")) == ["x1"]


# -- ranking ----------------------------------------------------------------------------------


async def ranked(index: SearchIndex, query: str) -> list[tuple[str, float]]:
    page = await index.search(query, kinds=["content"], limit=100, now=NOW)
    return [(hit.id, hit.score) for hit in page.items]


@pytest.mark.parametrize("query", ["护肤", "护肤精华"])
async def test_fresher_beats_older_by_the_half_life(index: SearchIndex, query: str) -> None:
    await put(index, "older", title="护肤精华", days_old=15)
    await put(index, "newer", title="护肤精华", days_old=1)
    await put(index, "future", title="护肤精华", days_old=-3)  # counts as now
    (first, s_first), (second, s_second), (third, s_third) = await ranked(index, query)
    assert (first, second, third) == ("future", "newer", "older")
    assert s_second / s_first == pytest.approx(0.5 ** (1 / 7))
    assert s_third / s_second == pytest.approx(0.5 ** (14 / 7))


@pytest.mark.parametrize("query", ["茶", "龙井茶"])
async def test_more_engaged_beats_less(index: SearchIndex, query: str) -> None:
    await put(index, "quiet", title="龙井茶", engagement=0)
    await put(index, "loved", title="龙井茶", engagement=100)
    (first, s_first), (second, s_second) = await ranked(index, query)
    assert (first, second) == ("loved", "quiet")
    assert s_first / s_second == pytest.approx(1 + math.log1p(100))


@pytest.mark.parametrize("query", ["护肤", "护肤品"])
async def test_a_title_match_beats_a_body_mention(index: SearchIndex, query: str) -> None:
    # The same words, swapped between the fields: only the fields' weights tell them apart,
    # and the id order alone would put the body mention first.
    await put(index, "a_body", title="今日分享", body="护肤品")
    await put(index, "b_title", title="护肤品", body="今日分享")
    await put(index, "c_other", title="今日分享", body="没有相关内容")
    assert [id for id, _ in await ranked(index, query)] == ["b_title", "a_body"]


async def test_equal_scores_are_ordered_by_id(index: SearchIndex) -> None:
    for id in ("c3", "c1", "c2"):
        await put(index, id, title="护肤")
    assert await search(index, "护肤") == ["c1", "c2", "c3"]


# -- paging -----------------------------------------------------------------------------------


async def test_paging_gives_every_hit_once_in_score_order(index: SearchIndex) -> None:
    for i in range(250):
        # Ten distinct scores, 25 documents each, inserted out of id order: ties straddle the
        # page boundaries, where only the id tie-breaker keeps the pages apart.
        await put(index, f"c{(i * 37) % 250:03d}", title="龙井茶", days_old=i % 5, engagement=i % 2)
    await put(index, "other", title="咖啡")
    seen: list[tuple[float, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        # A later clock on later pages: the cursor keeps the first page's, so nothing shifts.
        now = NOW + timedelta(days=30 * pages)
        page = await index.search("茶", kinds=["content"], limit=20, cursor=cursor, now=now)
        pages += 1
        assert len(page.items) == (20 if page.next_cursor else 10)
        seen.extend((hit.score, hit.id) for hit in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 13
    ids = [id for _, id in seen]
    assert sorted(ids) == sorted(f"c{i:03d}" for i in range(250))
    assert seen == sorted(seen, key=lambda s: (-s[0], s[1]))
    assert len({score for score, _ in seen}) == 10


async def cursor_for(index: SearchIndex, query: str, kinds: list[str]) -> str:
    page = await index.search(query, kinds=kinds, limit=1, now=NOW)
    assert page.next_cursor is not None
    return page.next_cursor


def _b64(raw: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


async def test_a_cursor_only_serves_the_search_that_issued_it(corpus: SearchIndex) -> None:
    cursor = await cursor_for(corpus, "新品", ["content"])
    page = await corpus.search("新品", kinds=["content"], limit=5, cursor=cursor, now=NOW)
    assert len(page.items) == 1
    forged = [
        "",
        "!!!",
        "not-base64-json",
        cursor[:-3],
        _b64(["x", 1.0, 1.0, "a", "content"]),
        _b64({"score": 1}),
        _b64([1, 2]),
        await cursor_for(corpus, "上市", ["content"]),
        await cursor_for(corpus, "新品", ["content", "account"]),
    ]
    for bad in forged:
        with pytest.raises(InvalidCursorError):
            await corpus.search("新品", kinds=["content"], limit=5, cursor=bad, now=NOW)


# -- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"fields": {"summary": "护肤"}},
        {"fields": {"title": 7}},
        {"engagement": -1},
        {"engagement": float("nan")},
        {"engagement": True},
        {"published_at": "2026-06-01T00:00:00"},  # no offset: ambiguous
        {"published_at": "yesterday"},
        {"account_id": ""},
        {"fields": {"title": "护肤\ud800"}},  # a lone surrogate, as JSON's "\ud800" decodes
        {"kind": ""},
    ],
)
async def test_a_bad_document_is_refused(index: SearchIndex, change: dict[str, object]) -> None:
    args: dict[str, Any] = {
        "kind": "content",
        "account_id": "acc_1",
        "fields": {"title": "护肤"},
        "published_at": "2026-06-01T00:00:00Z",
        "engagement": 1,
        "visible": True,
    }
    args.update(change)
    kind = args.pop("kind")
    with pytest.raises(InvalidQueryError):
        await index.upsert(kind, "c1", **args)
    assert await search(index, "护肤") == []


async def test_a_bad_search_is_refused(index: SearchIndex) -> None:
    with pytest.raises(InvalidQueryError):
        await index.search("茶", kinds=["content"], limit=0, now=NOW)
    with pytest.raises(InvalidQueryError):
        await index.search("茶", kinds="content", limit=5, now=NOW)
    with pytest.raises(InvalidQueryError):
        await index.search("茶", kinds=["content"], limit=5, now=datetime(2026, 6, 1))


# -- lifetime ---------------------------------------------------------------------------------


async def test_the_index_survives_a_reopen(engine: Engine) -> None:
    index = await engine.open()
    await put(index, "c1", title="护肤新品上市")
    await put(index, "c2", title="茶")
    await engine.close(index)
    index = await engine.open()
    assert await search(index, "护肤") == ["c1"]
    assert await search(index, "新品上市") == ["c1"]
    await put(index, "c1", title="咖啡")  # replacing after a restart forgets the old text
    assert await search(index, "护肤") == []
    assert await search(index, "咖啡") == ["c1"]


# -- SQLite only ------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteSearch]]:
    store = SQLiteStore(tmp_path / "pair.db")
    index = SQLiteSearch(store)
    await index.ensure()
    yield store, index
    await index.close()
    await store.close()


async def test_an_upsert_joins_the_store_transaction(
    sqlite_pair: tuple[SQLiteStore, SQLiteSearch],
) -> None:
    store, index = sqlite_pair
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.collection("contents").insert({"id": "c1"})
            await put(index, "c1", title="护肤")
            raise RuntimeError("the publish fails after indexing")
    assert await search(index, "护肤") == []
    async with store.transaction():
        await put(index, "c1", title="护肤")
    assert await search(index, "护肤") == ["c1"]


async def test_replacing_and_removing_keep_the_full_text_index_consistent(
    sqlite_pair: tuple[SQLiteStore, SQLiteSearch], tmp_path: Path
) -> None:
    _, index = sqlite_pair
    for n in range(3):
        for i in range(20):
            await put(index, f"c{i}", title=f"护肤{n}{i}", body="新品上市" * n)
        await index.remove("content", f"c{n}")
        await put(index, f"c{n + 5}", title="隐藏", visible=False)
    conn = sqlite3.connect(tmp_path / "pair.db")
    try:
        # rank 1 compares the trigram index with its content table, row by row.
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 1)")
        conn.execute("INSERT INTO search_grams (search_grams) VALUES ('integrity-check')")
        docs = conn.execute("SELECT count(*) FROM search_docs").fetchone()[0]
    finally:
        conn.close()
    assert docs == 18  # the last round removed c2 and hid c7
