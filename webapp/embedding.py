"""Widgets on other origins (DESIGN §7): which API calls a page elsewhere may make, and from
where.

A widget on a brand's web shop calls this API from the shop's origin. The browser asks first
(a CORS preflight, since every widget call carries a bearer token or a JSON body) and lets the
page read the answer only if we grant that origin. We grant it per account: the account a call
concerns (the one the path names, or the account of its content, room, red packet, coupon or
poll) must list the origin in its ``embed_origins``. Only the calls widgets make are open to
other origins at all (``WIDGET_CALLS``); the rest, and every call from an unlisted origin, is
refused here with 403 ``origin_not_allowed`` and no CORS grant, before any handler runs — so
a request the browser would have sent without asking (a plain GET) has no effect either.
Grants never include credentials: a widget authenticates with a fan token, never a cookie.

Our own pages (same origin) and callers that send no ``Origin`` (servers, curl) pass untouched.
The search box is public data about many accounts and is granted to every origin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts.accounts import ACCOUNTS, normalize_origin
from accounts.errors import Invalid
from content.contents import CONTENTS
from content.coupons import COUPONS
from live.polls import POLLS
from live.red_packets import PACKETS
from live.rooms import ROOMS
from store.port import DocumentStore
from webapp.problems import bad_request, problem_response

EVERY_ORIGIN = "*"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
EXPOSE_HEADERS = "Idempotent-Replayed, Retry-After, Location"
MAX_AGE_S = "600"

# The calls widgets make, and the path parameter that names what the call concerns (whose
# account decides); None: public to every origin.
WIDGET_CALLS: dict[str, tuple[frozenset[str], str | None]] = {
    "/api/v1/accounts/{account_id}": (frozenset({"GET"}), "account_id"),
    "/api/v1/accounts/{account_id}/follow": (frozenset({"POST", "DELETE"}), "account_id"),
    "/api/v1/contents/{content_id}": (frozenset({"GET"}), "content_id"),
    "/api/v1/contents/{content_id}/likes": (frozenset({"POST", "DELETE"}), "content_id"),
    "/api/v1/contents/{content_id}/comments": (frozenset({"GET", "POST"}), "content_id"),
    "/api/v1/contents/{content_id}/views": (frozenset({"POST"}), "content_id"),
    "/api/v1/polls/{poll_id}": (frozenset({"GET"}), "poll_id"),
    "/api/v1/polls/{poll_id}/votes": (frozenset({"POST"}), "poll_id"),
    "/api/v1/rooms/{room_id}": (frozenset({"GET"}), "room_id"),
    "/api/v1/rooms/{room_id}/pins": (frozenset({"GET"}), "room_id"),
    "/api/v1/rooms/{room_id}/pins/{pin_id}/clicks": (frozenset({"POST"}), "room_id"),
    "/api/v1/red-packets/{red_packet_id}": (frozenset({"GET"}), "red_packet_id"),
    "/api/v1/red-packets/{red_packet_id}/grabs": (frozenset({"POST"}), "red_packet_id"),
    "/api/v1/coupons/{coupon_id}": (frozenset({"GET"}), "coupon_id"),
    "/api/v1/coupons/{coupon_id}/claims": (frozenset({"POST"}), "coupon_id"),
    "/api/v1/search/box": (frozenset({"GET"}), None),
}

# Where the account of each kind of id is found: its collection (the account's own id is
# itself).
OWNER_OF = {
    "content_id": CONTENTS,
    "poll_id": POLLS,
    "room_id": ROOMS,
    "red_packet_id": PACKETS,
    "coupon_id": COUPONS,
}


@dataclass(frozen=True)
class _Call:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    param: str | None


_CALLS = [
    _Call(compile_path(path)[0], methods, param) for path, (methods, param) in WIDGET_CALLS.items()
]


def _match(path: str) -> tuple[_Call, dict[str, str]] | None:
    for call in _CALLS:
        found = call.pattern.match(path)
        if found:
            return call, found.groupdict()
    return None


async def account_of(store: DocumentStore, param: str, value: str) -> str | None:
    """The account a path parameter's id belongs to; None when there is no such thing."""
    if param == "account_id":
        found = await store.collection(ACCOUNTS).get(value)
        return None if found is None else value
    doc = await store.collection(OWNER_OF[param]).get(value)
    return None if doc is None else str(doc["account_id"])


async def embed_origins(store: DocumentStore, account_id: str) -> tuple[str, ...]:
    doc = await store.collection(ACCOUNTS).get(account_id)
    return () if doc is None else tuple(doc.get("embed_origins") or ())


def origin_of(url: str) -> str:
    """The origin of a URL, spelled as an account's embed origins are (``normalize_origin``:
    lower-case scheme and host, the default port left out). ValueError for what has none."""
    parts = urlsplit(url.strip())
    try:
        return normalize_origin(f"{parts.scheme}://{parts.netloc}", field="origin")
    except Invalid as exc:
        raise ValueError(str(exc)) from None


def same_origin(scope: Scope, origin: str, configured: str) -> bool:
    """Whether a request comes from this deployment's own pages: the browser says so
    (``Sec-Fetch-Site: same-origin``), or its Origin is the configured base URL's or the one
    the request itself was made to."""
    headers = Headers(scope=scope)
    if headers.get("sec-fetch-site") == "same-origin":
        return True
    try:
        theirs = origin_of(origin)
        if configured and theirs == origin_of(configured):
            return True
        return theirs == origin_of(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
    except ValueError:
        return False


class EmbedCors:
    """The CORS side of embedding (see the module's text), as pure ASGI middleware."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Callable[[Scope], DocumentStore],
        base_url: Callable[[Scope], str],
    ) -> None:
        self.app = app
        self.store = store
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        if origin is None or same_origin(scope, origin, self.base_url(scope)):
            await self.app(scope, receive, send)
            return
        preflight = scope["method"] == "OPTIONS"
        method = (
            Headers(scope=scope).get("access-control-request-method", "").upper()
            if preflight
            else scope["method"]
        )
        granted = await self._grant(scope, origin, "GET" if method == "HEAD" else method)
        if granted is None:
            await self._refuse(scope, receive, send, origin)
            return
        if preflight:
            headers = {
                **_grant_headers(granted),
                "access-control-allow-methods": method,
                "access-control-allow-headers": ALLOW_HEADERS,
                "access-control-max-age": MAX_AGE_S,
            }
            await send({"type": "http.response.start", "status": 204, "headers": _raw(headers)})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_granted(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _grant_headers(granted).items():
                    if name == "vary" and headers.get("vary"):
                        value = f"{headers['vary']}, {value}"  # add to what the answer varies by
                    headers[name] = value
                headers["access-control-expose-headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_granted)

    async def _grant(self, scope: Scope, origin: str, method: str) -> str | None:
        """The Access-Control-Allow-Origin this call gets, or None for none."""
        found = _match(scope["path"])
        if found is None:
            return None
        call, params = found
        if method not in call.methods:
            return None
        if call.param is None:
            return EVERY_ORIGIN
        store = self.store(scope)
        account_id = await account_of(store, call.param, params[call.param])
        if account_id is None:
            return None
        return origin if origin in await embed_origins(store, account_id) else None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, origin: str) -> None:
        problem = bad_request(
            "origin_not_allowed",
            f"{origin} may not call {scope['path']} from a page: the account lists the "
            "origins its widgets run on in its embed_origins",
            status=403,
        )
        response = problem_response(problem, scope["path"])
        await response(scope, receive, send)


def _grant_headers(granted: str) -> dict[str, str]:
    headers = {"access-control-allow-origin": granted}
    if granted != EVERY_ORIGIN:
        headers["vary"] = "Origin"
    return headers


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
