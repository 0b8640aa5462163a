"""Comments on published contents: fans comment, staff reply (marked as the brand's), one
level of threading (a reply answers a top-level comment), counted on the content.

A comment's text goes through the same sensitive-word review as content: a flagged comment
is *held*, kept for the account's moderators and hidden from everyone else, until one approves
it (then it is shown and counted) or removes it. Removal is soft (kept for audit) and takes a
top-level comment's replies with it; the content's ``comments`` counter always equals the
comments shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Conflict, Invalid, NotFound
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
    Index(COMMENTS, ("account_id", "held", "at")),  # the moderators' queue
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
    visible: bool  # False: held for moderators, or removed
    held: bool = False  # waiting for a moderator (the sensitive-word review flagged it)
    words: tuple[str, ...] = ()  # the listed words the review found, for the moderator

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
            bool(doc.get("held", False)),
            tuple(dict.fromkeys(m["word"] for m in (doc.get("review") or {}).get("matches", ()))),
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
            "account_id": doc["account_id"],
            "parent_id": parent_id,
            "author_kind": author_kind,
            "author_id": author_id,
            "author_name": author_name,
            "text": body,
            "visible": not review.flagged,
            "held": review.flagged,
            "review": review.to_doc() if review.flagged else None,
            "replies": 0,
            "at": rfc3339(now),
        }
        await store.collection(COMMENTS).insert(comment)
        if not review.flagged:
            await _count(store, content_id, parent_id, 1)
    return Comment.from_doc(comment)


async def _count(store: DocumentStore, content_id: str, parent_id: str | None, delta: int) -> None:
    """Move the counters of comments shown: the content's, and a reply's parent's."""
    if parent_id is not None:
        await store.collection(COMMENTS).update_one({"id": parent_id}, {"$inc": {"replies": delta}})
    counted = await store.collection(CONTENTS).update_one(
        {"id": content_id}, {"$inc": {"comments": delta}}
    )
    if counted is not None:
        await store_score(store, counted)  # the discover feed moves at once


async def get_comment(store: DocumentStore, comment_id: str) -> Comment:
    """A comment that was not removed, whatever its state."""
    doc = await store.collection(COMMENTS).get(comment_id)
    if doc is None or doc.get("removed"):
        raise NotFound("comment", comment_id, field="comment_id")
    return Comment.from_doc(doc)


async def account_of(store: DocumentStore, comment: Comment) -> str:
    account_id: str = (await load(store, comment.content_id))["account_id"]
    return account_id


async def held_comments(
    store: DocumentStore, account_id: str, *, limit: int, cursor: str | None
) -> CommentPage:
    """The account's comments held for a moderator, newest first."""
    page = await store.collection(COMMENTS).page(
        {"account_id": account_id, "held": True}, sort=[("at", -1)], limit=limit, cursor=cursor
    )
    return CommentPage([Comment.from_doc(d) for d in page.items], page.next_cursor)


async def approve_comment(store: DocumentStore, comment_id: str, *, now: datetime) -> Comment:
    """A moderator read a held comment: it is shown and counted."""
    async with store.transaction():
        comment = await get_comment(store, comment_id)
        after = await store.collection(COMMENTS).update_one(
            {"id": comment_id, "held": True},
            {"$set": {"held": False, "visible": True, "approved_at": rfc3339(now)}},
        )
        if after is None:
            raise Conflict("only a comment held for review is approved", code="comment_not_held")
        await _count(store, comment.content_id, comment.parent_id, 1)
    return Comment.from_doc(after)


async def remove_comment(store: DocumentStore, comment_id: str, *, by: str, now: datetime) -> int:
    """Remove a comment (and a top-level one's replies) from view; returns how many comments
    stopped being shown. Kept, marked ``removed``, for audit."""
    comments = store.collection(COMMENTS)
    gone = {"visible": False, "held": False, "removed": True, "removed_by": by}
    async with store.transaction():
        comment = await get_comment(store, comment_id)
        await comments.update_one({"id": comment_id}, {"$set": gone | {"removed_at": rfc3339(now)}})
        shown = 1 if comment.visible else 0
        if comment.parent_id is None:
            replies = await comments.find(
                {"content_id": comment.content_id, "parent_id": comment_id}
            )
            for reply in replies:
                if reply.get("removed"):
                    continue
                shown += 1 if reply.get("visible", True) else 0
                await comments.update_one(
                    {"id": reply["id"]}, {"$set": gone | {"removed_at": rfc3339(now)}}
                )
        elif comment.visible:
            await comments.update_one({"id": comment.parent_id}, {"$inc": {"replies": -1}})
        if shown:
            await _count(store, comment.content_id, None, -shown)
    return shown


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
