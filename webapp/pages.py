"""Server-rendered pages: home, sign up, log in, the console, an account's public page, the
invitation page and the developer console. Forms carry CSRF tokens: the session's own token
once logged in, a double-submit cookie before that.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from accounts import apikeys, ledger, staff
from accounts.accounts import Account, get_account, get_account_by_handle
from accounts.errors import DomainError, NotFound
from accounts.signup import sign_up
from accounts.staff import Role
from accounts.tokens import same
from content.contents import account_feed, get_public_content
from content.conversions import content_stats
from content.images import images_of
from content.links import ServiceLink
from live import red_packets
from live.rooms import State, account_rooms, create_room, get_room
from store.clock import parse_rfc3339
from store.port import InvalidCursorError
from webapp import console_review, content_view, room_view
from webapp.api import base_url
from webapp.api_commerce import click_url
from webapp.api_rooms import HOST_ROLES, MODERATOR_ROLES, cover_url, urls_of
from webapp.auth import (
    ANONYMOUS,
    SESSION_COOKIE,
    Kind,
    client_address,
    count_attempt,
    identify,
    log_in,
    session_cookie_options,
)
from webapp.context import Services


def environment() -> Environment:
    """The pages' Jinja2 environment; the app builds it once at start-up."""
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        enable_async=False,
    )
    env.globals["oembed_href"] = oembed_href
    return env


def oembed_href(page_url: str) -> str:
    """Where the oEmbed answer for one of our pages is (its discovery link, oEmbed §4)."""
    parts = urlsplit(page_url)
    return (
        f"{parts.scheme}://{parts.netloc}/oembed?{urlencode({'url': page_url, 'format': 'json'})}"
    )


FORM_CSRF_COOKIE = "la_form_csrf"
MAX_FORM_FIELD = 500
REPLAY_WAIT = timedelta(hours=1)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    templates: Environment = request.app.state.templates
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _form_token(request: Request) -> str:
    return request.cookies.get(FORM_CSRF_COOKIE) or secrets.token_urlsafe(24)


def _with_form_cookie(response: Response, token: str) -> Response:
    response.set_cookie(FORM_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=20)
    return {k: str(v)[:MAX_FORM_FIELD] for k, v in form.items() if isinstance(v, str)}


def _anonymous_csrf_ok(request: Request, form: dict[str, str]) -> bool:
    cookie = request.cookies.get(FORM_CSRF_COOKIE, "")
    sent = form.get("csrf_token", "")
    return bool(cookie) and same(cookie, sent)


def _login_cookie(services: Services, response: Response, session: staff.Session) -> None:
    options = session_cookie_options(services.settings.cookie_secure)
    response.set_cookie(SESSION_COOKIE, session.token, **options)


async def _anonymous_form(
    request: Request, template: str
) -> tuple[str, dict[str, str], Response | None]:
    """The start of every form shown before log-in: a GET renders it with a fresh
    double-submit token; a POST whose token does not match its cookie is refused (403)."""
    token = _form_token(request)
    if request.method == "GET":
        return (
            token,
            {},
            _with_form_cookie(render(request, template, csrf_token=token, form={}), token),
        )
    form = await _form(request)
    if not _anonymous_csrf_ok(request, form):
        error = "The form expired; please submit it again."
        page = render(request, template, 403, csrf_token=token, form=form, error=error)
        return token, form, _with_form_cookie(page, token)
    return token, form, None


async def home(request: Request) -> Response:
    return render(request, "home.html")


async def signup_page(request: Request) -> Response:
    services = _services(request)
    token, form, early = await _anonymous_form(request, "signup.html")
    if early is not None:
        return early
    try:
        count_attempt(services.signup_throttle, client_address(request))
        done = await sign_up(
            services.store,
            services.passwords,
            email=form.get("email", ""),
            password=form.get("password", ""),
            account_name=form.get("name", ""),
            handle=form.get("handle", ""),
            now=services.now(),
        )
    except DomainError as exc:
        return _with_form_cookie(
            render(
                request,
                "signup.html",
                exc.status,
                csrf_token=token,
                form=form,
                error=exc.detail,
                field=exc.field,
            ),
            token,
        )
    session = await staff.open_session(services.store, done.staff, now=services.now())
    response = render(
        request,
        "welcome.html",
        201,
        account=done.account,
        api_key=done.api_key.secret,
        console_url=f"/console?account={done.account.id}",
    )
    _login_cookie(services, response, session)
    return response


async def login_page(request: Request) -> Response:
    services = _services(request)
    token, form, early = await _anonymous_form(request, "login.html")
    if early is not None:
        return early
    try:
        who = await log_in(
            services,
            email=form.get("email", ""),
            password=form.get("password", ""),
            address=client_address(request),
        )
    except DomainError as exc:
        return _with_form_cookie(
            render(
                request, "login.html", exc.status, csrf_token=token, form=form, error=exc.detail
            ),
            token,
        )
    session = await staff.open_session(services.store, who, now=services.now())
    response = RedirectResponse("/console", status_code=303)
    _login_cookie(services, response, session)
    return response


async def _session(request: Request) -> staff.Session | None:
    services = _services(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return await staff.session_for(services.store, cookie, now=services.now())


async def logout_page(request: Request) -> Response:
    session = await _session(request)
    form = await _form(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    if not same(form.get("csrf_token", ""), session.csrf_token):
        # Another site cannot log a user out: without the form's token nothing changes.
        return RedirectResponse("/console", status_code=303)
    await staff.close_session(_services(request).store, session.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def console(request: Request) -> Response:
    services = _services(request)
    session = await _session(request)
    if session is None:
        return RedirectResponse("/login?next=/console", status_code=303)
    mine = await staff.memberships(services.store, session.staff.id)
    if not mine:
        return render(request, "console.html", session=session, accounts=[], account=None)
    chosen = request.query_params.get("account") or mine[0].account_id
    membership = next((m for m in mine if m.account_id == chosen), mine[0])
    notice = error = None
    if request.method == "POST":
        form = await _form(request)
        if not same(form.get("csrf_token", ""), session.csrf_token):
            error = "The form expired; please submit it again."
        elif form.get("action") in console_review.ACTIONS:
            notice, error = await console_review.act(services, membership, form)
        elif form.get("action") == "create_room":
            notice, error = await _create_room(services, membership, form)
        elif membership.role is not Role.OWNER:
            error = "Only an owner can change keys and staff."
        else:
            notice, error = await _console_action(services, membership.account_id, form)
    account = await get_account(services.store, membership.account_id)
    accounts = []
    for m in mine:
        try:
            accounts.append((await get_account(services.store, m.account_id), m.role))
        except NotFound:
            continue
    is_owner = membership.role is Role.OWNER
    return render(
        request,
        "console.html",
        400 if error else 200,
        session=session,
        accounts=accounts,
        account=account,
        role=membership.role.value,
        budget=await ledger.balance(services.store, account.id, ledger.BUDGET),
        stats=(await content_stats(services.store, account.id, limit=20, cursor=None)).items,
        keys=await apikeys.list_keys(services.store, account.id) if is_owner else [],
        people=await staff.account_staff(services.store, account.id),
        invitations=await staff.invitations(services.store, account.id) if is_owner else [],
        review=await console_review.section(services, membership),
        rooms=(await account_rooms(services.store, account.id, limit=10, cursor=None)).items,
        hosts=membership.role in HOST_ROLES,
        notice=notice,
        error=error,
        base=base_url(request, services.settings.base_url),
    )


def _utc(value: str) -> str | None:
    if not value:
        return None
    return value + ":00Z" if len(value) == 16 and value[10] == "T" else value


async def _create_room(
    services: Services, membership: staff.Membership, form: dict[str, str]
) -> tuple[str | None, str | None]:
    """Schedule a room from the console; its stream key (for OBS) is shown this once."""
    if membership.role not in HOST_ROLES:
        return None, "Only an owner, an editor or a host can schedule a live."
    try:
        room = await create_room(
            services.store,
            membership.account_id,
            title=form.get("title", ""),
            # A datetime-local field sends "2026-12-01T20:00": the form says it is UTC.
            scheduled_at=_utc(form.get("scheduled_at", "")),
            now=services.now(),
        )
    except DomainError as exc:
        return None, exc.detail
    return (
        f"Room “{room.title}” is scheduled. Its stream key for OBS or another WHIP encoder "
        f"(shown once, copy it now): {room.stream_key}"
    ), None


async def _console_action(
    services: Services, account_id: str, form: dict[str, str]
) -> tuple[str | None, str | None]:
    action = form.get("action")
    now = services.now()
    try:
        if action == "create_key":
            key = await apikeys.create_key(
                services.store,
                account_id=account_id,
                name=form.get("name", "") or "console",
                now=now,
            )
            return f"New API key (shown once, copy it now): {key.secret}", None
        if action == "revoke_key":
            await apikeys.revoke_key(
                services.store, account_id=account_id, key_id=form.get("key_id", ""), now=now
            )
            return "The key was revoked.", None
        if action == "invite":
            role = form.get("role", "")
            if role not in {r.value for r in Role}:
                return None, "Choose a role."
            inv = await staff.invite(
                services.store,
                account_id=account_id,
                email=form.get("email", ""),
                role=Role(role),
                now=now,
            )
            return f"Send this link to {inv.email}: /invite#token={inv.token}", None
    except DomainError as exc:
        return None, exc.detail
    return None, "Unknown action."


def account_json_ld(account: Account, url: str) -> dict[str, Any]:
    """The account's page as schema.org data: a profile of an organization, its followers."""
    brand: dict[str, Any] = {
        "@type": "Organization",
        "name": account.name,
        "alternateName": f"@{account.handle}",
        "url": url,
        "interactionStatistic": {
            "@type": "InteractionCounter",
            "interactionType": "https://schema.org/FollowAction",
            "userInteractionCount": account.follower_count,
        },
    }
    if account.bio:
        brand["description"] = account.bio
    if account.avatar_url:
        brand["image"] = account.avatar_url
    return {"@context": "https://schema.org", "@type": "ProfilePage", "mainEntity": brand}


async def account_page(request: Request) -> Response:
    services = _services(request)
    handle = request.path_params["handle"]
    try:
        account = await get_account_by_handle(services.store, handle)
    except NotFound:
        return render(request, "not_found.html", 404, what=f"@{handle}")
    url = f"{base_url(request, services.settings.base_url)}/@{account.handle}"
    cursor, error = request.query_params.get("cursor"), None
    try:
        feed = await account_feed(services.store, account.id, limit=FEED_PAGE, cursor=cursor)
    except InvalidCursorError:
        error = "That page link is no longer valid; here are the newest posts."
        feed = await account_feed(services.store, account.id, limit=FEED_PAGE, cursor=None)
    return render(
        request,
        "account.html",
        400 if error else 200,
        account=account,
        url=url,
        json_ld=account_json_ld(account, url),
        quote=quote,
        contents=feed.items,
        next_cursor=feed.next_cursor,
        later_page=bool(cursor) and not error,
        error=error,
    )


FEED_PAGE = 12


async def content_page(request: Request) -> Response:
    """A published content's public page: the player or the blocks, counts, comments, and
    OpenGraph and JSON-LD for link previews and search engines; 404 for anything else."""
    services = _services(request)
    try:
        content = await get_public_content(services.store, request.path_params["content_id"])
        account = await get_account(services.store, content.account_id)
    except NotFound:
        return render(request, "not_found.html", 404, what="such content")
    base = base_url(request, services.settings.base_url)
    threads, more_comments = await content_view.comment_threads(services.store, content.id)
    images = await images_of(services.store, list(content.image_ids))

    def click(link: ServiceLink) -> str:
        # A fresh signed click id per link shown (no write until it is followed).
        return click_url(base, services.secret, content.id, link)

    return render(
        request,
        "content.html",
        content=content,
        account=account,
        meta=content_view.page_meta(content, account, base, images),
        media=content_view.ready_media(content),
        images=images,
        click=click,
        coupons=await content_view.block_coupons(services.store, content),
        threads=threads,
        more_comments=more_comments,
    )


async def host_page(request: Request) -> Response:
    """The host's page for a room: camera and microphone, preview, go live over WHIP (with the
    staff session), a live timer and an end button (``static/host.js`` does the work); beside
    it the room's chat as staff, with the moderation controls, chat rules and the pinned
    announcement (``static/host-chat.js``). Moderators get the chat side only."""
    services = _services(request)
    session = await _session(request)
    room_id = request.path_params["room_id"]
    if session is None:
        return RedirectResponse(f"/login?next=/console/rooms/{room_id}/host", status_code=303)
    try:
        room = await get_room(services.store, room_id)
    except NotFound:
        return render(request, "not_found.html", 404, what="such room")
    role = await staff.role_of(services.store, room.account_id, session.staff.id)
    if role not in MODERATOR_ROLES:
        return render(request, "not_found.html", 404, what="such room")
    base = base_url(request, services.settings.base_url)
    urls = urls_of(services, base, room.id)
    return render(
        request,
        "host.html",
        room=room,
        session=session,
        role=role,
        can_host=role in HOST_ROLES,
        whip_url=urls["whip_url"],
        channel_url=urls["channel_url"],
    )


async def red_packet_page(request: Request) -> Response:
    """A red packet's check: the browser recomputes the split and the commitment from the
    reveal and checks every grab (``static/verify-packet.js``), trusting nothing the server
    says but the numbers it published."""
    services = _services(request)
    try:
        packet = await red_packets.get_packet(services.store, request.path_params["red_packet_id"])
    except NotFound:
        return render(request, "not_found.html", 404, what="such red packet")
    return render(request, "red_packet.html", packet=packet)


async def room_page(request: Request) -> Response:
    """A room's public page: a countdown while scheduled, the player while live, the replay
    link once ended (when the replay is published); OpenGraph for link previews."""
    services = _services(request)
    try:
        room = await get_room(services.store, request.path_params["room_id"])
        account = await get_account(services.store, room.account_id)
    except NotFound:
        return render(request, "not_found.html", 404, what="such room")
    base = base_url(request, services.settings.base_url)
    images = await images_of(services.store, [room.cover] if room.cover else [])
    cover = cover_url(room, base, images)
    replay = None
    if room.state is State.ENDED and room.replay_content_id:
        try:
            replay = await get_public_content(services.store, room.replay_content_id)
        except NotFound:
            replay = None  # still processing, or in review: the page says it is coming
    # The page waits for the replay (room.js polls) for a while after the end: a recording
    # becomes a published video within minutes, and a room that was never recorded has none.
    waiting = (
        room.state is State.ENDED
        and replay is None
        and room.ended_at is not None
        and services.now() - parse_rfc3339(room.ended_at) < REPLAY_WAIT
    )
    return render(
        request,
        "room.html",
        room=room,
        account=account,
        meta=room_view.room_meta(room, account, base, cover),
        state_line=room_view.state_line(room),
        cover_url=cover,
        urls=urls_of(services, base, room.id),
        replay=replay,
        replay_waiting=waiting,
    )


UPLOAD_ROLES = frozenset({Role.OWNER, Role.EDITOR})


async def upload_page(request: Request) -> Response:
    """The console's video upload: tus in the browser, then the content, its transcode
    progress and a publish button (``static/upload.js`` does the work over the API)."""
    services = _services(request)
    session = await _session(request)
    if session is None:
        return RedirectResponse("/login?next=/console/upload", status_code=303)
    mine = [
        m
        for m in await staff.memberships(services.store, session.staff.id)
        if m.role in UPLOAD_ROLES
    ]
    chosen = request.query_params.get("account")
    membership = next((m for m in mine if m.account_id == chosen), mine[0] if mine else None)
    if membership is None:
        error = "Uploading videos takes the owner or editor role; ask an owner of the account."
        return render(request, "upload.html", 403, session=session, account=None, error=error)
    account = await get_account(services.store, membership.account_id)
    return render(request, "upload.html", session=session, account=account)


async def invite_page(request: Request) -> Response:
    return render(request, "invite.html")


async def developers(request: Request) -> Response:
    try:
        caller = await identify(request, _services(request))
    except DomainError:
        caller = ANONYMOUS
    return render(
        request,
        "developers.html",
        csrf_token=caller.csrf_token if caller.kind is Kind.STAFF else "",
    )


def routes() -> list[Route]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/signup", signup_page, methods=["GET", "POST"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout_page, methods=["POST"]),
        Route("/console", console, methods=["GET", "POST"]),
        Route("/invite", invite_page, methods=["GET"]),
        Route("/developers", developers, methods=["GET"]),
        Route("/@{handle}", account_page, methods=["GET"]),
        Route("/c/{content_id}", content_page, methods=["GET"]),
        Route("/r/{room_id}", room_page, methods=["GET"]),
        Route("/red-packets/{red_packet_id}", red_packet_page, methods=["GET"]),
        Route("/console/rooms/{room_id}/host", host_page, methods=["GET"]),
        Route("/console/upload", upload_page, methods=["GET"]),
    ]
