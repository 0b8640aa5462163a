"""The demo brand (``lifeaccount demo``, DESIGN §9): an account with what every widget shows —
published contents with a service link, a coupon, a poll and a scheduled live — so the widget
gallery (``/developers/widgets``) and a first look have something real to work on. Seeded
once: a second start finds it and changes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from accounts.accounts import Tier, create_account, get_account_by_handle, update_profile
from accounts.errors import NotFound
from accounts.tiers import set_ladder
from content.contents import account_contents, create_content
from content.coupons import account_coupons, create_coupon
from content.publishing import publish
from live import polls, rooms
from store.clock import rfc3339
from webapp.context import Services

log = logging.getLogger("lifeaccount.demo")
HANDLE = "demo"
SHOP = {
    "app_id": "wx_demo_tea",
    "page": "pages/goods/detail",
    "query": {"sku": "autumn-oolong"},
    "title": "Order the autumn oolong",
}


@dataclass(frozen=True)
class Demo:
    account_id: str
    content_id: str
    coupon_id: str
    poll_id: str
    room_id: str


async def demo_of(services: Services) -> Demo | None:
    """The seeded demo brand's ids, or None when this deployment has none."""
    store = services.store
    try:
        account = await get_account_by_handle(store, HANDLE)
    except NotFound:
        return None
    page = await account_contents(store, account.id, limit=10, cursor=None)
    coupons = await account_coupons(store, account.id, limit=1, cursor=None)
    asked = await polls.account_polls(store, account.id, limit=1)
    found = await rooms.account_rooms(store, account.id, limit=1, cursor=None)
    if not (page.items and coupons.items and asked and found.items):
        return None
    article = next((c for c in page.items if c.kind.value == "article"), page.items[0])
    return Demo(account.id, article.id, coupons.items[0].id, asked[0].id, found.items[0].id)


async def seed(services: Services) -> Demo:
    """The demo brand, made on the first call."""
    found = await demo_of(services)
    if found is not None:
        return found
    store, now = services.store, services.now()
    try:
        account = await get_account_by_handle(store, HANDLE)
    except NotFound:
        account = await create_account(store, name="Demo Tea House", handle=HANDLE, now=now)
    await update_profile(
        store,
        account.id,
        now=now,
        bio="Single-origin teas, brewed live every Friday. (The demo brand of this deployment.)",
        keywords=["demo tea", "oolong"],
    )
    await set_ladder(
        store, account.id, [Tier(0, "Fan"), Tier(1, "Silver"), Tier(2, "Gold")], now=now
    )
    article = await create_content(
        store,
        account.id,
        {
            "kind": "article",
            "title": "The autumn oolong is in",
            "blocks": [
                {"type": "paragraph", "text": "Roasted slowly over charcoal, picked in October."},
                {"type": "paragraph", "text": "Order it in our mini-program, or taste it live."},
            ],
            "service_links": [SHOP],
        },
        now=now,
    )
    post = await create_content(
        store, account.id, {"kind": "post", "text": "Tasting live this Friday at 8 pm."}, now=now
    )
    for made in (post, article):
        await publish(store, made.id, policy=services.pipeline.policy, now=now)
    coupon = await create_coupon(
        store,
        account.id,
        title="¥20 off ¥100",
        description="For the autumn oolong",
        stock=500,
        per_fan_limit=1,
        valid_from=rfc3339(now - timedelta(minutes=1)),
        valid_until=rfc3339(now + timedelta(days=365)),
        now=now,
    )
    poll = await polls.create_poll(
        store,
        account.id,
        question="Which tea should we brew live next?",
        options=["Oolong", "Black tea", "White tea"],
        closes_in_s=polls.LONGEST_S,
        now=now,
    )
    room = await rooms.create_room(
        store,
        account.id,
        title="Autumn tasting",
        scheduled_at=rfc3339(now + timedelta(days=7)),
        now=now,
    )
    log.info("seeded the demo brand @%s", HANDLE)
    return Demo(account.id, article.id, coupon.id, poll.id, room.id)
