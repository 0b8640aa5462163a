"""Search over accounts and published contents (DESIGN §8 ``GET /api/v1/search?q=``).

Chinese works without a segmenter: 3+ characters through FTS5 trigrams, 1–2 (新品, 护肤)
through a bigram index (store/sqlite_search.py). The index follows the documents; a search
first brings it up to date (content/indexing.py), so what was just published is found.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from accounts.accounts import ACCOUNTS, Account
from content.contents import CONTENTS, Content
from content.indexing import ACCOUNT, CONTENT, sync
from webapp.api import Call, Endpoint
from webapp.api_contents import contents_out
from webapp.schemas import Out, PageQuery
from webapp.schemas_content import ContentOut

TOP_ACCOUNTS = 5


class SearchQuery(PageQuery):
    q: Annotated[str, Field(min_length=1, max_length=200, description="what to look for")]


class AccountHit(Out):
    id: str
    handle: str
    name: str
    bio: str
    follower_count: int


class SearchOut(Out):
    accounts: list[AccountHit] = Field(description="the best few accounts (first page only)")
    contents: list[ContentOut]
    next_cursor: str | None


async def search(call: Call) -> SearchOut:
    q: SearchQuery = call.query
    store, index = call.services.store, call.services.search
    await sync(store, index)
    now = call.now
    accounts: list[AccountHit] = []
    if q.cursor is None:
        found = await index.search(q.q, kinds=[ACCOUNT], limit=TOP_ACCOUNTS, now=now)
        docs = {
            d["id"]: d
            for d in await store.collection(ACCOUNTS).find(
                {"id": {"$in": [h.id for h in found.items]}}
            )
        }
        for hit in found.items:
            if hit.id in docs:
                a = Account.from_doc(docs[hit.id])
                accounts.append(
                    AccountHit(
                        id=a.id,
                        handle=a.handle,
                        name=a.name,
                        bio=a.bio,
                        follower_count=a.follower_count,
                    )
                )
    page = await index.search(q.q, kinds=[CONTENT], limit=q.limit, cursor=q.cursor, now=now)
    docs = {
        d["id"]: d
        for d in await store.collection(CONTENTS).find({"id": {"$in": [h.id for h in page.items]}})
    }
    listed = [Content.from_doc(docs[h.id]) for h in page.items if h.id in docs]
    contents = await contents_out(call, listed)
    return SearchOut(accounts=accounts, contents=contents, next_cursor=page.next_cursor)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/v1/search",
        search,
        "Search accounts and published contents",
        "search",
        response=SearchOut,
        query=SearchQuery,
        errors=(400, 422),
        description="Matches any part of a word, Chinese included, down to one character; "
        "ranked by relevance, freshness and engagement.",
    ),
]
