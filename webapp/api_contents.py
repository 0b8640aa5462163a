"""Routes of contents (DESIGN §8): create (a video's transcode is queued at once), read,
publish, delete, likes, and an account's feed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from accounts.accounts import get_account
from accounts.errors import Forbidden, NotFound
from accounts.fans import get_fan
from accounts.staff import Role, role_of
from content import likes
from content.blocks import block_to_doc
from content.comments import Comment, add_comment, list_comments
from content.contents import (
    Content,
    Status,
    account_feed,
    create_content,
    delete_content,
    get_content,
)
from content.engagement import counters_doc
from content.feeds import following_feed
from content.images import Image, ImageState, images_of
from content.publishing import publish
from content.uploads import usable_upload
from store.port import DocumentStore
from webapp import schemas_content as s
from webapp.api import (
    ACCOUNT_PATH,
    ANY_ROLE,
    OWNER_EDITOR,
    STAFF_OR_KEY,
    Call,
    Endpoint,
    Reply,
    base_url,
)
from webapp.api_commerce import service_links_out
from webapp.auth import Caller, Kind
from webapp.schemas import PageQuery


async def image_records(store: DocumentStore, contents: Iterable[Content]) -> dict[str, Image]:
    """The image records of a page of contents, in one query, for :func:`content_out`."""
    return await images_of(store, [i for content in contents for i in content.image_ids])


def images_out(content: Content, images: Mapping[str, Image]) -> list[s.ImageOut]:
    out = []
    for upload_id in content.image_ids:
        # No record yet: its upload was named before it completed; the resize is queued.
        i = images.get(upload_id) or Image(upload_id, content.account_id, ImageState.PROCESSING)
        out.append(
            s.ImageOut(
                upload_id=upload_id,
                state=i.state.value,
                url=i.url,
                thumb_url=i.thumb_url,
                width=i.width,
                height=i.height,
                error_code=i.error_code,
                error=i.error,
            )
        )
    return out


async def contents_out(call: Call, contents: Sequence[Content]) -> list[s.ContentOut]:
    """How every route answers contents: with their page ``url``, their links' click URLs
    and their images (one query for the lot)."""
    images = await image_records(call.services.store, contents)
    base = base_url(call.request, call.services.settings.base_url)
    return [content_out(c, base, call.services.secret, images) for c in contents]


async def one_out(call: Call, content: Content) -> s.ContentOut:
    [out] = await contents_out(call, [content])
    return out


def content_out(
    content: Content,
    base: str = "",
    secret: bytes = b"",
    images: Mapping[str, Image] | None = None,
) -> s.ContentOut:
    """The API's view of a content; with the deployment's ``base`` URL it carries its page's
    ``url`` (DESIGN §7), and with its ``secret`` also its service links' click URLs.
    ``images`` are the records of its images (:func:`image_records`, one query per page)."""
    media = None
    if content.media is not None:
        m = content.media
        media = s.MediaOut(
            state=m.state.value,
            progress=m.progress,
            error=m.error,
            error_code=m.error_code,
            hls_url=m.hls_url,
            mp4_url=m.mp4_url,
            poster_url=m.poster_url,
            duration_s=m.duration_s,
            renditions=[s.RenditionOut(height=r.height, bitrate=r.bitrate) for r in m.renditions],
        )
    out = s.ContentOut(
        id=content.id,
        account_id=content.account_id,
        kind=content.kind.value,
        status=content.status.value,
        title=content.title,
        text=content.text,
        caption=content.caption,
        blocks=[block_to_doc(b) for b in content.blocks],
        image_upload_ids=list(content.image_upload_ids),
        upload_id=content.upload_id,
        media=media,
        images=images_out(content, images or {}),
        service_links=service_links_out(content, base, secret),
        coupon_ids=list(content.coupon_ids),
        counters=counters_doc(content.counters),
        publish_at=content.publish_at,
        published_at=content.published_at,
        created_at=content.created_at,
        updated_at=content.updated_at,
    )
    if base:
        out.url = f"{base}/c/{content.id}"
    return out


async def speaks_for(
    store: DocumentStore, caller: Caller, account_id: str, roles: frozenset[Role]
) -> bool:
    """Whether ``caller`` speaks for this account: its backend (API key), or its staff in one
    of ``roles``."""
    if caller.kind is Kind.API_KEY:
        return caller.account_id == account_id
    if caller.kind is Kind.STAFF:
        return await role_of(store, account_id, caller.id) in roles
    return False


async def _works_for(call: Call, account_id: str, roles: frozenset[Role] = OWNER_EDITOR) -> bool:
    return await speaks_for(call.services.store, call.caller, account_id, roles)


async def _editable(call: Call) -> Content:
    content = await get_content(call.services.store, call.params["content_id"])
    if not await _works_for(call, content.account_id):
        if call.caller.kind is Kind.ANONYMOUS or content.status is not Status.PUBLISHED:
            raise NotFound("content", content.id, field="content_id")
        raise Forbidden(
            "only the account's owners, editors and API keys change its content",
            code="role_required",
        )
    return content


async def create(call: Call) -> s.ContentOut:
    body: s.ContentIn = call.body
    services, account_id = call.services, call.params["account_id"]
    if body.kind == "video" and body.upload_id is not None:
        await usable_upload(services.store, body.upload_id, account_id=account_id)
    content = await create_content(
        services.store, account_id, body.model_dump(exclude_none=True), now=call.now
    )
    if content.upload_id is not None and content.media is not None:
        await services.pipeline.enqueue(
            services.jobs, content_id=content.id, upload_id=content.upload_id
        )
    await services.images.ensure(services.jobs, [content])
    return await one_out(call, content)


async def read(call: Call) -> s.ContentOut:
    content = await get_content(call.services.store, call.params["content_id"])
    if content.status is not Status.PUBLISHED and not await _works_for(call, content.account_id):
        raise NotFound("content", content.id, field="content_id")
    out = await one_out(call, content)
    if call.caller.kind is Kind.FAN:
        out.liked = await likes.has_liked(call.services.store, content.id, call.caller.id)
    return out


async def publish_content(call: Call) -> s.PublishOut:
    body: s.PublishIn | None = call.body
    content = await _editable(call)
    # An image named before this pipeline existed (or whose queueing failed) gets its job now:
    # the publish below waits for it.
    await call.services.images.ensure(call.services.jobs, [content])
    done = await publish(
        call.services.store,
        content.id,
        policy=call.services.pipeline.policy,
        publish_at=body.publish_at if body else None,
        now=call.now,
    )
    return s.PublishOut(id=done.id, status=done.status.value, publish_at=done.publish_at)


async def remove(call: Call) -> Reply:
    content = await _editable(call)
    await delete_content(call.services.store, content.id, now=call.now)
    return Reply(None, status=204)


async def feed(call: Call) -> s.ContentPageOut:
    q: PageQuery = call.query
    page = await account_feed(
        call.services.store, call.params["account_id"], limit=q.limit, cursor=q.cursor
    )
    return s.ContentPageOut(
        items=await contents_out(call, page.items), next_cursor=page.next_cursor
    )


async def like_content(call: Call) -> s.LikeOut:
    state = await likes.like(
        call.services.store, call.params["content_id"], call.caller.id, now=call.now
    )
    return s.LikeOut(liked=state.liked, likes=state.likes)


async def unlike_content(call: Call) -> s.LikeOut:
    state = await likes.unlike(call.services.store, call.params["content_id"], call.caller.id)
    return s.LikeOut(liked=state.liked, likes=state.likes)


async def my_feed(call: Call) -> s.ContentPageOut:
    q: PageQuery = call.query
    page = await following_feed(call.services.store, call.caller.id, limit=q.limit, cursor=q.cursor)
    return s.ContentPageOut(
        items=await contents_out(call, page.items), next_cursor=page.next_cursor
    )


def comment_out(comment: Comment) -> s.CommentOut:
    return s.CommentOut(
        id=comment.id,
        parent_id=comment.parent_id,
        author_name=comment.author_name,
        by_staff=comment.by_staff,
        text=comment.text,
        at=comment.at,
        replies=comment.replies,
        hidden=not comment.visible,
    )


async def comment(call: Call) -> s.CommentOut:
    body: s.CommentIn = call.body
    services, caller = call.services, call.caller
    content = await get_content(services.store, call.params["content_id"])
    if caller.kind is Kind.FAN:
        fan = await get_fan(services.store, caller.id)
        kind, author_id, name = "fan", fan.id, fan.name
    else:
        if not await _works_for(call, content.account_id, ANY_ROLE):
            raise Forbidden("only the account's staff reply as the brand", code="role_required")
        account = await get_account(services.store, content.account_id)
        kind, author_id, name = "staff", caller.id, account.name
    made = await add_comment(
        services.store,
        services.pipeline.policy,
        content.id,
        author_kind=kind,
        author_id=author_id,
        author_name=name,
        text=body.text,
        parent_id=body.parent_id,
        now=call.now,
    )
    return comment_out(made)


async def comments(call: Call) -> s.CommentPageOut:
    q: s.CommentQuery = call.query
    page = await list_comments(
        call.services.store,
        call.params["content_id"],
        parent_id=q.parent_id,
        limit=q.limit,
        cursor=q.cursor,
    )
    return s.CommentPageOut(
        items=[comment_out(c) for c in page.items], next_cursor=page.next_cursor
    )


C = "/api/v1/contents/{content_id}"

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{C}/comments",
        comment,
        "Comment (fan) or reply as the brand (staff, API key)",
        "contents",
        response=s.CommentOut,
        body=s.CommentIn,
        status=201,
        allow=frozenset({Kind.FAN, Kind.STAFF, Kind.API_KEY}),
        errors=(401, 403, 404, 422),
        description="One level of threading: `parent_id` names a top-level comment. A comment "
        "with flagged words is held for moderators (`hidden`).",
    ),
    Endpoint(
        "GET",
        f"{C}/comments",
        comments,
        "Comments, oldest first (or the replies to parent_id)",
        "contents",
        response=s.CommentPageOut,
        query=s.CommentQuery,
        errors=(400, 404, 422),
    ),
    Endpoint(
        "GET",
        "/api/v1/me/feed",
        my_feed,
        "The fan's following feed, newest first",
        "me",
        response=s.ContentPageOut,
        query=s.ContentQuery,
        allow=frozenset({Kind.FAN}),
        errors=(400, 401, 403, 422),
    ),
    Endpoint(
        "POST",
        f"{ACCOUNT_PATH}/contents",
        create,
        "Create an article, post or video (a draft)",
        "contents",
        response=s.ContentOut,
        body=s.ContentIn,
        status=201,
        allow=STAFF_OR_KEY,
        roles=OWNER_EDITOR,
        errors=(403, 404, 409, 422),
        description="A video names a complete upload of the account; its transcode to an HLS "
        "ladder, an MP4 and a poster starts at once, and `media.progress` shows how far it is.",
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/contents",
        feed,
        "An account's published contents, newest first",
        "contents",
        response=s.ContentPageOut,
        query=s.ContentQuery,
        errors=(400, 404, 422),
    ),
    Endpoint(
        "GET",
        C,
        read,
        "A content (drafts only for its account's staff and keys)",
        "contents",
        response=s.ContentOut,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        f"{C}/publish",
        publish_content,
        "Publish now or at publish_at",
        "contents",
        response=s.PublishOut,
        body=s.PublishIn,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409, 422),
        description="The answer's status: published, scheduled, pending_media (a video still "
        "processing; it goes out when ready) or in_review (flagged words wait for a moderator).",
    ),
    Endpoint(
        "DELETE",
        C,
        remove,
        "Delete a content",
        "contents",
        status=204,
        allow=STAFF_OR_KEY,
        errors=(403, 404),
    ),
    Endpoint(
        "POST",
        f"{C}/likes",
        like_content,
        "Like (fan)",
        "contents",
        response=s.LikeOut,
        allow=frozenset({Kind.FAN}),
        errors=(401, 403, 404),
        description="Idempotent: liking again answers the same.",
    ),
    Endpoint(
        "DELETE",
        f"{C}/likes",
        unlike_content,
        "Unlike (fan)",
        "contents",
        response=s.LikeOut,
        allow=frozenset({Kind.FAN}),
        errors=(401, 403, 404),
        description="Idempotent.",
    ),
]
