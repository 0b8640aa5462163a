"""Click ids, followed clicks, conversions and the per-content funnel, on the embedded engine.

The conversions and stats live in ``content/conversions.py``; they are tested here because a
conversion exists only for a followed click.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import pytest

from accounts.accounts import Account, create_account
from accounts.errors import Invalid, NotFound
from content import clicks, conversions
from content.clicks import fingerprint, follow, landing_url, mint_click_id, read_click_id
from content.contents import CONTENTS, Content, create_content, delete_content, edit_content
from content.links import ServiceLink, parse_service_link
from content.publishing import publish
from content.sensitive import ReviewPolicy
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW

SECRET = b"s" * 32
SHOP = {"app_id": "wx_shop", "page": "pages/goods", "query": {"sku": "A1"}, "title": "购买"}
H5 = {**SHOP, "url": "https://shop.example/goods?sku=A1#top"}


@pytest.fixture(autouse=True)
async def commerce_indexes(store: SQLiteStore) -> None:
    await store.ensure_indexes([*clicks.INDEXES, *conversions.INDEXES])


async def published(
    store: SQLiteStore, account: Account, policy: ReviewPolicy, links: list[dict[str, Any]]
) -> Content:
    blocks = [{"type": "paragraph", "text": "新茶"}]
    body = {"kind": "article", "title": "新品", "blocks": blocks, "service_links": links}
    draft = await create_content(store, account.id, body, now=NOW)
    return await publish(store, draft.id, policy=policy, now=NOW)


def _unpack(click_id: str) -> bytes:
    body = click_id.removeprefix("ck_")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _pack(raw: bytes) -> str:
    return "ck_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- click ids ----------------------------------------------------------------------------------
def test_a_click_id_names_its_content_and_link_and_is_fresh_each_time() -> None:
    link = ServiceLink.from_doc(SHOP)
    first = mint_click_id(SECRET, "cnt_01jabcdefghjkmnpqrstvwxyz0", link)
    again = mint_click_id(SECRET, "cnt_01jabcdefghjkmnpqrstvwxyz0", link)
    assert first != again and first.startswith("ck_") and len(first) <= clicks.MAX_CLICK_ID
    ref = read_click_id(SECRET, first)
    assert (ref.subject_id, ref.fingerprint) == (
        "cnt_01jabcdefghjkmnpqrstvwxyz0",
        fingerprint(link),
    )


def _forgeries(click_id: str) -> dict[str, str]:
    raw = _unpack(click_id)
    body = click_id.removeprefix("ck_")
    # When the bytes do not fill the last character, its spare bits decode to nothing: another
    # spelling of the same bytes would be a second id for one click, so it must be refused.
    assert len(raw) % 3, "the test needs an id whose last character has spare bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = next(
        body[:-1] + c for c in alphabet if c != body[-1] and _b64_same(body[:-1] + c, raw)
    )
    return {
        "other_link": _pack(bytes([raw[0] ^ 1]) + raw[1:]),
        "other_content": _pack(raw[:-17] + b"X" + raw[-16:]),
        "flipped_mac": _pack(raw[:-1] + bytes([raw[-1] ^ 1])),
        "no_mac": _pack(raw[:-16]),
        "respelled": respelled,
        "no_prefix": click_id.removeprefix("ck_"),
        "other_prefix": "cx_" + body,
        "padded": click_id + "=",
        "not_base64": click_id[:-2] + "!!",
        "empty": "ck_",
        "too_long": "ck_" + "A" * 300,
    }


def _b64_same(text: str, raw: bytes) -> bool:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) == raw
    except ValueError:
        return False


def test_a_forged_or_altered_click_id_is_unknown() -> None:
    click_id = mint_click_id(SECRET, "cnt_01jabcdefghjkmnpqrstvwxyz0", ServiceLink.from_doc(SHOP))
    for name, forged in _forgeries(click_id).items():
        with pytest.raises(NotFound) as err:
            read_click_id(SECRET, forged)
        assert (err.value.code, err.value.field) == ("click_not_found", "click_id"), name
    with pytest.raises(NotFound):
        read_click_id(b"another deployment's secret....", click_id)


# -- following a click ------------------------------------------------------------------------
async def test_a_click_is_recorded_once_per_id_and_counted(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, [SHOP, H5])
    click_id = mint_click_id(SECRET, content.id, content.service_links[1])
    first = await follow(store, SECRET, click_id, now=NOW)
    assert not first.repeat and first.link.url == H5["url"]
    assert (first.click.content_id, first.click.account_id) == (content.id, account.id)
    again = await follow(store, SECRET, click_id, now=NOW + timedelta(minutes=1))
    assert again.repeat and again.click == first.click
    await follow(
        store, SECRET, mint_click_id(SECRET, content.id, content.service_links[0]), now=NOW
    )
    doc = await store.collection(CONTENTS).get(content.id)
    assert doc is not None and doc["clicks"] == 2
    assert await store.collection(clicks.CLICKS).count({}) == 2


async def test_reordered_links_still_credit_the_link_that_was_shown(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, [SHOP, H5])
    shown = mint_click_id(SECRET, content.id, content.service_links[1])  # the H5 one
    retitled = {**H5, "title": "立即购买"}
    await edit_content(
        store, content.id, {"service_links": [retitled, SHOP]}, policy=policy, now=NOW
    )
    followed = await follow(store, SECRET, shown, now=NOW)
    assert followed.link.url == H5["url"] and followed.link.title == "立即购买"
    assert followed.click.link_index == 0  # where it is now
    # A link that now leads elsewhere is not the one that was shown.
    moved = mint_click_id(SECRET, content.id, content.service_links[0])
    await edit_content(
        store,
        content.id,
        {"service_links": [{**SHOP, "query": {"sku": "B2"}}]},
        policy=policy,
        now=NOW,
    )
    with pytest.raises(NotFound):
        await follow(store, SECRET, moved, now=NOW)


async def test_racing_follows_of_one_id_record_one_click(threaded_store: SQLiteStore) -> None:
    store = threaded_store
    await store.ensure_indexes(clicks.INDEXES)
    account = await create_account(store, name="Tea", handle="tea", now=NOW)
    content = await published(store, account, ReviewPolicy(store), [SHOP])
    click_id = mint_click_id(SECRET, content.id, content.service_links[0])
    results = await asyncio.gather(*(follow(store, SECRET, click_id, now=NOW) for _ in range(20)))
    assert sum(not r.repeat for r in results) == 1
    doc = await store.collection(CONTENTS).get(content.id)
    assert doc is not None and doc["clicks"] == 1
    assert await store.collection(clicks.CLICKS).count({"click_id": click_id}) == 1


async def test_a_click_on_a_deleted_content_or_a_removed_link_is_unknown(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, [SHOP, H5])
    second = mint_click_id(SECRET, content.id, content.service_links[1])
    await edit_content(store, content.id, {"service_links": [SHOP]}, policy=policy, now=NOW)
    with pytest.raises(NotFound) as err:
        await follow(store, SECRET, second, now=NOW)
    assert err.value.code == "click_not_found"
    first = mint_click_id(SECRET, content.id, content.service_links[0])
    await delete_content(store, content.id, now=NOW)
    with pytest.raises(NotFound):
        await follow(store, SECRET, first, now=NOW)
    assert await store.collection(clicks.CLICKS).count({}) == 0


def test_the_landing_url_keeps_the_services_query_and_fragment() -> None:
    link = parse_service_link(H5, field="l")
    assert landing_url(link, "ck_abc") == "https://shop.example/goods?sku=A1&la_click=ck_abc#top"
    bare = ServiceLink("wx_shop", "pages/a", "t", url="https://shop.example")
    assert landing_url(bare, "ck_abc") == "https://shop.example?la_click=ck_abc"
    assert landing_url(ServiceLink("wx_shop", "pages/a", "t"), "ck_abc") is None
    assert clicks.page_query(link, "ck_abc") == {"sku": "A1", "la_click": "ck_abc"}


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example/a",  # plain http
        "javascript:alert(1)",
        "//shop.example/a",
        "https://",
        "https://user:pw@shop.example/a",
        "https://shop.example@evil.example/",
        "https://shop.example:99999/",
        "https://shop.example/a b",
        "https://shop.example\\@evil.example/",
        "https://shop.example/" + "a" * 1024,
        "",
        7,
    ],
)
def test_a_service_url_is_https_without_credentials(url: Any) -> None:
    with pytest.raises(Invalid) as err:
        parse_service_link({**SHOP, "url": url}, field="service_links.0")
    assert err.value.field == "service_links.0.url"


def test_a_service_url_round_trips() -> None:
    link = parse_service_link(H5, field="l")
    assert link.url == H5["url"] and ServiceLink.from_doc(link.to_doc()) == link
    assert parse_service_link(SHOP, field="l").url is None


# -- conversions ------------------------------------------------------------------------------
async def _followed(store: SQLiteStore, content: Content, index: int = 0) -> str:
    click_id = mint_click_id(SECRET, content.id, content.service_links[index])
    await follow(store, SECRET, click_id, now=NOW)
    return click_id


async def test_an_order_converts_once_and_counts_on_its_content(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, [SHOP])
    click_id = await _followed(store, content)
    first = await conversions.report(
        store, account.id, click_id=click_id, order_id="o-1", amount=12900, now=NOW
    )
    assert not first.repeat and first.conversion.currency == "CNY"
    assert first.conversion.content_id == content.id
    # The same order again, even with other numbers, answers the first report.
    again = await conversions.report(
        store, account.id, click_id=click_id, order_id="o-1", amount=1, currency="USD", now=NOW
    )
    assert again.repeat and again.conversion == first.conversion
    await conversions.report(
        store, account.id, click_id=click_id, order_id="o-2", amount=500, currency="USD", now=NOW
    )
    page = await conversions.content_stats(store, account.id, limit=10, cursor=None)
    (row,) = page.items
    assert (row.clicks, row.conversions, row.amount) == (1, 2, 13400)
    assert row.amounts == {"CNY": 12900, "USD": 500}


async def test_a_conversion_needs_a_followed_click_of_the_account(
    store: SQLiteStore, account: Account, other_account: Account, policy: ReviewPolicy
) -> None:
    content = await published(store, account, policy, [SHOP])
    followed = await _followed(store, content)
    minted_only = mint_click_id(SECRET, content.id, content.service_links[0])
    for account_id, click_id in [
        (other_account.id, followed),  # another brand's click
        (account.id, minted_only),  # shown but never followed
        (account.id, "ck_nothing"),
    ]:
        with pytest.raises(NotFound) as err:
            await conversions.report(
                store, account_id, click_id=click_id, order_id="o-1", amount=1, now=NOW
            )
        assert (err.value.code, err.value.field) == ("click_not_found", "click_id")
    assert await store.collection(conversions.CONVERSIONS).count({}) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"click_id": ""}, "click_id"),
        ({"click_id": 5}, "click_id"),
        ({"order_id": ""}, "order_id"),
        ({"order_id": " o-1"}, "order_id"),
        ({"order_id": "o\n1"}, "order_id"),
        ({"order_id": "o" * 129}, "order_id"),
        ({"amount": -1}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 10**12 + 1}, "amount"),
        ({"currency": "cny"}, "currency"),
        ({"currency": "RMB1"}, "currency"),
        ({"currency": 156}, "currency"),
    ],
)
async def test_a_bad_report_names_its_field_and_writes_nothing(
    store: SQLiteStore,
    account: Account,
    policy: ReviewPolicy,
    changes: dict[str, Any],
    field: str,
) -> None:
    content = await published(store, account, policy, [SHOP])
    body: dict[str, Any] = {
        "click_id": await _followed(store, content),
        "order_id": "o-1",
        "amount": 100,
        **changes,
    }
    with pytest.raises(Invalid) as err:
        await conversions.report(store, account.id, **body, now=NOW)
    assert err.value.field == field
    assert await store.collection(conversions.CONVERSIONS).count({}) == 0


async def test_racing_reports_of_one_order_convert_once(threaded_store: SQLiteStore) -> None:
    store = threaded_store
    await store.ensure_indexes([*clicks.INDEXES, *conversions.INDEXES])
    account = await create_account(store, name="Tea", handle="tea", now=NOW)
    content = await published(store, account, ReviewPolicy(store), [SHOP])
    click_id = await _followed(store, content)
    results = await asyncio.gather(
        *(
            conversions.report(
                store, account.id, click_id=click_id, order_id="o-1", amount=100, now=NOW
            )
            for _ in range(20)
        )
    )
    assert sum(not r.repeat for r in results) == 1
    (row,) = (await conversions.content_stats(store, account.id, limit=5, cursor=None)).items
    assert (row.conversions, row.amount) == (1, 100)


# -- the funnel -----------------------------------------------------------------------------
async def test_stats_list_every_live_content_newest_first_with_its_funnel(
    store: SQLiteStore, account: Account, other_account: Account, policy: ReviewPolicy
) -> None:
    older = await published(store, account, policy, [SHOP])
    post = await create_content(
        store, account.id, {"kind": "post", "text": "今天上新 " * 10}, now=NOW + timedelta(hours=1)
    )
    gone = await create_content(
        store, account.id, {"kind": "post", "text": "x"}, now=NOW + timedelta(hours=2)
    )
    await delete_content(store, gone.id, now=NOW)
    await published(store, other_account, policy, [SHOP])
    await store.collection(CONTENTS).update_one(
        {"id": older.id}, {"$inc": {"plays": 4, "play_completions": 3, "views": 9}}
    )
    first = await conversions.content_stats(store, account.id, limit=1, cursor=None)
    rest = await conversions.content_stats(store, account.id, limit=1, cursor=first.next_cursor)
    assert [r.content_id for r in first.items + rest.items] == [post.id, older.id]
    assert first.items[0].title == post.text[:40]  # a post has no title: its text stands in
    assert first.items[0].completion_rate == 0.0 and first.items[0].status == "draft"
    row = rest.items[0]
    assert (row.views, row.plays, row.completion_rate, row.clicks) == (9, 4, 0.75, 0)
    assert row.amounts == {} and row.title == "新品"
