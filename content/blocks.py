"""The bodies of the three content kinds, from request JSON to stored fields and back.

``article``: a title and rich blocks; ``post``: text and up to nine images; ``video``: a title,
a caption and one uploaded video (its media state lives in ``contents``). Every kind may carry
service links and coupon ids. Parsing is pure except for the coupon check, which needs the
store to know that a coupon is this account's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from accounts.errors import Invalid
from content.coupons import check_coupon_id, check_coupon_ids
from content.fields import check_int, check_list, check_object, clean_line, clean_text
from content.links import ServiceLink, parse_service_link, parse_service_links
from content.uploads import check_upload_id
from store.port import DocumentStore

MAX_TITLE = 60
MAX_BLOCKS = 200
MAX_PARAGRAPH = 5_000
MAX_HEADING = 100
MAX_IMAGE_CAPTION = 200
MAX_POST_TEXT = 1_000
MAX_POST_IMAGES = 9
MAX_CAPTION = 1_000


class Kind(StrEnum):
    ARTICLE = "article"
    POST = "post"
    VIDEO = "video"


@dataclass(frozen=True)
class Paragraph:
    text: str
    type: str = "paragraph"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int  # 2 or 3: the title is the page's only level 1
    type: str = "heading"


@dataclass(frozen=True)
class Image:
    upload_id: str
    caption: str = ""
    type: str = "image"


@dataclass(frozen=True)
class Video:
    upload_id: str
    type: str = "video"


@dataclass(frozen=True)
class ServiceCard:
    service_link: ServiceLink
    type: str = "service_card"


@dataclass(frozen=True)
class CouponCard:
    coupon_id: str
    type: str = "coupon_card"


Block = Paragraph | Heading | Image | Video | ServiceCard | CouponCard


def block_to_doc(block: Block) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return {"type": block.type, "text": block.text}
    if isinstance(block, Heading):
        return {"type": block.type, "text": block.text, "level": block.level}
    if isinstance(block, Image):
        return {"type": block.type, "upload_id": block.upload_id, "caption": block.caption}
    if isinstance(block, Video):
        return {"type": block.type, "upload_id": block.upload_id}
    if isinstance(block, ServiceCard):
        return {"type": block.type, "service_link": block.service_link.to_doc()}
    return {"type": block.type, "coupon_id": block.coupon_id}


def block_from_doc(doc: dict[str, Any]) -> Block:
    kind = doc["type"]
    if kind == "paragraph":
        return Paragraph(doc["text"])
    if kind == "heading":
        return Heading(doc["text"], doc["level"])
    if kind == "image":
        return Image(doc["upload_id"], doc.get("caption", ""))
    if kind == "video":
        return Video(doc["upload_id"])
    if kind == "service_card":
        return ServiceCard(ServiceLink.from_doc(doc["service_link"]))
    return CouponCard(doc["coupon_id"])


_BLOCK_FIELDS = {
    "paragraph": {"type", "text"},
    "heading": {"type", "text", "level"},
    "image": {"type", "upload_id", "caption"},
    "video": {"type", "upload_id"},
    "service_card": {"type", "service_link"},
    "coupon_card": {"type", "coupon_id"},
}


async def parse_block(store: DocumentStore, account_id: str, raw: Any, *, field: str) -> Block:
    if not isinstance(raw, dict):
        raise Invalid("a block is an object with a type", field=field)
    kind = raw.get("type")
    if kind not in _BLOCK_FIELDS:
        raise Invalid(
            f"a block type is one of {', '.join(_BLOCK_FIELDS)}",
            code="unknown_block_type",
            field=f"{field}.type",
        )
    body = check_object(raw, field=field, allowed=_BLOCK_FIELDS[kind])
    if kind == "paragraph":
        text = clean_text(body.get("text"), field=f"{field}.text", longest=MAX_PARAGRAPH)
        if not text:
            raise Invalid("cannot be blank", field=f"{field}.text")
        return Paragraph(text)
    if kind == "heading":
        level = check_int(body.get("level", 2), field=f"{field}.level", least=2, most=3)
        return Heading(
            clean_line(body.get("text"), field=f"{field}.text", longest=MAX_HEADING), level
        )
    if kind == "image":
        return Image(
            check_upload_id(body.get("upload_id"), field=f"{field}.upload_id"),
            clean_line(
                body.get("caption"),
                field=f"{field}.caption",
                longest=MAX_IMAGE_CAPTION,
                required=False,
            ),
        )
    if kind == "video":
        return Video(check_upload_id(body.get("upload_id"), field=f"{field}.upload_id"))
    if kind == "service_card":
        return ServiceCard(
            parse_service_link(body.get("service_link"), field=f"{field}.service_link")
        )
    coupon_id = await check_coupon_id(
        store, account_id, body.get("coupon_id"), field=f"{field}.coupon_id"
    )
    return CouponCard(coupon_id)


# What each kind's body may hold; a key outside it is refused as a typo (``unknown_field``).
_COMMON = {"title", "service_links", "coupon_ids"}
KIND_FIELDS: dict[Kind, set[str]] = {
    Kind.ARTICLE: _COMMON | {"blocks"},
    Kind.POST: _COMMON | {"text", "image_upload_ids"},
    Kind.VIDEO: _COMMON | {"caption", "upload_id", "poster"},
}
# Text a review reads, per field name; blocks add ``blocks.<i>.text`` and the like.
REVIEWED = ("title", "text", "caption")


def parse_kind(raw: Any) -> Kind:
    if raw not in {k.value for k in Kind}:
        raise Invalid("kind is one of article, post, video", code="unknown_kind", field="kind")
    return Kind(raw)


async def parse_fields(
    store: DocumentStore,
    account_id: str,
    kind: Kind,
    body: dict[str, Any],
    *,
    partial: bool,
) -> dict[str, Any]:
    """Check the fields of a create (``partial=False``: required ones must be there) or an
    edit (only those given), returning them as stored."""
    check_object(body, field="", allowed=KIND_FIELDS[kind] | ({"kind"} if not partial else set()))
    out: dict[str, Any] = {}

    def given(name: str) -> bool:
        return name in body or not partial

    if given("title"):
        out["title"] = clean_line(
            body.get("title"), field="title", longest=MAX_TITLE, required=kind != Kind.POST
        )
    if given("service_links"):
        links = parse_service_links(body.get("service_links"))
        out["service_links"] = [link.to_doc() for link in links]
    if given("coupon_ids"):
        out["coupon_ids"] = await check_coupon_ids(store, account_id, body.get("coupon_ids"))
    if kind == Kind.ARTICLE and given("blocks"):
        raw = check_list(body.get("blocks"), field="blocks", most=MAX_BLOCKS)
        if not raw:
            raise Invalid("an article needs at least one block", field="blocks")
        blocks = [
            await parse_block(store, account_id, item, field=f"blocks.{i}")
            for i, item in enumerate(raw)
        ]
        out["blocks"] = [block_to_doc(b) for b in blocks]
    if kind == Kind.POST:
        if given("text"):
            out["text"] = clean_text(body.get("text"), field="text", longest=MAX_POST_TEXT)
        if given("image_upload_ids"):
            images = check_list(
                body.get("image_upload_ids"), field="image_upload_ids", most=MAX_POST_IMAGES
            )
            out["image_upload_ids"] = [
                check_upload_id(u, field=f"image_upload_ids.{i}") for i, u in enumerate(images)
            ]
    if kind == Kind.VIDEO:
        if given("caption"):
            out["caption"] = clean_text(body.get("caption"), field="caption", longest=MAX_CAPTION)
        if given("upload_id"):
            out["upload_id"] = check_upload_id(body.get("upload_id"), field="upload_id")
        if given("poster"):
            poster = body.get("poster")
            out["poster"] = None if poster is None else check_upload_id(poster, field="poster")
    return out


def check_post_has_body(doc: dict[str, Any]) -> None:
    """A post says something: text, images or both (checked on the merged document)."""
    if not doc.get("text") and not doc.get("image_upload_ids"):
        raise Invalid("a post needs text or at least one image", field="text")


def reviewed_texts(doc: dict[str, Any]) -> dict[str, str]:
    """Every human-written text of a content, by field name, for the sensitive-word review."""
    texts = {name: doc[name] for name in REVIEWED if doc.get(name)}
    for i, block in enumerate(doc.get("blocks") or ()):
        if block.get("text"):
            texts[f"blocks.{i}.text"] = block["text"]
        if block.get("caption"):
            texts[f"blocks.{i}.caption"] = block["caption"]
        if block.get("service_link"):
            texts[f"blocks.{i}.service_link.title"] = block["service_link"]["title"]
    for i, link in enumerate(doc.get("service_links") or ()):
        texts[f"service_links.{i}.title"] = link["title"]
    return texts
