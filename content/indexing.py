"""Keeping the search index in step with accounts and contents.

The index follows the documents by their ``updated_at``: each sync reads what changed since
the last one (a keyset cursor kept in ``search_state``) and upserts published contents and
every account, removing contents that are no longer published. Writers need not know about
search, and a sync that is interrupted resumes where its cursor stands; the index is
eventually consistent, and search routes sync before they search so a fan finds what was
just published.
"""

from __future__ import annotations

from typing import Any

from accounts.accounts import ACCOUNTS, Account
from content.blocks import Heading, Paragraph
from content.contents import CONTENTS, Content, Status
from store.documents import encode_cursor, full_sort
from store.port import DocumentStore, Index, SortKey
from store.search import SearchIndex

SEARCH_STATE = "search_state"
INDEXES = [Index(CONTENTS, ("updated_at",)), Index(ACCOUNTS, ("updated_at",))]
CONTENT, ACCOUNT = "content", "account"
BATCH = 500
ORDER: list[SortKey] = [("updated_at", 1)]


def content_fields(content: Content) -> dict[str, str]:
    text = [content.text, content.caption]
    text += [b.text for b in content.blocks if isinstance(b, Paragraph | Heading)]
    return {"title": content.title, "body": "\n".join(t for t in text if t)}


def account_fields(account: Account) -> dict[str, str]:
    return {
        "name": account.name,
        "handle": account.handle,
        "keywords": " ".join(account.keywords),
        "body": account.bio,
    }


async def _changed(
    store: DocumentStore, collection: str, state_id: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The next batch changed since the last sync, and the cursor just after it."""
    state = await store.collection(SEARCH_STATE).get(state_id)
    cursor = str(state["cursor"]) if state and state.get("cursor") else None
    page = await store.collection(collection).page({}, sort=ORDER, limit=BATCH, cursor=cursor)
    if not page.items:
        return [], None
    return page.items, encode_cursor(page.items[-1], full_sort(ORDER))


async def sync(store: DocumentStore, search: SearchIndex) -> int:
    """Bring the index up to date with what changed; returns how many documents it touched."""
    touched = 0
    for collection, state_id in ((CONTENTS, "contents"), (ACCOUNTS, "accounts")):
        docs, cursor = await _changed(store, collection, state_id)
        for doc in docs:
            if collection == CONTENTS:
                content = Content.from_doc(doc)
                if content.status is Status.PUBLISHED:
                    counters = content.counters
                    await search.upsert(
                        CONTENT,
                        content.id,
                        account_id=content.account_id,
                        fields=content_fields(content),
                        published_at=content.published_at,
                        engagement=float(counters.likes + 2 * counters.comments + counters.plays),
                        visible=True,
                    )
                else:
                    await search.remove(CONTENT, content.id)
            else:
                account = Account.from_doc(doc)
                await search.upsert(
                    ACCOUNT,
                    account.id,
                    account_id=account.id,
                    fields=account_fields(account),
                    published_at=None,
                    engagement=float(account.follower_count),
                    visible=True,
                )
            touched += 1
        if cursor is not None:
            await store.collection(SEARCH_STATE).update_one(
                {"id": state_id}, {"$set": {"cursor": cursor}}, upsert=True
            )
    return touched
