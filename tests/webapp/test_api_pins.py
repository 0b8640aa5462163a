"""Pinned cards in a room over HTTP: a host pins a service link, a coupon and a content (one of
each kind up at a time, beside the announcement); any viewer asks for a click id of its own;
``/go`` counts each id once on the pin and the room and sends the viewer on; the brand's
report of the order carries the room."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette

from content import clicks
from store.clock import rfc3339, utc_now
from store.engines import sqlite_path
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_clicks import H5, SHOP, publish
from tests.webapp.test_api_rooms import make, services
from tests.webapp.test_bad_input import snapshot
from webapp.settings import Settings


async def coupon(client: httpx.AsyncClient, brand: Brand, **changes: Any) -> str:
    now = utc_now()
    body = {
        "title": "满100减20",
        "stock": 3,
        "per_fan_limit": 1,
        "valid_from": rfc3339(now - timedelta(hours=1)),
        "valid_until": rfc3339(now + timedelta(days=7)),
        **changes,
    }
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/coupons", json=body, headers=brand.key_headers
    )
    assert r.status_code == 201, r.text
    coupon_id: str = r.json()["id"]
    return coupon_id


async def pin(client: httpx.AsyncClient, brand: Brand, room_id: str, **body: Any) -> Any:
    r = await client.post(f"/api/v1/rooms/{room_id}/pins", json=body, headers=brand.key_headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_one_card_of_each_kind_is_up_and_viewers_see_no_target(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    room = await make(client, brand)
    content_id = await publish(client, brand, [SHOP], title="秋冬新茶")
    coupon_id = await coupon(client, brand)
    note = await pin(client, brand, room["id"], kind="announcement", text="8 点抽奖")
    shop = await pin(client, brand, room["id"], kind="service", service=SHOP)
    card = await pin(client, brand, room["id"], kind="coupon", coupon_id=coupon_id)
    story = await pin(client, brand, room["id"], kind="content", content_id=content_id)
    assert (shop["text"], shop["service"]["app_id"], shop["target"]["page"]) == (
        "买茶",
        "wx_shop",
        "pages/goods",
    )
    assert (card["coupon"]["stock"], card["coupon"]["per_fan_limit"]) == (3, 1)
    assert story["content"] == {"id": content_id, "kind": "article", "title": "秋冬新茶"}
    # A second service card replaces the first; the other kinds stay.
    web = await pin(client, brand, room["id"], kind="service", service=H5)
    assert web["replaced"] == [shop["id"]]
    public = (await client.get(f"/api/v1/rooms/{room['id']}/pins")).json()["items"]
    assert [p["id"] for p in public] == [note["id"], card["id"], story["id"], web["id"]]
    # Viewers see the card, not where it leads nor who pinned it nor its clicks.
    shown = public[-1]
    assert shown["service"] == {"app_id": "wx_shop", "title": "网页版", "image": None}
    assert shown["target"] is shown["by"] is shown["clicks"] is None
    staff = (await client.get(f"/api/v1/rooms/{room['id']}/pins", headers=brand.key_headers)).json()
    assert staff["items"][-1]["target"]["url"] == H5["url"]
    assert staff["items"][-1]["clicks"] == 0


async def test_a_bad_card_names_its_field_and_writes_nothing(
    client: httpx.AsyncClient, brand: Brand, settings: Settings
) -> None:
    room = await make(client, brand)
    other = await sign_up(client)
    theirs = await coupon(client, other)
    empty = await coupon(client, brand, stock=1)
    fan = await mint(client, brand)
    took = await client.post(
        f"/api/v1/coupons/{empty}/claims", headers={**bearer(fan["token"]), "Idempotency-Key": "k"}
    )
    assert took.status_code == 201, took.text
    draft = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "post", "text": "还没发"},
        headers=brand.key_headers,
    )
    assert draft.status_code == 201, draft.text
    db = sqlite_path(settings.store, settings.data_dir)
    before = snapshot(db)
    url = f"/api/v1/rooms/{room['id']}/pins"
    for body, status, code, field in [
        (
            {"kind": "service", "service": {**SHOP, "app_id": "wx shop"}},
            422,
            "invalid_field",
            "service.app_id",
        ),
        (
            {"kind": "service", "service": {**SHOP, "page": "https://evil.example"}},
            422,
            "invalid_field",
            "service.page",
        ),
        ({"kind": "service"}, 422, "invalid_field", "service"),
        ({"kind": "coupon", "coupon_id": theirs}, 422, "unknown_coupon", "coupon_id"),
        ({"kind": "coupon", "coupon_id": empty}, 409, "coupon_out_of_stock", None),
        ({"kind": "coupon", "coupon_id": "cpn_nope", "text": "x"}, 422, "invalid_field", "text"),
        (
            {"kind": "content", "content_id": draft.json()["id"]},
            422,
            "unknown_content",
            "content_id",
        ),
        ({"kind": "content"}, 422, "invalid_field", "content_id"),
        ({"kind": "lottery", "text": "x"}, 422, "invalid_field", "kind"),
    ]:
        r = await client.post(url, json=body, headers=brand.key_headers)
        assert r.status_code == status, (body, r.text)
        assert (r.json()["code"], r.json().get("field")) == (code, field), (body, r.json())
    assert snapshot(db) == before


async def test_each_viewer_clicks_with_an_id_of_its_own_counted_once_on_pin_and_room(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    room = await make(client, brand)
    web = await pin(client, brand, room["id"], kind="service", service=H5)
    clicks_url = f"/api/v1/rooms/{room['id']}/pins/{web['id']}/clicks"
    anonymous = await client.post(clicks_url)
    assert anonymous.status_code == 201, anonymous.text
    # Guests share no idempotency scope: the same key from two guests is two click ids.
    keyed = [
        (await client.post(clicks_url, headers={"Idempotency-Key": "same"})).json()["click_id"]
        for _ in range(2)
    ]
    assert keyed[0] != keyed[1]
    fan = await mint(client, brand)
    as_fan = await client.post(clicks_url, headers=bearer(fan["token"]))
    ids = [anonymous.json()["click_id"], as_fan.json()["click_id"]]
    assert ids[0] != ids[1] and all(i.startswith("ck_") for i in ids)
    go = anonymous.json()["go"]
    assert go == f"http://testserver/go/{ids[0]}"
    assert (await client.head(go)).status_code == 302  # a link checker counts nothing
    went = await client.get(go)
    assert went.status_code == 302
    target = urlsplit(went.headers["location"])
    assert (target.netloc, target.path) == ("shop.example", "/goods")
    assert parse_qs(target.query) == {"sku": ["A1"], "la_click": [ids[0]]}
    assert (await client.get(go)).headers["location"] == went.headers["location"]  # a reload
    assert (await client.get(as_fan.json()["go"])).status_code == 302
    staff = await client.get(f"/api/v1/rooms/{room['id']}/pins", headers=brand.key_headers)
    assert staff.json()["items"][0]["clicks"] == 2
    assert (await client.get(f"/api/v1/rooms/{room['id']}")).json()["pin_clicks"] == 2
    # The brand reports the order the click led to: it carries the room.
    order = {"click_id": ids[0], "order_id": "live-1", "amount": 3900}
    reported = await client.post("/api/v1/conversions", json=order, headers=brand.key_headers)
    assert reported.status_code == 201, reported.text
    assert (reported.json()["room_id"], reported.json()["content_id"]) == (room["id"], None)
    # A click id asked for before the card came down still leads where the viewer saw.
    late = (await client.post(clicks_url)).json()
    await client.delete(f"/api/v1/rooms/{room['id']}/pins/{web['id']}", headers=brand.key_headers)
    assert (await client.get(late["go"])).status_code == 302
    gone = await client.post(clicks_url)
    assert (gone.status_code, gone.json()["code"]) == (404, "pin_not_found")
    assert (await client.get(f"/api/v1/rooms/{room['id']}")).json()["pin_clicks"] == 3


async def test_a_mini_program_card_opens_its_page_and_a_content_card_its_content(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    room = await make(client, brand)
    content_id = await publish(client, brand, [SHOP])
    shop = await pin(client, brand, room["id"], kind="service", service=SHOP)
    story = await pin(client, brand, room["id"], kind="content", content_id=content_id)
    base = f"/api/v1/rooms/{room['id']}/pins"
    ck = (await client.post(f"{base}/{shop['id']}/clicks")).json()
    went = await client.get(ck["go"])
    assert went.headers["location"] == f"/open/{ck['click_id']}"
    opened = await client.get(went.headers["location"])
    assert opened.status_code == 200 and "wx_shop" in opened.text
    assert f"la_click={ck['click_id']}" in opened.text
    read = (await client.post(f"{base}/{story['id']}/clicks")).json()
    went = await client.get(read["go"])
    assert (went.status_code, went.headers["location"]) == (302, f"/c/{content_id}")
    assert (await client.get(f"/api/v1/rooms/{room['id']}")).json()["pin_clicks"] == 2


async def test_only_a_card_up_in_this_room_is_clicked_and_forged_ids_go_nowhere(
    client: httpx.AsyncClient, brand: Brand, app: Starlette
) -> None:
    room = await make(client, brand)
    elsewhere = await make(client, brand)
    note = await pin(client, brand, room["id"], kind="announcement", text="8 点抽奖")
    card = await pin(
        client, brand, room["id"], kind="coupon", coupon_id=await coupon(client, brand)
    )
    shop = await pin(client, brand, room["id"], kind="service", service=SHOP)
    for pin_id, status, code in [
        (note["id"], 409, "pin_not_clickable"),
        (card["id"], 409, "pin_not_clickable"),
        ("pin_nope", 404, "pin_not_found"),
    ]:
        r = await client.post(f"/api/v1/rooms/{room['id']}/pins/{pin_id}/clicks")
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    wrong_room = await client.post(f"/api/v1/rooms/{elsewhere['id']}/pins/{shop['id']}/clicks")
    assert (wrong_room.status_code, wrong_room.json()["code"]) == (404, "pin_not_found")
    secret = services(app).secret
    forged = [
        clicks.mint(b"another deployment's secret" * 2, shop["id"], b"\0\0\0\0"),
        clicks.mint(secret, shop["id"], b"\0\0\0\0"),  # ours, but not where the pin leads
        clicks.mint(secret, note["id"], b"\0\0\0\0"),  # an announcement leads nowhere
    ]
    for ck in forged:
        r = await client.get(f"/go/{ck}")
        assert (r.status_code, r.json()["code"]) == (404, "click_not_found"), r.text
        assert (await client.get(f"/open/{ck}")).status_code == 404
    assert (await client.get(f"/api/v1/rooms/{room['id']}")).json()["pin_clicks"] == 0
    assert await services(app).store.collection(clicks.CLICKS).count({}) == 0
