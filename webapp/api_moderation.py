"""Routes of comment moderation: the queue of comments the sensitive-word review held, their
approval, and removal.

Who may do what: the queue, for the account's owners, editors and moderators and its API keys
(as the content queue); an approval, for owners and moderators by a staff session (a person
read it, as for contents); a removal, for owners and moderators, the account's API keys (a
brand's own moderation tools), and the fan who wrote the comment.
"""

from __future__ import annotations

from accounts.errors import Forbidden, NotFound
from content.comments import (
    Comment,
    account_of,
    approve_comment,
    get_comment,
    held_comments,
    remove_comment,
)
from webapp import schemas_editorial as s
from webapp.api import ACCOUNT_PATH, ANY_ROLE, STAFF, STAFF_OR_KEY, Call, Endpoint, Reply
from webapp.api_contents import _works_for, comment_out
from webapp.api_editorial import MODERATORS, REVIEWERS
from webapp.auth import Kind
from webapp.schemas import PageQuery
from webapp.schemas_content import CommentOut


def held_out(comment: Comment) -> s.HeldCommentOut:
    return s.HeldCommentOut(
        id=comment.id,
        content_id=comment.content_id,
        parent_id=comment.parent_id,
        author_name=comment.author_name,
        text=comment.text,
        at=comment.at,
        words=list(comment.words),
    )


async def _moderated(call: Call) -> Comment:
    """The comment, if the caller moderates its account; a held comment does not exist for
    anyone outside the account, a shown one is theirs to read but not to moderate."""
    store = call.services.store
    comment = await get_comment(store, call.params["comment_id"])
    account_id = await account_of(store, comment)
    if await _works_for(call, account_id, MODERATORS):
        return comment
    if comment.visible or await _works_for(call, account_id, ANY_ROLE):
        raise Forbidden(
            "only the account's owners and moderators moderate its comments",
            code="role_required",
        )
    raise NotFound("comment", comment.id, field="comment_id")


async def comment_queue(call: Call) -> s.HeldCommentPageOut:
    q: PageQuery = call.query
    page = await held_comments(
        call.services.store, call.params["account_id"], limit=q.limit, cursor=q.cursor
    )
    return s.HeldCommentPageOut(
        items=[held_out(c) for c in page.items], next_cursor=page.next_cursor
    )


async def approve_held_comment(call: Call) -> CommentOut:
    comment = await _moderated(call)
    done = await approve_comment(call.services.store, comment.id, now=call.now)
    return comment_out(done)


async def delete_comment(call: Call) -> Reply:
    store, who = call.services.store, call.caller
    comment = await get_comment(store, call.params["comment_id"])
    own = who.kind is Kind.FAN and comment.author_kind == "fan" and comment.author_id == who.id
    if not own:
        account_id = await account_of(store, comment)
        if not await _works_for(call, account_id, MODERATORS):
            if not (comment.visible or await _works_for(call, account_id, ANY_ROLE)):
                raise NotFound("comment", comment.id, field="comment_id")
            raise Forbidden(
                "a comment is removed by its author or the account's owners and moderators",
                code="role_required",
            )
    await remove_comment(store, comment.id, by=f"{who.kind.value}:{who.id}", now=call.now)
    return Reply(None, status=204)


M = "/api/v1/comments/{comment_id}"

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/review/comments",
        comment_queue,
        "Comments held for a moderator, newest first",
        "review",
        response=s.HeldCommentPageOut,
        query=PageQuery,
        allow=STAFF_OR_KEY,
        roles=REVIEWERS,
        errors=(400, 403, 404, 422),
        description="For owners, editors, moderators and API keys: comments whose text had "
        "listed words, hidden from fans until approved, with the words found.",
    ),
    Endpoint(
        "POST",
        f"{M}/approve",
        approve_held_comment,
        "Approve a held comment (owner, moderator)",
        "review",
        response=CommentOut,
        allow=STAFF,
        errors=(403, 404, 409),
        description="A staff session of an owner or moderator: the comment is shown and "
        "counted. Not held: 409 `comment_not_held`.",
    ),
    Endpoint(
        "DELETE",
        M,
        delete_comment,
        "Remove a comment (its author, owner, moderator, API key)",
        "review",
        status=204,
        allow=frozenset({Kind.FAN, Kind.STAFF, Kind.API_KEY}),
        errors=(401, 403, 404),
        description="Soft: kept for audit, never shown again; a top-level comment takes its "
        "replies with it, and the content's comment count drops by every comment that was "
        "shown.",
    ),
]
