"""Routes of coupons, service-link clicks, conversions and stats (DESIGN §4, §8).

``GET /go/{click_id}`` and ``GET /open/{click_id}`` are for people following a link, not API
calls, so they are plain routes outside the OpenAPI document; their failures are still
problem details.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from accounts.accounts import get_account
from accounts.errors import DomainError, Invalid, NotFound
from content import clicks, conversions, coupons
from content.contents import Content, Status
from content.coupons import Coupon
from content.links import ServiceLink
from live import pins
from webapp import schemas_commerce as s
from webapp.api import (
    ACCOUNT_PATH,
    ANY_ROLE,
    FAN,
    IDEMPOTENCY_HEADER,
    OWNER_EDITOR,
    STAFF_OR_KEY,
    Call,
    Endpoint,
    Reply,
)
from webapp.auth import Kind
from webapp.context import Services
from webapp.problems import Problem, problem_response
from webapp.schemas import PageQuery

CLAIMS_PATH = "/api/v1/coupons/{coupon_id}/claims"
CONVERSIONS_PATH = "/api/v1/conversions"


# -- click URLs in content answers ------------------------------------------------------------
def service_links_out(content: Content, base: str, secret: bytes) -> list[dict[str, Any]]:
    """A content's service links as answers show them. With the deployment's ``base`` URL and
    ``secret``, a published content's links also carry a ``click_url``: a fresh click id each
    time, minted, not stored."""
    links = [link.to_doc() for link in content.service_links]
    if not (base and secret) or content.status is not Status.PUBLISHED:
        return links
    return [
        {**doc, "click_url": click_url(base, secret, content.id, link)}
        for link, doc in zip(content.service_links, links, strict=True)
    ]


def click_url(base: str, secret: bytes, content_id: str, link: ServiceLink) -> str:
    """Where a page sends a click on one of a published content's links."""
    return f"{base}/go/{clicks.mint_click_id(secret, content_id, link)}"


# -- coupons ----------------------------------------------------------------------------------
def coupon_out(coupon: Coupon, claimed: int | None = None) -> s.CouponOut:
    mine = {} if claimed is None else {"claimed": claimed}  # unset: left out of the answer
    return s.CouponOut(
        id=coupon.id,
        account_id=coupon.account_id,
        title=coupon.title,
        description=coupon.description,
        total=coupon.total,
        stock=coupon.stock,
        claimed_count=coupon.claimed,
        per_fan_limit=coupon.per_fan_limit,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        created_at=coupon.created_at,
        **mine,
    )


def claim_out(claim: coupons.Claim) -> s.ClaimOut:
    return s.ClaimOut(
        id=claim.id,
        coupon_id=claim.coupon_id,
        account_id=claim.account_id,
        number=claim.number,
        at=claim.at,
    )


async def create_coupon(call: Call) -> s.CouponOut:
    body: s.CouponIn = call.body
    coupon = await coupons.create_coupon(
        call.services.store,
        call.params["account_id"],
        title=body.title,
        stock=body.stock,
        per_fan_limit=body.per_fan_limit,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        description=body.description,
        now=call.now,
    )
    return coupon_out(coupon)


async def list_coupons(call: Call) -> s.CouponPageOut:
    q: PageQuery = call.query
    store, account_id = call.services.store, call.params["account_id"]
    await get_account(store, account_id)
    page = await coupons.account_coupons(store, account_id, limit=q.limit, cursor=q.cursor)
    return s.CouponPageOut(items=[coupon_out(c) for c in page.items], next_cursor=page.next_cursor)


async def read_coupon(call: Call) -> s.CouponOut:
    store, caller = call.services.store, call.caller
    coupon = await coupons.get_coupon(store, call.params["coupon_id"])
    if caller.kind is Kind.FAN:
        return coupon_out(coupon, await coupons.claimed_by(store, coupon.id, caller.id))
    return coupon_out(coupon)


def _claim_key(request: Request) -> str | None:
    """The claim's own idempotency key. It goes to the domain rather than through the
    generic replay, so that a retry answers with ``repeat`` (DESIGN §8), as the room channel's
    op of the same id does."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (key.isascii() and key.isprintable()):
        raise Invalid("an Idempotency-Key is printable ASCII", field=IDEMPOTENCY_HEADER)
    return key


async def claim_coupon(call: Call) -> Reply:
    result = await coupons.claim(
        call.services.store,
        call.params["coupon_id"],
        fan_id=call.caller.id,
        idempotency_key=_claim_key(call.request),
        now=call.now,
    )
    out = s.ClaimResultOut(
        **claim_out(result.claim).model_dump(), repeat=result.repeat, stock=result.stock
    )
    return Reply(out, status=200 if result.repeat else 201)


async def my_coupons(call: Call) -> s.ClaimPageOut:
    q: s.MyCouponsQuery = call.query
    page = await coupons.fan_claims(
        call.services.store,
        call.caller.id,
        account_id=q.account_id,
        limit=q.limit,
        cursor=q.cursor,
    )
    return s.ClaimPageOut(items=[claim_out(c) for c in page.items], next_cursor=page.next_cursor)


# -- conversions and stats --------------------------------------------------------------------
async def report_conversion(call: Call) -> Reply:
    body: s.ConversionIn = call.body
    assert call.caller.account_id is not None  # an API key's account
    done = await conversions.report(
        call.services.store,
        call.caller.account_id,
        click_id=body.click_id,
        order_id=body.order_id,
        amount=body.amount,
        currency=body.currency,
        now=call.now,
    )
    c = done.conversion
    out = s.ConversionOut(
        id=c.id,
        click_id=c.click_id,
        content_id=c.content_id,
        room_id=c.room_id,
        order_id=c.order_id,
        amount=c.amount,
        currency=c.currency,
        at=c.at,
        repeat=done.repeat,
    )
    return Reply(out, status=200 if done.repeat else 201)


def stats_row(row: conversions.ContentStats) -> s.ContentStatsOut:
    return s.ContentStatsOut(
        content_id=row.content_id,
        kind=row.kind,
        status=row.status,
        title=row.title,
        published_at=row.published_at,
        views=row.views,
        plays=row.plays,
        play_completions=row.play_completions,
        completion_rate=row.completion_rate,
        likes=row.likes,
        comments=row.comments,
        clicks=row.clicks,
        conversions=row.conversions,
        amount=row.amount,
        amounts=row.amounts,
    )


async def account_stats(call: Call) -> s.StatsOut:
    q: PageQuery = call.query
    store = call.services.store
    account = await get_account(store, call.params["account_id"])
    page = await conversions.content_stats(store, account.id, limit=q.limit, cursor=q.cursor)
    return s.StatsOut(
        account_id=account.id,
        followers=account.follower_count,
        contents=[stats_row(r) for r in page.items],
        next_cursor=page.next_cursor,
    )


# -- following a click ------------------------------------------------------------------------
async def go(request: Request) -> Response:
    """Record the click (a GET; a HEAD only checks it) and send the visitor on: to the
    service's H5 URL, else to the page that opens the mini-program; a room's content card
    to the content's page."""
    services: Services = request.app.state.services
    click_id = request.path_params["click_id"]
    checking = request.method == "HEAD"  # link checkers and previews are not visitors
    try:
        if _pinned(services, click_id):
            if checking:
                pin = await pins.resolve_click(services.store, services.secret, click_id)
            else:
                pin = (
                    await pins.follow_click(
                        services.store, services.secret, click_id, now=services.now()
                    )
                ).pin
            if pin.link is None:  # a content card
                return RedirectResponse(f"/c/{pin.target['id']}", status_code=302)
            link = pin.link
        elif checking:
            content, index = await clicks.resolve(services.store, services.secret, click_id)
            link = clicks.links_of(content)[index]
        else:
            followed = await clicks.follow(
                services.store, services.secret, click_id, now=services.now()
            )
            link = followed.link
    except DomainError as exc:
        return problem_response(Problem.from_domain(exc), request.url.path)
    target = clicks.landing_url(link, click_id) or f"/open/{click_id}"
    return RedirectResponse(target, status_code=302)


def _pinned(services: Services, click_id: str) -> bool:
    """Whether a click id is a room pin's (a bad id is the content path's to refuse)."""
    try:
        return pins.is_pin_click(clicks.read_click_id(services.secret, click_id))
    except DomainError:
        return False


async def _link_of(services: Services, click_id: str) -> ServiceLink:
    if _pinned(services, click_id):
        link = (await pins.resolve_click(services.store, services.secret, click_id)).link
        if link is None:
            raise NotFound("click", click_id[: clicks.MAX_CLICK_ID], field="click_id")
        return link
    content, index = await clicks.resolve(services.store, services.secret, click_id)
    return clicks.links_of(content)[index]


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    # The app's Jinja2 environment, as webapp.pages renders with; pages.py is not imported
    # because it imports the content routes, which import this module's click URLs.
    templates: Environment = request.app.state.templates
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


async def open_page(request: Request) -> Response:
    """The mini-program target of a click, for a web-view to open or a person to copy."""
    services: Services = request.app.state.services
    click_id = request.path_params["click_id"]
    try:
        link = await _link_of(services, click_id)
    except DomainError:
        return _page(request, "not_found.html", 404, what="such link")
    query = clicks.page_query(link, click_id)
    path = "/" + link.page.lstrip("/")
    target = {
        "app_id": link.app_id,
        "page": link.page,
        "query": query,
        "path": f"{path}?{urlencode(query)}",
    }
    image = link.image if link.image and "://" in link.image else None
    return _page(request, "open.html", link=link, image=image, target=target)


def routes() -> list[Route]:
    return [
        Route("/go/{click_id}", go, methods=["GET"]),
        Route("/open/{click_id}", open_page, methods=["GET"]),
    ]


def amend_document(document: dict[str, Any]) -> None:
    """What the endpoint table cannot say: a repeat answers 200 (the first answer was 201),
    and a claim's Idempotency-Key goes to the domain (so it is no generic replay)."""
    for path in (CLAIMS_PATH, CONVERSIONS_PATH):
        op = document["paths"][path]["post"]
        op["responses"]["200"] = {
            **op["responses"]["201"],
            "description": "A repeat: the first answer, with repeat true",
        }
    document["paths"][CLAIMS_PATH]["post"].setdefault("parameters", []).append(
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "description": "a unique key per intended claim; a retry with it answers the "
            "first claim with repeat true",
            "schema": {"type": "string", "minLength": 1, "maxLength": coupons.MAX_KEY},
        }
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{ACCOUNT_PATH}/coupons",
        create_coupon,
        "Create a coupon",
        "coupons",
        response=s.CouponOut,
        body=s.CouponIn,
        status=201,
        allow=STAFF_OR_KEY,
        roles=OWNER_EDITOR,
        errors=(403, 404, 422),
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/coupons",
        list_coupons,
        "An account's coupons, newest first",
        "coupons",
        response=s.CouponPageOut,
        query=PageQuery,
        errors=(400, 404, 422),
    ),
    Endpoint(
        "GET",
        "/api/v1/coupons/{coupon_id}",
        read_coupon,
        "A coupon (with a fan token also how many this fan claimed)",
        "coupons",
        response=s.CouponOut,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        CLAIMS_PATH,
        claim_coupon,
        "Claim a coupon (fan)",
        "coupons",
        response=s.ClaimResultOut,
        status=201,
        allow=FAN,
        errors=(401, 403, 404, 409, 422),
        description="Exactly once per claim: at most per_fan_limit per fan, never below zero "
        "stock, only inside the validity window (409 coupon_out_of_stock, "
        "coupon_limit_reached, coupon_not_started, coupon_expired). A retry with the same "
        "Idempotency-Key answers the first claim with `repeat: true` (200).",
    ),
    Endpoint(
        "GET",
        "/api/v1/me/coupons",
        my_coupons,
        "The fan's coupon claims, newest first",
        "me",
        response=s.ClaimPageOut,
        query=s.MyCouponsQuery,
        allow=FAN,
        errors=(400, 401, 403, 422),
    ),
    Endpoint(
        "POST",
        CONVERSIONS_PATH,
        report_conversion,
        "Report an order for a click (brand backend)",
        "conversions",
        response=s.ConversionOut,
        body=s.ConversionIn,
        status=201,
        allow=frozenset({Kind.API_KEY}),
        idempotency="optional",
        errors=(403, 404, 422),
        description="`click_id` is the `la_click` your service received from a followed "
        "click of your account's content (else 404 click_not_found). An order counts once: "
        "reporting the same order_id again answers the first report with `repeat: true` (200).",
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/stats",
        account_stats,
        "Followers and each content's funnel: views, plays, likes, clicks, conversions",
        "stats",
        response=s.StatsOut,
        query=PageQuery,
        allow=STAFF_OR_KEY,
        roles=ANY_ROLE,
        errors=(400, 403, 404, 422),
    ),
]
