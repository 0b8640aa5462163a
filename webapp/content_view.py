"""A content's public page, ``/c/{id}``: what it says to machines, OpenGraph tags
(https://ogp.me) and schema.org JSON-LD (``VideoObject``, ``Article``, ``SocialMediaPosting``),
built from plain data by pure functions, and the two reads it adds to the content itself (its
comment thread, the coupons its blocks show). ``content.html`` renders them. Media URLs are
stored relative to the deployment (``/media/…``), and both vocabularies want absolute ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accounts.accounts import Account
from accounts.errors import NotFound
from content.blocks import CouponCard, Kind, Paragraph
from content.comments import Comment, list_comments
from content.contents import Content, Media, MediaState
from content.coupons import Coupon, get_coupon
from content.images import Image, ImageState
from store.port import DocumentStore

DESCRIPTION_CHARS = 200
SITE_NAME = "lifeaccount"
SHOWN_COMMENTS = 20  # top-level comments on the page; the widget pages through the rest
SHOWN_REPLIES = 5


@dataclass(frozen=True)
class PageMeta:
    url: str
    title: str
    description: str
    og: list[tuple[str, str]]  # (property, content) in the order the tags appear
    json_ld: dict[str, Any]


def absolute(base: str, url: str | None) -> str | None:
    """A stored media URL made absolute against the deployment's base URL."""
    if not url:
        return None
    if "://" in url:
        return url
    return f"{base}{url if url.startswith('/') else '/' + url}"


def iso_duration(seconds: float) -> str:
    """An ISO 8601 duration (``PT1M33S``), as schema.org's ``duration`` takes it; whole
    seconds, since players and search engines show no finer."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or out == "PT":
        out += f"{secs}S"
    return out


def ready_media(content: Content) -> Media | None:
    """A video's media once its files exist (a published video always has them)."""
    media = content.media
    return media if media is not None and media.state is MediaState.READY else None


def page_title(content: Content) -> str:
    if content.title:
        return content.title
    return _excerpt(content.text, 60) or "Post"


def description(content: Content) -> str:
    if content.kind is Kind.VIDEO:
        text = content.caption
    elif content.kind is Kind.POST:
        text = content.text
    else:
        text = next((b.text for b in content.blocks if isinstance(b, Paragraph)), "")
    return _excerpt(text, DESCRIPTION_CHARS) or page_title(content)


def page_meta(
    content: Content, account: Account, base: str, images: Mapping[str, Image] | None = None
) -> PageMeta:
    """The OpenGraph tags and JSON-LD of a published content's page at ``base``/c/{id};
    ``images`` (its image records) give an article or post its preview pictures."""
    url = f"{base}/c/{content.id}"
    title = page_title(content)
    summary = description(content)
    author = {"@type": "Organization", "name": account.name, "url": f"{base}/@{account.handle}"}
    og: list[tuple[str, str]] = [
        ("og:site_name", SITE_NAME),
        ("og:url", url),
        ("og:title", title),
        ("og:description", summary),
    ]
    media = ready_media(content)
    if content.kind is Kind.VIDEO:
        og.insert(0, ("og:type", "video.other"))
        json_ld: dict[str, Any] = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": title,
            "description": summary,
            "uploadDate": content.published_at or content.created_at,
            "url": url,
            "author": author,
        }
        if media is not None:
            poster = absolute(base, media.poster_url)
            mp4 = absolute(base, media.mp4_url)
            if poster:
                og.append(("og:image", poster))
                json_ld["thumbnailUrl"] = [poster]
            if mp4:
                og += [("og:video", mp4), ("og:video:type", "video/mp4")]
                if mp4.startswith("https://"):
                    og.append(("og:video:secure_url", mp4))
                json_ld["contentUrl"] = mp4
            if media.duration_s is not None:
                og.append(("video:duration", str(round(media.duration_s))))
                json_ld["duration"] = iso_duration(media.duration_s)
        json_ld["interactionStatistic"] = [
            _counter("LikeAction", content.counters.likes),
            _counter("CommentAction", content.counters.comments),
        ]
    else:
        og.insert(0, ("og:type", "article"))
        if content.published_at:
            og.append(("article:published_time", content.published_at))
        json_ld = {
            "@context": "https://schema.org",
            "@type": "Article" if content.kind is Kind.ARTICLE else "SocialMediaPosting",
            "headline": title,
            "description": summary,
            "datePublished": content.published_at or content.created_at,
            "dateModified": content.updated_at,
            "url": url,
            "mainEntityOfPage": url,
            "author": author,
            "publisher": author,
            "commentCount": content.counters.comments,
        }
        shown = [(images or {}).get(upload_id) for upload_id in content.image_ids]
        pictures = [i for i in shown if i is not None and i.state is ImageState.READY and i.url]
        for picture in pictures[:4]:
            og += [
                ("og:image", absolute(base, picture.url) or ""),
                ("og:image:width", str(picture.width)),
                ("og:image:height", str(picture.height)),
            ]
        if pictures:
            json_ld["image"] = [absolute(base, p.url) for p in pictures[:4]]
    return PageMeta(url, title, summary, og, json_ld)


def _counter(action: str, count: int) -> dict[str, Any]:
    return {
        "@type": "InteractionCounter",
        "interactionType": {"@type": action},
        "userInteractionCount": count,
    }


def _excerpt(text: str, most: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[: most - 1].rstrip() + "…"


@dataclass(frozen=True)
class Thread:
    comment: Comment
    replies: list[Comment]


async def comment_threads(store: DocumentStore, content_id: str) -> tuple[list[Thread], bool]:
    """The first top-level comments, oldest first, each with its first replies (the brand's
    answers among them), and whether more top-level comments follow."""
    page = await list_comments(store, content_id, parent_id=None, limit=SHOWN_COMMENTS, cursor=None)
    threads = []
    for comment in page.items:
        replies: list[Comment] = []
        if comment.replies:
            replies = (
                await list_comments(
                    store, content_id, parent_id=comment.id, limit=SHOWN_REPLIES, cursor=None
                )
            ).items
        threads.append(Thread(comment, replies))
    return threads, page.next_cursor is not None


async def block_coupons(store: DocumentStore, content: Content) -> dict[str, Coupon]:
    """The coupons a content shows (its article's coupon cards, then those attached to it), by
    id; one deleted since is left out and its card says so."""
    named = [b.coupon_id for b in content.blocks if isinstance(b, CouponCard)]
    found: dict[str, Coupon] = {}
    for coupon_id in dict.fromkeys([*named, *content.coupon_ids]):
        try:
            found[coupon_id] = await get_coupon(store, coupon_id)
        except NotFound:
            continue
    return found
