"""The embed pages (DESIGN §7): ``/embed/{widget}?{attribute}={id}``, one widget on a page of
its own for hosts that cannot run our script — a mini-program ``web-view``, an iframe.

The page holds the widget and ``static/embed.js``, which takes the fan token from the URL's
fragment (never sent to a server) or from the host's ``postMessage``, and tells the host what
happens. Its ``frame-ancestors`` are the ``embed_origins`` of the account the widget shows
(and this deployment, for previews): a page on any other origin cannot frame it. The search
box shows public data about many accounts and may be framed anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from webapp.embedding import account_of, embed_origins
from webapp.pages import render


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


def routes() -> list[Route]:
    return [Route("/embed/{widget}", embed_page, methods=["GET"])]
