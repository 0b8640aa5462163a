"""Service links: a way into a brand's mini-program service (DESIGN §1), attached to content
and live pins.

``{app_id, page, query, title, image, url?}``: ``app_id`` names the mini-program, ``page`` a
path inside it, ``query`` the page's parameters. A host opens it through its own bridge
(``navigateToMiniProgram``-style), so nothing here may smuggle in a scheme, a host or a path
out of the mini-program: those are refused, not cleaned. ``url`` is the service's optional
H5 (web) entry, where a click outside a mini-program is redirected: https only and without
credentials, so a click never leaves over plain http nor to a ``brand@evil`` look-alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from accounts.errors import Invalid
from content.fields import check_list, check_object, clean_line
from content.uploads import check_image

APP_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Plain path segments, optionally from the root: no scheme (no ':'), no '?'/'#' (the query has
# its own field), no backslash, no '//' (which a browser would read as a host).
PAGE = re.compile(r"^/?[A-Za-z0-9_.\-~]+(/[A-Za-z0-9_.\-~]+)*$")
MAX_PAGE = 256
MAX_QUERY_BYTES = 1024  # keys and values, UTF-8, all together
MAX_TITLE = 40
MAX_LINKS = 5
MAX_URL = 1024  # leaves room in a redirect's Location for the click id it gains
FIELDS = {"app_id", "page", "query", "title", "image", "url"}


@dataclass(frozen=True)
class ServiceLink:
    app_id: str
    page: str
    title: str
    query: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # an http(s) URL or an upload id
    url: str | None = None  # the service's https H5 entry, for clicks outside a mini-program

    def to_doc(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "page": self.page,
            "query": dict(self.query),
            "title": self.title,
            "image": self.image,
            "url": self.url,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ServiceLink:
        return cls(
            app_id=doc["app_id"],
            page=doc["page"],
            title=doc["title"],
            query=dict(doc.get("query") or {}),
            image=doc.get("image"),
            url=doc.get("url"),
        )


def _page(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("a page path inside the mini-program, e.g. pages/shop/index", field=field)
    if len(value) > MAX_PAGE:
        raise Invalid(f"a page path has at most {MAX_PAGE} characters", field=field)
    if ".." in value:
        raise Invalid("a page path cannot climb out with '..'", field=field)
    if not PAGE.fullmatch(value):
        raise Invalid(
            "a relative page path: letters, digits, '_', '-', '.', '~' and '/', "
            "without a scheme, host, query or fragment",
            field=field,
        )
    return value


def _query(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("the query is an object of strings", field=field)
    size = 0
    for key, item in value.items():
        if not isinstance(key, str) or not key or any(not ch.isprintable() for ch in key):
            raise Invalid("a query key is a non-empty printable string", field=field)
        if not isinstance(item, str):
            raise Invalid("a query value is a string (the query is flat)", field=f"{field}.{key}")
        if any(not ch.isprintable() for ch in item):
            raise Invalid("no control characters", field=f"{field}.{key}")
        size += len(key.encode()) + len(item.encode())
    if size > MAX_QUERY_BYTES:
        raise Invalid(f"the query holds at most {MAX_QUERY_BYTES} bytes", field=field)
    return dict(value)


def _url(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        raise Invalid(f"an https URL of at most {MAX_URL} characters", field=field)
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in value):
        raise Invalid("a URL has no spaces, backslashes or control characters", field=field)
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port  # a malformed port raises ValueError
    except ValueError as exc:
        raise Invalid("a well-formed https URL", field=field) from exc
    if parts.scheme != "https" or not host:
        raise Invalid("an https URL with a host, e.g. https://shop.example/item/1", field=field)
    if "@" in parts.netloc:
        # https://brand.example@evil.example/ reads as the brand but goes to evil.example.
        raise Invalid("a URL without a user name or password", field=field)
    return value


def parse_service_link(raw: Any, *, field: str) -> ServiceLink:
    """One service link from request JSON; errors name the field, e.g. ``service_links.0.page``."""
    body = check_object(raw, field=field, allowed=FIELDS)
    app_id = body.get("app_id")
    if not isinstance(app_id, str) or not APP_ID.fullmatch(app_id):
        raise Invalid("an app id is 1-64 letters, digits or '_'", field=f"{field}.app_id")
    image = body.get("image")
    return ServiceLink(
        app_id=app_id,
        page=_page(body.get("page"), f"{field}.page"),
        title=clean_line(body.get("title"), field=f"{field}.title", longest=MAX_TITLE),
        query=_query(body.get("query"), f"{field}.query"),
        image=None if image is None else check_image(image, field=f"{field}.image"),
        url=_url(body.get("url"), f"{field}.url"),
    )


def parse_service_links(
    raw: Any, *, field: str = "service_links", most: int = MAX_LINKS
) -> list[ServiceLink]:
    items = check_list(raw, field=field, most=most)
    return [parse_service_link(item, field=f"{field}.{i}") for i, item in enumerate(items)]
