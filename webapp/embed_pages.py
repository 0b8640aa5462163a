"""The embed pages (DESIGN §7): ``/embed/{widget}?{attribute}={id}``, one widget on a page of
its own for hosts that cannot run our script — a mini-program ``web-view``, an iframe.

The page holds the widget and ``static/embed.js``, which takes the fan token from the URL's
fragment (never sent to a server) or from the host's ``postMessage``, and tells the host what
happens. Its ``frame-ancestors`` are the ``embed_origins`` of the account the widget shows
(and this deployment, for previews): a page on any other origin cannot frame it. The search
box shows public data about many accounts and may be framed anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from accounts.accounts import get_account, get_account_by_handle
from accounts.errors import NotFound
from content.contents import get_public_content
from live.rooms import get_room
from webapp.api import base_url
from webapp.embedding import account_of, embed_origins
from webapp.pages import render
from webapp.problems import bad_request, problem_response


@dataclass(frozen=True)
class Kind:
    tag: str  # the custom element
    attribute: str  # its id attribute, and the page's query parameter
    param: str | None  # the path parameter kind that names its account (None: public)
    title: str


WIDGETS = {
    "follow": Kind("la-follow", "account", "account_id", "Follow"),
    "like": Kind("la-like", "content", "content_id", "Like"),
    "comments": Kind("la-comments", "content", "content_id", "Comments"),
    "poll": Kind("la-poll", "poll", "poll_id", "Poll"),
    "content-card": Kind("la-content-card", "content", "content_id", "Content"),
    "live": Kind("la-live", "room", "room_id", "Live"),
    "red-packet": Kind("la-red-packet", "room", "room_id", "Red packet"),
    "coupon": Kind("la-coupon", "coupon", "coupon_id", "Coupon"),
    "search-box": Kind("la-search-box", "q", None, "Search"),
}
MAX_ID = 200


def frame_policy(origins: tuple[str, ...] | None) -> str:
    """The embed page's CSP: who may frame it (None: anyone), and what it may load."""
    ancestors = "*" if origins is None else " ".join(("'self'", *origins))
    return (
        f"frame-ancestors {ancestors}; default-src 'self'; img-src 'self' https: data:; "
        "connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; object-src 'none'"
    )


async def embed_page(request: Request) -> Response:
    services = request.app.state.services
    kind = WIDGETS.get(request.path_params["widget"])
    if kind is None:
        return render(request, "not_found.html", 404, what="such widget")
    subject = request.query_params.get(kind.attribute, "").strip()
    if not subject or len(subject) > MAX_ID:
        known = ", ".join(f"/embed/{name}?{k.attribute}=…" for name, k in WIDGETS.items())
        return render(
            request,
            "not_found.html",
            400,
            what=f"widget without its {kind.attribute} (the pages are {known})",
        )
    origins: tuple[str, ...] | None = None
    if kind.param is not None:
        account_id = await account_of(services.store, kind.param, subject)
        if account_id is None:
            return render(request, "not_found.html", 404, what=f"such {kind.attribute}")
        origins = await embed_origins(services.store, account_id)
    page = render(
        request,
        "embed.html",
        kind=kind,
        widget=request.path_params["widget"],
        subject=subject,
        origins=list(origins or ()),
        anywhere=origins is None,
    )
    assert isinstance(page, HTMLResponse)
    page.headers["content-security-policy"] = frame_policy(origins)
    return page


# oEmbed 1.0 (https://oembed.com): a page of ours → an iframe of the embed page that fits it.
OEMBED_SIZES = {"follow": (360, 72), "content-card": (360, 360), "live": (360, 240)}
SIZE = re.compile(r"[0-9]{1,5}")  # ASCII digits only: "²" is a digit to str.isdigit
PAGE_PATHS = [
    (re.compile(r"^/@([a-z0-9_.-]{1,40})$"), "follow"),
    (re.compile(r"^/c/([A-Za-z0-9_]{1,64})$"), "content-card"),
    (re.compile(r"^/r/([A-Za-z0-9_]{1,64})$"), "live"),
]


def oembed_problem(request: Request, status: int, code: str, detail: str) -> Response:
    response = problem_response(bad_request(code, detail, status=status), request.url.path)
    response.headers["access-control-allow-origin"] = "*"
    return response


async def oembed(request: Request) -> Response:
    """``GET /oembed?url=<a page of ours>[&maxwidth=][&maxheight=]``: the oEmbed ``rich``
    answer whose ``html`` frames the page's widget; 404 for a URL that is not ours."""
    services = request.app.state.services
    base = base_url(request, services.settings.base_url)
    asked = request.query_params.get("url", "")
    if request.query_params.get("format", "json") != "json":
        return oembed_problem(request, 501, "format_not_supported", "only format=json is served")
    parts = urlsplit(asked)
    ours = urlsplit(base)
    matched = next(
        ((m, widget) for pattern, widget in PAGE_PATHS if (m := pattern.match(parts.path))), None
    )
    if (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc) or matched is None:
        return oembed_problem(request, 404, "not_found", f"{asked[:200]!r} is not a page of {base}")
    found, widget = matched
    store = services.store
    try:
        if widget == "follow":
            account = await get_account_by_handle(store, found.group(1))
            subject, title = account.id, account.name
        elif widget == "content-card":
            content = await get_public_content(store, found.group(1))
            account = await get_account(store, content.account_id)
            subject = content.id
            title = content.title or content.text[:60] or content.caption[:60] or account.name
        else:
            room = await get_room(store, found.group(1))
            account = await get_account(store, room.account_id)
            subject, title = room.id, room.title
    except NotFound:
        return oembed_problem(request, 404, "not_found", f"nothing is shown at {asked[:200]!r}")
    width, height = OEMBED_SIZES[widget]
    width = _bounded(request.query_params.get("maxwidth"), width)
    height = _bounded(request.query_params.get("maxheight"), height)
    kind = WIDGETS[widget]
    src = f"{base}/embed/{widget}?{urlencode({kind.attribute: subject})}"
    html = (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" '
        f'style="border:0" loading="lazy" title="{escape(title)}"></iframe>'
    )
    body = {
        "version": "1.0",
        "type": "rich",
        "title": title,
        "author_name": account.name,
        "author_url": f"{base}/@{account.handle}",
        "provider_name": "lifeaccount",
        "provider_url": base,
        "html": html,
        "width": width,
        "height": height,
        "cache_age": 3600,
    }
    return JSONResponse(body, headers={"access-control-allow-origin": "*"})


def _bounded(value: str | None, natural: int) -> int:
    """The widget's size within the consumer's maximum (oEmbed §2.2: never above it)."""
    if value is None or not SIZE.fullmatch(value):
        return natural
    return max(1, min(natural, int(value)))


def routes() -> list[Route]:
    return [
        Route("/embed/{widget}", embed_page, methods=["GET"]),
        Route("/oembed", oembed, methods=["GET"]),
    ]
