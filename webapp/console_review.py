"""The console's review section: the contents waiting for a moderator, with approve and reject
forms, and the account's own sensitive words. Owners and moderators see and use it, the roles
that moderate over the API (webapp/api_editorial.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from accounts.errors import DomainError, NotFound
from accounts.staff import Membership
from content.comments import (
    Comment,
    account_of,
    approve_comment,
    get_comment,
    held_comments,
    remove_comment,
)
from content.contents import Status, account_contents, get_content
from content.publishing import approve, reject
from content.sensitive import add_words, list_words, remove_words
from webapp.api_contents import content_out
from webapp.api_editorial import MODERATORS, review_out
from webapp.context import Services
from webapp.schemas_editorial import ReviewOut

ACTIONS = frozenset(
    {"approve", "reject", "add_words", "remove_words", "approve_comment", "remove_comment"}
)
SHOWN = 20
# A list typed into one field: commas (ASCII or full-width) or new lines between words.
SEPARATORS = re.compile(r"[,，、\r\n]+")


@dataclass(frozen=True)
class Section:
    items: list[ReviewOut]
    more: bool  # more wait than are shown
    words: list[str]
    comments: list[Comment]  # held for a moderator
    more_comments: bool


async def section(services: Services, membership: Membership) -> Section | None:
    """What the section shows, or None for a role that does not moderate."""
    if membership.role not in MODERATORS:
        return None
    page = await account_contents(
        services.store,
        membership.account_id,
        status=Status.IN_REVIEW,
        limit=SHOWN,
        cursor=None,
    )
    held = await held_comments(services.store, membership.account_id, limit=SHOWN, cursor=None)
    return Section(
        items=[review_out(c, content_out(c)) for c in page.items],
        more=page.next_cursor is not None,
        words=await list_words(services.store, account_id=membership.account_id),
        comments=held.items,
        more_comments=held.next_cursor is not None,
    )


async def act(
    services: Services, membership: Membership, form: dict[str, str]
) -> tuple[str | None, str | None]:
    """Run one of the section's forms; returns (notice, error) for the page."""
    if membership.role not in MODERATORS:
        return None, "Only an owner or a moderator can review."
    store, account_id, now = services.store, membership.account_id, services.now()
    action = form.get("action")
    try:
        if action in ("approve", "reject"):
            content = await get_content(store, form.get("content_id", ""))
            if content.account_id != account_id:
                raise NotFound("content", content.id)
            if action == "approve":
                done = await approve(store, content.id, now=now)
                return f"Approved “{content.title or content.id}”: it is {done.status}.", None
            await reject(store, content.id, reason=form.get("reason", ""), now=now)
            return f"Rejected “{content.title or content.id}”.", None
        if action in ("approve_comment", "remove_comment"):
            comment = await get_comment(store, form.get("comment_id", ""))
            if await account_of(store, comment) != account_id:
                raise NotFound("comment", comment.id)
            if action == "approve_comment":
                await approve_comment(store, comment.id, now=now)
                return f"Approved the comment by {comment.author_name}.", None
            await remove_comment(store, comment.id, by=f"staff:{membership.staff_id}", now=now)
            return f"Removed the comment by {comment.author_name}.", None
        typed = form.get("words", "")
        if action == "remove_words":
            # Each listed word has its own button, so the field holds one word, which may
            # itself contain a comma (the API lists any printable word).
            removed = await remove_words(store, account_id=account_id, words=[typed])
            return (f"Removed “{typed}”.", None) if removed else (None, "That word is not listed.")
        words = [w for w in SEPARATORS.split(typed) if w.strip()]
        if not words:
            return None, "Type at least one word."
        added = await add_words(store, account_id=account_id, words=words, now=now)
        return f"Added {added} of {len(words)} words.", None
    except DomainError as exc:
        return None, exc.detail
