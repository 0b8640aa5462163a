"""Comments on published contents: fans comment, staff reply (marked as the brand's), one
level of threading (a reply answers a top-level comment), counted on the content.

A comment's text goes through the same sensitive-word review as content: a flagged comment
is kept for moderators but hidden from everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Invalid, NotFound
from content.contents import CONTENTS, Status, load
from content.discover import store_score
from content.fields import clean_text
from content.sensitive import ReviewPolicy
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

COMMENTS = "comments"
INDEXES = [
    Index(COMMENTS, ("content_id", "parent_id", "visible", "at")),
]
MAX_TEXT = 500


@dataclass(frozen=True)
class Comment:
    id: str
    content_id: str
    parent_id: str | None
    author_kind: str  # "fan" | "staff"
    author_id: str
    author_name: str
    text: str
    at: str
    replies: int
    visible: bool  # False: held for moderators by the sensitive-word review

    @property
    def by_staff(self) -> bool:
        return self.author_kind == "staff"

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Comment:
        return cls(
            doc["id"],
            doc["content_id"],
            doc.get("parent_id"),
            doc["author_kind"],
            doc["author_id"],
            doc.get("author_name", ""),
            doc["text"],
            doc["at"],
            int(doc.get("replies", 0)),
            bool(doc.get("visible", True)),
        )


@dataclass(frozen=True)
class CommentPage:
    items: list[Comment]
    next_cursor: str | None


async def add_comment(
    store: DocumentStore,
    policy: ReviewPolicy,
    content_id: str,
    *,
    author_kind: str,
    author_id: str,
    author_name: str,
    text: str,
    parent_id: str | None,
    now: datetime,
) -> Comment:
    body = clean_text(text, field="text", longest=MAX_TEXT, required=True)
    if not body:
        raise Invalid("a comment cannot be blank", field="text")
    # Reviewed before the transaction: the automaton's pass must not hold the writer.
    doc = await load(store, content_id)
    review = await policy.review_text(body, account_id=doc["account_id"])
    async with store.transaction():
        doc = await load(store, content_id)
        if doc["status"] != Status.PUBLISHED:
            raise NotFound("content", content_id, field="content_id")
        if parent_id is not None:
            parent = await store.collection(COMMENTS).get(parent_id)
            if parent is None or parent["content_id"] != content_id or parent.get("parent_id"):
                raise NotFound("comment", parent_id, field="parent_id")
        comment = {
            "id": new_id("cmt"),
            "content_id": content_id,
            "parent_id": parent_id,
            "author_kind": author_kind,
            "author_id": author_id,
            "author_name": author_name,
            "text": body,
            "visible": not review.flagged,
            "review": review.to_doc() if review.flagged else None,
            "replies": 0,
            "at": rfc3339(now),
        }
        await store.collection(COMMENTS).insert(comment)
        if review.flagged:
            return Comment.from_doc(comment)
        if parent_id is not None:
            await store.collection(COMMENTS).update_one({"id": parent_id}, {"$inc": {"replies": 1}})
        counted = await store.collection(CONTENTS).update_one(
            {"id": content_id}, {"$inc": {"comments": 1}}
        )
        if counted is not None:
            await store_score(store, counted)  # the discover feed moves at once
    return Comment.from_doc(comment)


async def list_comments(
    store: DocumentStore,
    content_id: str,
    *,
    parent_id: str | None,
    limit: int,
    cursor: str | None,
) -> CommentPage:
    """Visible comments, oldest first: top-level ones, or the replies to ``parent_id``."""
    doc = await load(store, content_id)
    if doc["status"] != Status.PUBLISHED:
        raise NotFound("content", content_id, field="content_id")
    page = await store.collection(COMMENTS).page(
        {"content_id": content_id, "parent_id": parent_id, "visible": True},
        sort=[("at", 1)],
        limit=limit,
        cursor=cursor,
    )
    return CommentPage([Comment.from_doc(d) for d in page.items], page.next_cursor)
