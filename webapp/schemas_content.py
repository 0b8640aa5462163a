"""Request and response bodies of the content API (DESIGN §8). The domain checks each kind's
own rules (blocks, links, coupons) and names the field at fault; these models pin the shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from webapp.schemas import In, Out, PageQuery

Id = Annotated[str, Field(min_length=1, max_length=64)]


class ContentIn(In):
    kind: Literal["article", "post", "video"]
    title: Annotated[str, Field(max_length=60, examples=["新品上市"])] | None = None
    caption: Annotated[str, Field(max_length=1000)] | None = None
    text: Annotated[str, Field(max_length=1000)] | None = None
    blocks: Annotated[list[dict[str, Any]], Field(max_length=200)] | None = Field(
        None,
        description="article blocks: paragraph, heading, image, video, service_card, coupon_card",
    )
    image_upload_ids: Annotated[list[Id], Field(max_length=9)] | None = None
    upload_id: Id | None = Field(None, description="a video's complete upload (tus)")
    poster: Id | None = None
    service_links: Annotated[list[dict[str, Any]], Field(max_length=5)] | None = Field(
        None, description="{app_id, page, query?, title, image?}"
    )
    coupon_ids: Annotated[list[Id], Field(max_length=5)] | None = None


class PublishIn(In):
    publish_at: Annotated[str, Field(max_length=40, examples=["2026-12-01T10:00:00Z"])] | None = (
        None
    )


class RenditionOut(Out):
    height: int
    bitrate: int


class MediaOut(Out):
    state: Literal["processing", "ready", "failed"]
    progress: float
    error: str | None = Field(description="what went wrong and what to upload instead")
    error_code: str | None = Field(
        description="stable: empty, not_a_video, no_video_stream, corrupt, too_long, too_large, "
        "timeout, upload_missing, failed"
    )
    hls_url: str | None
    mp4_url: str | None
    poster_url: str | None
    duration_s: float | None
    renditions: list[RenditionOut]


class ImageOut(Out):
    upload_id: str
    state: Literal["processing", "ready", "failed"]
    url: str | None = Field(description="large.jpg: the long side at most 1440 px")
    thumb_url: str | None = Field(description="thumb.jpg: the long side at most 360 px")
    width: int | None = Field(description="of large.jpg")
    height: int | None
    error_code: str | None = Field(
        description="stable: empty, not_an_image, unsupported_image, too_large, corrupt, "
        "timeout, upload_missing, failed"
    )
    error: str | None = Field(description="what went wrong and what to upload instead")


class ContentOut(Out):
    id: str
    account_id: str
    kind: str
    status: str
    title: str
    text: str
    caption: str
    blocks: list[dict[str, Any]]
    image_upload_ids: list[str]
    upload_id: str | None
    media: MediaOut | None
    images: list[ImageOut] = Field(
        default_factory=list,
        description="a post's images, then an article's image blocks, in order",
    )
    service_links: list[dict[str, Any]]
    coupon_ids: list[str]
    counters: dict[str, int | float] = Field(
        description="likes, comments, views, plays, play_completions (integers) and "
        "completion_rate (play_completions / plays, 0 without plays)"
    )
    publish_at: str | None
    published_at: str | None
    created_at: str
    updated_at: str
    url: str | None = Field(default=None, description="the content's public page, /c/{id}")
    liked: bool | None = Field(
        default=None, description="read with a fan token: whether the fan likes it"
    )


class ContentPageOut(Out):
    items: list[ContentOut]
    next_cursor: str | None


class PublishOut(Out):
    id: str
    status: str
    publish_at: str | None


class LikeOut(Out):
    liked: bool
    likes: int


class CommentIn(In):
    text: Annotated[str, Field(min_length=1, max_length=500, examples=["好喝！"])]
    parent_id: Id | None = Field(None, description="the top-level comment this replies to")


class CommentOut(Out):
    id: str
    parent_id: str | None
    author_name: str
    by_staff: bool = Field(description="a reply from the account's staff")
    text: str
    at: str
    replies: int
    hidden: bool = Field(description="held for moderators by the sensitive-word review")


class CommentPageOut(Out):
    items: list[CommentOut]
    next_cursor: str | None


class CommentQuery(PageQuery):
    parent_id: Id | None = Field(None, description="list the replies to this comment")


class ContentQuery(PageQuery):
    pass
