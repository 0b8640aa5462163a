"""Request and response bodies of editing, archiving, the review queue and the sensitive-word
lists. The domain checks each kind's own rules and names the field at fault; these models pin
the shape."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from content.publishing import MAX_REASON
from content.sensitive import MAX_WORD, MAX_WORDS_PER_CALL
from webapp.schemas import In, Out
from webapp.schemas_content import ContentOut, Id


class ContentEditIn(In):
    """Only the fields sent change; a field that the content's kind lacks is refused."""

    title: Annotated[str, Field(max_length=60, examples=["新品上市"])] | None = None
    caption: Annotated[str, Field(max_length=1000)] | None = None
    text: Annotated[str, Field(max_length=1000)] | None = None
    blocks: Annotated[list[dict[str, Any]], Field(max_length=200)] | None = Field(
        None,
        description="article blocks: paragraph, heading, image, video, service_card, coupon_card",
    )
    image_upload_ids: Annotated[list[Id], Field(max_length=9)] | None = None
    upload_id: Id | None = Field(
        None, description="a draft video's new upload (tus); its transcode starts at once"
    )
    poster: Id | None = Field(None, description="an image upload; null clears it")
    service_links: Annotated[list[dict[str, Any]], Field(max_length=5)] | None = Field(
        None, description="{app_id, page, query?, title, image?}"
    )
    coupon_ids: Annotated[list[Id], Field(max_length=5)] | None = None


class RejectIn(In):
    reason: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_REASON,
            description="what the editor should change; shown to them",
            examples=["标题含有违规词"],
        ),
    ]


class MatchOut(Out):
    field: str | None = Field(description="the content's field, e.g. title or blocks.0.text")
    word: str = Field(description="the listed word that matched")
    start: int
    end: int = Field(description="exclusive: the field's text[start:end] is the match")


class ReviewOut(Out):
    """A content with its last sensitive-word review: why it waits, or waited, for a
    moderator."""

    content: ContentOut
    words: list[str] = Field(description="the distinct listed words found, in text order")
    matches: list[MatchOut] = Field(description="where they are (the first 50)")
    reject_reason: str | None = Field(description="the last rejection's reason, if any")


class ReviewPageOut(Out):
    items: list[ReviewOut]
    next_cursor: str | None


Word = Annotated[str, Field(min_length=1, max_length=MAX_WORD, examples=["赌博"])]


class WordsIn(In):
    words: Annotated[list[Word], Field(min_length=1, max_length=MAX_WORDS_PER_CALL)] = Field(
        description="matched case-insensitively, full-width Latin as half-width"
    )


class WordsOut(Out):
    words: list[str] = Field(description="the account's own list, in order")


class WordsAddedOut(Out):
    added: int = Field(description="how many were not listed yet")


class WordsRemovedOut(Out):
    removed: int = Field(description="how many were listed")


class HeldCommentOut(Out):
    """A comment held for a moderator, with what held it."""

    id: str
    content_id: str
    parent_id: str | None
    author_name: str
    text: str
    at: str
    words: list[str] = Field(description="the listed words the review found, in text order")


class HeldCommentPageOut(Out):
    items: list[HeldCommentOut]
    next_cursor: str | None
