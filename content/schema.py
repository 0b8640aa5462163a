"""Every collection index the content domain needs, created at start-up."""

from __future__ import annotations

from content import (
    comments,
    contents,
    coupons,
    discover,
    engagement,
    images,
    likes,
    sensitive,
    uploads,
)
from store.port import Index

INDEXES: list[Index] = [
    *comments.INDEXES,
    *contents.INDEXES,
    *coupons.INDEXES,
    *discover.INDEXES,
    *engagement.INDEXES,
    *images.INDEXES,
    *likes.INDEXES,
    *sensitive.INDEXES,
    *uploads.INDEXES,
]
