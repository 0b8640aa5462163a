"""The search box (DESIGN §1, §8 ``GET /api/v1/search/box?q=``): the card a keyword search
shows above the results when the keyword names one account.

The query names an account when, compared folded (``accounts.accounts.fold``: NFKC, case,
spaces), it equals the account's handle, or one of its search keywords, or its name; in that
order, and among several accounts the one with the most followers. The handle comes first
because it is unique and its own, while any account may list any keyword: another brand
listing ``tea-house`` as a keyword must not take the card of the account @tea-house. Each
look-up is an indexed equality, never a scan.

The card then shows the account, the service links of its latest published contents (each
service once), its coupons that can be claimed now, its latest published contents and, once
rooms exist, the live room it is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.accounts import ACCOUNTS, Account, accounts_with_keyword, fold
from accounts.errors import Invalid
from content.contents import Content, account_feed
from content.coupons import COUPONS, Coupon
from content.links import ServiceLink
from store.clock import rfc3339
from store.port import DocumentStore

MAX_QUERY = 64
MAX_SERVICES = 4
MAX_COUPONS = 3
MAX_CONTENTS = 3
LOOKBACK = 10  # the latest contents whose service links the card gathers
COUPON_LOOKBACK = 20


@dataclass(frozen=True)
class BoxService:
    link: ServiceLink
    content_id: str  # the content it was taken from and its place there, so that a click on
    index: int  # it is counted as a click on that content's link


@dataclass(frozen=True)
class SearchBox:
    account: Account
    services: tuple[BoxService, ...]
    coupons: tuple[Coupon, ...]
    contents: tuple[Content, ...]
    live_room_id: str | None


def check_query(query: str) -> str:
    """The folded query, or a refusal naming ``q``."""
    folded = fold(query)
    if not folded:
        raise Invalid("a keyword to look for", field="q")
    if len(folded) > MAX_QUERY:
        raise Invalid(f"at most {MAX_QUERY} characters", field="q")
    return folded


async def find_account(store: DocumentStore, query: str) -> Account | None:
    """The account a keyword names (module doc), or None."""
    folded = check_query(query)
    accounts = store.collection(ACCOUNTS)
    by_handle = await accounts.find_one({"handle": folded})
    if by_handle is not None:
        return Account.from_doc(by_handle)
    ids = await accounts_with_keyword(store, folded)
    candidates = await accounts.find({"id": {"$in": ids}}) if ids else []
    if not candidates:
        candidates = await accounts.find({"name_folded": folded}, limit=20)
    if not candidates:
        return None
    # Ties go to the older account (ids sort by creation time): a look-alike account made
    # later cannot take a keyword over with as many followers.
    best = min(candidates, key=lambda d: (-int(d.get("follower_count", 0)), str(d["id"])))
    return Account.from_doc(best)


def _services(contents: list[Content]) -> tuple[BoxService, ...]:
    """The newest contents' links, each service once (same app, page and query)."""
    seen: dict[tuple[str, str, tuple[tuple[str, str], ...]], BoxService] = {}
    for content in contents:
        for index, link in enumerate(content.service_links):
            key = (link.app_id, link.page, tuple(sorted(link.query.items())))
            seen.setdefault(key, BoxService(link, content.id, index))
    return tuple(seen.values())[:MAX_SERVICES]


async def _claimable(store: DocumentStore, account_id: str, now: datetime) -> tuple[Coupon, ...]:
    at = rfc3339(now)
    docs = await store.collection(COUPONS).find(
        {"account_id": account_id, "stock": {"$gte": 1}, "valid_until": {"$gt": at}},
        sort=[("created_at", -1), ("id", -1)],
        limit=COUPON_LOOKBACK,
    )
    open_now = [Coupon.from_doc(d) for d in docs if d["valid_from"] <= at]
    return tuple(open_now[:MAX_COUPONS])


async def search_box(store: DocumentStore, query: str, *, now: datetime) -> SearchBox | None:
    """The search box card for a keyword, or None when it names no account."""
    account = await find_account(store, query)
    if account is None:
        return None
    latest = await account_feed(store, account.id, limit=LOOKBACK, cursor=None)
    return SearchBox(
        account=account,
        services=_services(latest.items),
        coupons=await _claimable(store, account.id, now),
        contents=tuple(latest.items[:MAX_CONTENTS]),
        live_room_id=account.live_room_id,
    )
