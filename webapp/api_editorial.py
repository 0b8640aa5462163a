"""Routes of the editorial desk: editing and archiving contents, the review queue with its
approvals and rejections, and each account's sensitive-word list.

Who may do what:

- edit and archive: the account's owners and editors, and its API keys (as for publishing);
- read the review queue: owners, editors (to see why their content waits) and moderators,
  and API keys;
- approve and reject: owners and moderators, by a staff session only. An approval says that a
  person has read the content (``content.publishing.approve`` skips the word review for that
  reason), which a backend's key cannot say; editors may not approve what they wrote;
- the account's word list: owners and moderators, and API keys. The deployment-wide list is
  the operator's: ``lifeaccount words`` on the server, never over HTTP.
"""

from __future__ import annotations

from accounts.errors import Forbidden, NotFound
from accounts.staff import Role
from content.blocks import Kind
from content.contents import (
    Content,
    Status,
    account_contents,
    archive_content,
    edit_content,
    get_content,
)
from content.publishing import approve, reject
from content.sensitive import add_words, list_words, remove_words
from content.uploads import usable_upload
from webapp import schemas_editorial as s
from webapp.api import (
    ACCOUNT_PATH,
    ANY_ROLE,
    STAFF,
    STAFF_OR_KEY,
    Call,
    Endpoint,
)
from webapp.api_contents import _editable, _works_for, contents_out, one_out
from webapp.schemas import PageQuery
from webapp.schemas_content import ContentOut

MODERATORS = frozenset({Role.OWNER, Role.MODERATOR})
REVIEWERS = frozenset({Role.OWNER, Role.EDITOR, Role.MODERATOR})


def review_out(content: Content, out: ContentOut) -> s.ReviewOut:
    """A content in review (``out``, its answer) with what its review found."""
    matches = content.review.matches if content.review else ()
    return s.ReviewOut(
        content=out,
        words=list(dict.fromkeys(m.word for m in matches)),
        matches=[s.MatchOut(field=m.field, word=m.word, start=m.start, end=m.end) for m in matches],
        reject_reason=content.reject_reason,
    )


async def reviews_out(call: Call, contents: list[Content]) -> list[s.ReviewOut]:
    outs = await contents_out(call, contents)
    return [review_out(c, o) for c, o in zip(contents, outs, strict=True)]


async def _moderated(call: Call) -> Content:
    """The content, if the caller moderates its account; a content fans cannot see does not
    exist for callers who do not work for its account."""
    content = await get_content(call.services.store, call.params["content_id"])
    if await _works_for(call, content.account_id, MODERATORS):
        return content
    if content.status is Status.PUBLISHED or await _works_for(call, content.account_id, ANY_ROLE):
        raise Forbidden(
            "only the account's owners and moderators approve or reject its content",
            code="role_required",
        )
    raise NotFound("content", content.id, field="content_id")


async def patch_content(call: Call) -> ContentOut:
    body: s.ContentEditIn = call.body
    services = call.services
    content = await _editable(call)
    changes = body.model_dump(exclude_unset=True)
    new_upload = changes.get("upload_id")
    if content.kind is Kind.VIDEO and new_upload and new_upload != content.upload_id:
        await usable_upload(services.store, new_upload, account_id=content.account_id)
    edited = await edit_content(
        services.store, content.id, changes, policy=services.pipeline.policy, now=call.now
    )
    if edited.upload_id != content.upload_id and edited.upload_id and edited.media is not None:
        await services.pipeline.enqueue(
            services.jobs, content_id=edited.id, upload_id=edited.upload_id
        )
    await services.images.ensure(services.jobs, [edited])
    return await one_out(call, edited)


async def archive(call: Call) -> ContentOut:
    content = await _editable(call)
    done = await archive_content(call.services.store, content.id, now=call.now)
    return await one_out(call, done)


async def review_queue(call: Call) -> s.ReviewPageOut:
    q: PageQuery = call.query
    page = await account_contents(
        call.services.store,
        call.params["account_id"],
        status=Status.IN_REVIEW,
        limit=q.limit,
        cursor=q.cursor,
    )
    return s.ReviewPageOut(items=await reviews_out(call, page.items), next_cursor=page.next_cursor)


async def approve_content(call: Call) -> s.ReviewOut:
    content = await _moderated(call)
    done = await approve(call.services.store, content.id, now=call.now)
    [out] = await reviews_out(call, [done])
    return out


async def reject_content(call: Call) -> s.ReviewOut:
    body: s.RejectIn = call.body
    content = await _moderated(call)
    done = await reject(call.services.store, content.id, reason=body.reason, now=call.now)
    [out] = await reviews_out(call, [done])
    return out


async def sensitive_words(call: Call) -> s.WordsOut:
    listed = await list_words(call.services.store, account_id=call.params["account_id"])
    return s.WordsOut(words=listed)


async def add_sensitive_words(call: Call) -> s.WordsAddedOut:
    body: s.WordsIn = call.body
    added = await add_words(
        call.services.store, account_id=call.params["account_id"], words=body.words, now=call.now
    )
    return s.WordsAddedOut(added=added)


async def remove_sensitive_words(call: Call) -> s.WordsRemovedOut:
    body: s.WordsIn = call.body
    removed = await remove_words(
        call.services.store, account_id=call.params["account_id"], words=body.words
    )
    return s.WordsRemovedOut(removed=removed)


C = "/api/v1/contents/{content_id}"
W = f"{ACCOUNT_PATH}/sensitive-words"

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "PATCH",
        C,
        patch_content,
        "Edit a content (owner, editor, API key)",
        "contents",
        response=ContentOut,
        body=s.ContentEditIn,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409, 422),
        description="Only the fields sent change. Allowed in draft, rejected (it becomes a draft "
        "again) and published; other states answer 409 `content_not_editable`. A published "
        "content whose text changes is reviewed again, and flagged words take it back to "
        "in_review, out of every feed.",
    ),
    Endpoint(
        "POST",
        f"{C}/archive",
        archive,
        "Archive a published content (owner, editor, API key)",
        "contents",
        response=ContentOut,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409),
        description="Out of feeds and search; staff and keys still read it. A content that is "
        "not published answers 409 `content_not_published`.",
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/review",
        review_queue,
        "Contents waiting for a moderator, newest first",
        "review",
        response=s.ReviewPageOut,
        query=PageQuery,
        allow=STAFF_OR_KEY,
        roles=REVIEWERS,
        errors=(400, 403, 404, 422),
        description="For owners, editors, moderators and API keys. Each item names the listed "
        "words its last review found and where; an item without words waits because it was "
        "flagged or rejected before (`reject_reason`).",
    ),
    Endpoint(
        "POST",
        f"{C}/approve",
        approve_content,
        "Approve a content in review (owner, moderator)",
        "review",
        response=s.ReviewOut,
        allow=STAFF,
        errors=(403, 404, 409),
        description="A staff session of an owner or moderator only: an approval says a person "
        "read it, so API keys cannot approve, nor editors their own work. The content goes out "
        "now, or waits for its publish_at (`scheduled`). Not in review: 409 "
        "`content_not_in_review`.",
    ),
    Endpoint(
        "POST",
        f"{C}/reject",
        reject_content,
        "Reject a content in review (owner, moderator)",
        "review",
        response=s.ReviewOut,
        body=s.RejectIn,
        allow=STAFF,
        errors=(403, 404, 409, 422),
        description="A staff session of an owner or moderator only. The editor sees the "
        "reason; an edit makes it a draft again, and it needs an approval to go out. Not in "
        "review: 409 `content_not_in_review`.",
    ),
    Endpoint(
        "GET",
        W,
        sensitive_words,
        "The account's own sensitive words",
        "review",
        response=s.WordsOut,
        allow=STAFF_OR_KEY,
        roles=MODERATORS,
        errors=(403, 404),
        description="For owners, moderators and API keys. The whole list (a setting, like the "
        "tier ladder). Contents and comments are reviewed against it and the deployment's "
        "list, which only the operator changes (`lifeaccount words`).",
    ),
    Endpoint(
        "POST",
        W,
        add_sensitive_words,
        "Add sensitive words to the account's list",
        "review",
        response=s.WordsAddedOut,
        body=s.WordsIn,
        allow=STAFF_OR_KEY,
        roles=MODERATORS,
        errors=(403, 404, 422),
        description="For owners, moderators and API keys. Idempotent: a word already listed, "
        "in any case, is left as it is. The next publish, edit or comment is reviewed with it; "
        "what is already out stays out.",
    ),
    Endpoint(
        "POST",
        f"{W}/remove",
        remove_sensitive_words,
        "Remove sensitive words from the account's list",
        "review",
        response=s.WordsRemovedOut,
        body=s.WordsIn,
        allow=STAFF_OR_KEY,
        roles=MODERATORS,
        errors=(403, 404, 422),
        description="For owners, moderators and API keys. A POST, not a DELETE with a body, "
        "which has no defined meaning (RFC 9110 §9.3.5) and which proxies may drop. Contents "
        "already in review stay there until a moderator decides.",
    ),
]
