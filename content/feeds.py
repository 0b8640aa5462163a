"""A fan's following feed: the published contents of the accounts the fan follows, newest
first, cursor-paginated like every list (DESIGN §4)."""

from __future__ import annotations

from accounts.follows import FOLLOWS
from content.contents import CONTENTS, Content, ContentPage, Status
from store.port import DocumentStore

# A fan following more accounts than this sees the most recently followed ones; the feed
# query names every followed account, so the list is bounded.
MAX_FOLLOWED = 1000


async def following_feed(
    store: DocumentStore, fan_id: str, *, limit: int, cursor: str | None
) -> ContentPage:
    edges = await store.collection(FOLLOWS).find(
        {"fan_id": fan_id}, sort=[("at", -1)], limit=MAX_FOLLOWED
    )
    accounts = [e["account_id"] for e in edges]
    if not accounts:
        return ContentPage([], None)
    page = await store.collection(CONTENTS).page(
        {"account_id": {"$in": accounts}, "status": Status.PUBLISHED.value},
        sort=[("published_at", -1)],
        limit=limit,
        cursor=cursor,
    )
    return ContentPage([Content.from_doc(d) for d in page.items], page.next_cursor)
