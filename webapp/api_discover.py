"""Routes of views and plays, the discover feed and the search box (DESIGN §4, §8)."""

from __future__ import annotations

import hashlib
import hmac

from content import engagement
from content.discover import discover_feed
from content.engagement import PlayResult
from content.searchbox import search_box
from webapp import schemas_discover as s
from webapp.api import Call, Endpoint, base_url
from webapp.api_commerce import click_url, coupon_out
from webapp.api_contents import contents_out
from webapp.auth import Kind, client_address
from webapp.schemas_content import ContentPageOut

C = "/api/v1/contents/{content_id}"
WINDOW_MIN = int(engagement.WINDOW.total_seconds() // 60)


def _who(call: Call, viewer: str | None) -> tuple[str, str]:
    """(the viewer, the client's address) as opaque keys for the dedupe records.

    The address is keyed with the deployment's secret so that the records hold no address
    (a plain hash of an IPv4 address is undone by trying them all)."""
    address = client_address(call.request).encode()
    source = hmac.new(call.services.secret, b"engagement:" + address, hashlib.sha256).hexdigest()
    caller = call.caller
    if caller.kind is Kind.ANONYMOUS:
        return f"anonymous:{source}:{viewer or ''}", source
    if caller.kind is Kind.API_KEY:
        return f"api_key:{caller.account_id}", source
    return f"{caller.kind.value}:{caller.id}", source


def _base(call: Call) -> str:
    return base_url(call.request, call.services.settings.base_url)


def _play_out(result: PlayResult) -> s.PlayOut:
    return s.PlayOut(
        play_id=result.play_id,
        counted=result.counted,
        completed=result.completed,
        watched_s=result.watched_s,
        counters=engagement.counters_doc(result.counters),
    )


async def view(call: Call) -> s.ViewOut:
    body: s.ViewIn = call.body
    viewer, source = _who(call, body.viewer)
    result = await engagement.record_view(
        call.services.store, call.params["content_id"], viewer=viewer, source=source, now=call.now
    )
    return s.ViewOut(counted=result.counted, counters=engagement.counters_doc(result.counters))


async def start_play(call: Call) -> s.PlayOut:
    body: s.PlayIn = call.body
    viewer, source = _who(call, body.viewer)
    result = await engagement.start_play(
        call.services.store, call.params["content_id"], viewer=viewer, source=source, now=call.now
    )
    return _play_out(result)


async def report_play(call: Call) -> s.PlayOut:
    body: s.PlayProgressIn = call.body
    result = await engagement.report_play(
        call.services.store,
        call.params["content_id"],
        call.params["play_id"],
        watched_s=body.watched_s,
        completed=body.completed,
        now=call.now,
    )
    return _play_out(result)


async def discover(call: Call) -> ContentPageOut:
    q: s.DiscoverQuery = call.query
    page = await discover_feed(call.services.store, limit=q.limit, cursor=q.cursor, now=call.now)
    return ContentPageOut(items=await contents_out(call, page.items), next_cursor=page.next_cursor)


async def box(call: Call) -> s.SearchBoxOut:
    q: s.SearchBoxQuery = call.query
    found = await search_box(call.services.store, q.q, now=call.now)
    if found is None:
        return s.SearchBoxOut(box=None)
    a, base, secret = found.account, _base(call), call.services.secret
    return s.SearchBoxOut(
        box=s.BoxOut(
            account=s.BoxAccountOut(
                id=a.id,
                handle=a.handle,
                name=a.name,
                bio=a.bio,
                avatar_url=a.avatar_url,
                follower_count=a.follower_count,
            ),
            services=[
                {**e.link.to_doc(), "click_url": click_url(base, secret, e.content_id, e.link)}
                for e in found.services
            ],
            coupons=[coupon_out(c) for c in found.coupons],
            contents=await contents_out(call, found.contents),
            live=s.BoxLiveOut(room_id=found.live_room_id) if found.live_room_id else None,
        )
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{C}/views",
        view,
        "Count a view of a published content (anyone)",
        "contents",
        response=s.ViewOut,
        body=s.ViewIn,
        errors=(404,),
        description="Send `{}` (or an anonymous client's own `viewer` id) when the content is "
        f"shown. One viewer's views count once per {WINDOW_MIN}-minute window, and one client "
        f"address counts at most {engagement.PER_SOURCE} views of a content per window; "
        "`counted` says whether this one did.",
    ),
    Endpoint(
        "POST",
        f"{C}/plays",
        start_play,
        "Start a play of a published video (anyone)",
        "contents",
        response=s.PlayOut,
        body=s.PlayIn,
        status=201,
        errors=(404, 409),
        description="The player sends this on its first `playing` event and keeps the "
        f"`play_id` for its progress reports. A viewer's plays count up to "
        f"{engagement.PLAYS_PER_VIEWER} per {WINDOW_MIN} minutes.",
    ),
    Endpoint(
        "PATCH",
        f"{C}/plays/{{play_id}}",
        report_play,
        "Report how far a play got",
        "contents",
        response=s.PlayOut,
        body=s.PlayProgressIn,
        errors=(404, 409),
        description="`watched_s`: seconds played; `completed` on the player's `ended` event. "
        "Reaching 90% of the duration counts one completion, once per play. A play cannot "
        "have played faster than twice the time since it started.",
    ),
    Endpoint(
        "GET",
        "/api/v1/feed/discover",
        discover,
        "The discover feed: published contents, the hottest first",
        "contents",
        response=ContentPageOut,
        query=s.DiscoverQuery,
        errors=(400, 422),
        description="Ranked by engagement with time decay: log10(1 + 3·likes + 4·comments + "
        "2·completions + plays + 0.2·views) + published_at / 12.5 h. A listing (first page "
        "and its cursors) shows each content once, in the order of its first page, up to the "
        "hottest 500; a cursor lasts two hours.",
    ),
    Endpoint(
        "GET",
        "/api/v1/search/box",
        box,
        "The search box card for a keyword",
        "search",
        response=s.SearchBoxOut,
        query=s.SearchBoxQuery,
        errors=(422,),
        description="`box` is the account whose handle, search keyword or name equals `q` "
        "(ignoring case and full-width forms) with its services, claimable coupons, latest "
        "contents and live room; null when `q` names no account.",
    ),
]
