"""The OpenAPI document (DESIGN §4): valid OpenAPI 3.1, every /api/v1 route in it with its
method, bodies and answers described, and real answers that match what it says."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jsonschema_rs
import pytest

# The official OpenAPI 3.1 schema (OAI/OpenAPI-Specification schemas/v3.1, 2022-10-07) as
# schemathesis bundles it; openapi-spec-validator is not a dependency of this project.
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from store.clock import rfc3339, utc_now
from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_discover import published_video
from webapp.app import ENDPOINTS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Served outside the endpoint table, documented all the same.
SERVICE_PATHS = ("/healthz", "/api/openapi.json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# The tus upload routes (raw-byte bodies, tus headers) are described by webapp/api_uploads_doc
# and pinned by tests/webapp/test_uploads_doc.py; the JSON-API rules below skip them.
UPLOADS = "/api/v1/uploads"
# So are the live video routes (SDP bodies, HLS files): webapp/api_live_doc, pinned by
# tests/webapp/test_api_live_doc.py.
LIVE = ("/whip/", "/whep/", "/hls/")
OAS31 = jsonschema_rs.Draft202012Validator(OPENAPI_31)


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def schema_objects(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Schema Object in the document, with where it is."""
    for name, schema in doc["components"]["schemas"].items():
        yield f"components.schemas.{name}", schema
    for path, method, op in operations(doc):
        for p in op.get("parameters", []):
            yield f"{method} {path} parameter {p['name']}", p["schema"]
        holders = [("requestBody", op.get("requestBody", {}))]
        holders += [(f"responses.{s}", a) for s, a in op.get("responses", {}).items()]
        for where, holder in holders:
            for media, content in holder.get("content", {}).items():
                yield f"{method} {path} {where} {media}", content["schema"]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def problems_with(doc: dict[str, Any]) -> list[str]:
    """What makes ``doc`` not a valid OpenAPI 3.1 document, or nothing."""
    found = [f"{e.instance_path}: {e.message}" for e in OAS31.iter_errors(doc)]
    for where, schema in schema_objects(doc):
        try:
            jsonschema_rs.meta.validate({"$schema": DIALECT, **schema})
        except jsonschema_rs.ValidationError as exc:
            found.append(f"{where}: {exc.message}")
    for ref in refs(doc):
        try:
            resolve(doc, ref)
        except (KeyError, AssertionError):
            found.append(f"unresolved $ref {ref}")
    ids = [op["operationId"] for _, _, op in operations(doc)]
    found += [f"operationId {i} twice" for i in {i for i in ids if ids.count(i) > 1}]
    for path, method, op in operations(doc):
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        if declared != set(re.findall(r"{(\w+)}", path)):
            found.append(f"{method} {path}: path parameters {sorted(declared)}")
    return found


async def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    assert problems_with(doc) == []


async def test_the_validation_catches_a_broken_document(doc: dict[str, Any]) -> None:
    """The check above is not vacuous: each kind of breakage is reported."""
    broken = copy.deepcopy(doc)
    first = next(iter(broken["paths"].values()))
    next(op for m, op in first.items() if m in METHODS)["parameters"] = [
        {"name": "x", "in": "body", "schema": {"type": "string"}}
    ]
    broken["components"]["schemas"]["Problem"]["type"] = "objekt"
    broken["components"]["schemas"]["TierOut"]["properties"]["rank"]["$ref"] = "#/nope"
    found = problems_with(broken)
    assert any("'parameters', 0, 'in'" in f for f in found), found
    assert any("components.schemas.Problem" in f for f in found), found
    assert "unresolved $ref #/nope" in found


async def test_every_api_route_is_documented_with_its_method(
    app: Starlette, doc: dict[str, Any]
) -> None:
    served: set[tuple[str, str]] = set()
    for r in app.routes:
        path = getattr(r, "path", "")
        if not path.startswith(("/api/", *LIVE)) and path not in SERVICE_PATHS:
            continue  # pages are for people, not in the document
        if isinstance(r, WebSocketRoute):
            continue  # OpenAPI describes HTTP only; the room channel is in DESIGN §5
        assert isinstance(r, Route), f"{path} is served by a {type(r).__name__}"
        assert r.methods, path
        # Starlette answers HEAD wherever GET is served; a HEAD of its own is documented.
        served |= {(path, m.lower()) for m in r.methods if m != "HEAD" or "GET" not in r.methods}
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert any(p.startswith("/api/v1/") for p, _ in served), "no /api/v1 route found"
    assert {(p, "get") for p in SERVICE_PATHS} <= served
    assert served == documented


async def test_bodies_and_answers_have_schemas(doc: dict[str, Any]) -> None:
    takes_body = {(e.path, e.method.lower()) for e in ENDPOINTS if e.body is not None}
    for path, method, op in operations(doc):
        if path.startswith((UPLOADS, *LIVE)):
            continue
        if path in SERVICE_PATHS:
            # Outside the endpoint table: anyone may call, no body, JSON answers only.
            assert method == "get" and "requestBody" not in op and op["security"] == [{}]
            for answer in op["responses"].values():
                assert set(answer["content"]) == {"application/json"}, (path, answer)
            continue
        if (path, method) in takes_body:
            body = op["requestBody"]
            assert body["required"] is True
            assert set(body["content"]) == {"application/json"}
            assert "$ref" in body["content"]["application/json"]["schema"]
        else:
            assert "requestBody" not in op, (method, path)
        assert any(s.startswith("2") for s in op["responses"]), (method, path)
        for status, answer in op["responses"].items():
            if status == "204":
                assert "content" not in answer
            elif status.startswith("2"):
                assert set(answer["content"]) == {"application/json"}, (method, path, status)
                assert "$ref" in answer["content"]["application/json"]["schema"]
            else:
                schema = answer["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
        assert op["security"], (method, path)
        assert {"401", "422"} <= set(op["responses"]), (method, path)


@dataclass
class Checker:
    """Calls the API and checks each answer against the documented one."""

    client: httpx.AsyncClient
    doc: dict[str, Any]
    called: set[tuple[str, str, str]] = field(default_factory=set)

    async def __call__(
        self, method: str, template: str, expect: int, path: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        self.client.cookies.clear()
        r = await self.client.request(method, template.format(**(path or {})), **kw)
        assert r.status_code == expect, r.text
        op = self.doc["paths"][template][method.lower()]
        answer = op["responses"].get(str(r.status_code))
        assert answer is not None, f"{method} {template} answered an undocumented {expect}"
        self.called.add((method.lower(), template, str(r.status_code)))
        for header, spec in answer.get("headers", {}).items():
            value = r.headers[header]
            assert jsonschema_rs.is_valid(spec["schema"], int(value) if value.isdigit() else value)
        if "content" not in answer:
            assert r.content == b""
            return None
        (media, content), *_ = answer["content"].items()
        assert r.headers["content-type"] == media
        schema = {**content["schema"], "components": self.doc["components"]}
        errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(r.json())]
        assert errors == [], (method, template, r.json())
        return r.json()


async def test_real_answers_match_their_documented_schemas(
    client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    call = Checker(client, doc)
    await call("GET", "/healthz", 200)
    await call("GET", "/api/openapi.json", 200)
    password = "correct horse battery"
    signed = await call(
        "POST",
        "/api/v1/signup",
        201,
        json={
            "email": "o@tea.example",
            "password": password,
            "account": {"name": "Tea", "handle": "tea"},
        },
    )
    a = {"account_id": signed["account"]["id"]}
    key = bearer(signed["api_key"])
    login = await call(
        "POST", "/api/v1/session", 200, json={"email": "o@tea.example", "password": password}
    )
    staff = {"Cookie": f"la_session={client.cookies.get('la_session')}"}
    assert staff["Cookie"] != "la_session=None"
    staff_w = {**staff, "X-CSRF-Token": login["csrf_token"]}
    await call("GET", "/api/v1/session", 200, headers=staff)
    acc = "/api/v1/accounts/{account_id}"
    await call("GET", acc, 200, a)
    await call("GET", acc, 200, a, headers=key)
    await call("GET", acc, 200, a, headers=staff)
    await call("PATCH", acc, 200, a, json={"bio": "hi", "keywords": ["tea"]}, headers=staff_w)
    token = await call(
        "POST", acc + "/fan-tokens", 201, a, json={"external_id": "u1", "name": "Lily"}, headers=key
    )
    fan = bearer(token["token"])
    af = {**a, "fan_id": token["fan_id"]}
    await call("GET", acc, 200, a, headers=fan)
    await call("GET", acc + "/tiers", 200, a)
    tiers = {"tiers": [{"rank": 0, "name": "fan"}, {"rank": 1, "name": "gold"}]}
    await call("PUT", acc + "/tiers", 200, a, json=tiers, headers=key)
    await call("PUT", acc + "/members/{fan_id}", 200, af, json={"tier": 1}, headers=key)
    await call("GET", acc + "/members/{fan_id}", 200, af, headers=key)
    await call("POST", acc + "/follow", 200, a, headers=fan)
    await call("GET", acc + "/followers", 200, a, headers=key)
    await call("GET", acc + "/followers", 200, a, params={"limit": 1}, headers=staff)
    await call("GET", "/api/v1/me/follows", 200, headers=fan)
    await call("DELETE", acc + "/follow", 200, a, headers=fan)
    credit = {"points": 10, "reason": "order 1"}
    idem = {**key, "Idempotency-Key": "c-1"}
    await call("POST", acc + "/wallets/{fan_id}/credits", 201, af, json=credit, headers=idem)
    await call("POST", acc + "/wallets/{fan_id}/credits", 201, af, json=credit, headers=idem)
    await call("GET", acc + "/wallets/{fan_id}", 200, af, headers=key)
    await call("POST", acc + "/budget/credits", 201, a, json={"points": 100}, headers=idem)
    await call("GET", acc + "/ledger", 200, a, params={"book": "budget"}, headers=key)
    await call("GET", "/api/v1/me", 200, headers=fan)
    await call("GET", "/api/v1/me/wallets", 200, headers=fan)
    article = {"kind": "article", "title": "新品", "blocks": [{"type": "paragraph", "text": "t"}]}
    made_c = await call("POST", acc + "/contents", 201, a, json=article, headers=key)
    c = {"content_id": made_c["id"]}
    await call("GET", "/api/v1/contents/{content_id}", 404, c)  # a draft is the account's
    await call("GET", "/api/v1/contents/{content_id}", 200, c, headers=key)
    await call("POST", "/api/v1/contents/{content_id}/publish", 200, c, json={}, headers=key)
    await call("GET", "/api/v1/contents/{content_id}", 200, c)
    await call("POST", "/api/v1/contents/{content_id}/likes", 200, c, headers=fan)
    await call("DELETE", "/api/v1/contents/{content_id}/likes", 200, c, headers=fan)
    said = await call(
        "POST", "/api/v1/contents/{content_id}/comments", 201, c, json={"text": "好喝"}, headers=fan
    )
    await call(
        "POST",
        "/api/v1/contents/{content_id}/comments",
        201,
        c,
        json={"text": "谢谢", "parent_id": said["id"]},
        headers=key,
    )
    await call("GET", "/api/v1/contents/{content_id}/comments", 200, c)
    await call("GET", acc + "/contents", 200, a)
    await call("GET", "/api/v1/search", 200, params={"q": "新品"})
    # Views and plays, the discover feed and the search box (webapp/api_discover.py).
    await call("POST", "/api/v1/contents/{content_id}/views", 200, c, json={"viewer": "v-1"})
    plays = "/api/v1/contents/{content_id}/plays"
    v = {"content_id": await published_video(client, key, a["account_id"])}
    play = await call("POST", plays, 201, v, json={"viewer": "v-1"})
    ended = {"watched_s": 1, "completed": True}
    await call("PATCH", plays + "/{play_id}", 200, v | {"play_id": play["play_id"]}, json=ended)
    await call("POST", plays, 409, c, json={})  # an article is not played
    await call("GET", "/api/v1/feed/discover", 200, params={"limit": 1})
    await call("GET", "/api/v1/search/box", 200, params={"q": "TEA"})
    await call("GET", "/api/v1/search/box", 422, params={"q": ""})
    await call("GET", "/api/v1/me/feed", 200, headers=fan)
    # Editing, the word list and the review queue (webapp/api_editorial.py).
    cc = "/api/v1/contents/{content_id}"
    await call("PATCH", cc, 200, c, json={"title": "新品二"}, headers=key)
    await call("POST", acc + "/sensitive-words", 200, a, json={"words": ["违禁"]}, headers=key)
    await call("GET", acc + "/sensitive-words", 200, a, headers=staff)
    held = await call(
        "POST", acc + "/contents", 201, a, json=article | {"title": "违禁"}, headers=key
    )
    h = {"content_id": held["id"]}
    await call("POST", cc + "/publish", 200, h, json={}, headers=key)
    await call("GET", acc + "/review", 200, a, headers=key)
    await call("POST", cc + "/reject", 200, h, json={"reason": "标题"}, headers=staff_w)
    await call("PATCH", cc, 200, h, json={"title": "新品三"}, headers=key)
    await call("POST", cc + "/publish", 200, h, json={}, headers=key)
    await call("POST", cc + "/approve", 200, h, headers=staff_w)
    await call("POST", cc + "/approve", 409, h, headers=staff_w)
    # Comment moderation (webapp/api_moderation.py): the word holds a comment back.
    cm = "/api/v1/comments/{comment_id}"
    held_c = await call(
        "POST", "/api/v1/contents/{content_id}/comments", 201, c, json={"text": "违禁"}, headers=fan
    )
    m = {"comment_id": held_c["id"]}
    await call("GET", acc + "/review/comments", 200, a, headers=key)
    await call("POST", cm + "/approve", 403, m, headers=key)
    await call("POST", cm + "/approve", 200, m, headers=staff_w)
    await call("POST", cm + "/approve", 409, m, headers=staff_w)
    await call("DELETE", cm, 204, m, headers=fan)
    await call("DELETE", cm, 404, m, headers=fan)
    await call(
        "POST", acc + "/sensitive-words/remove", 200, a, json={"words": ["违禁"]}, headers=key
    )
    await call("POST", cc + "/archive", 200, h, headers=key)
    await call("PATCH", cc, 409, h, json={"title": "x"}, headers=key)
    await call("DELETE", "/api/v1/contents/{content_id}", 204, c, headers=key)
    await call("GET", "/api/v1/contents/{content_id}", 404, c, headers=key)
    # Coupons, clicks, conversions and stats (webapp/api_commerce.py).
    window = {"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}
    coupon = {"title": "满100减20", "stock": 5, "per_fan_limit": 2, **window}
    made_cp = await call("POST", acc + "/coupons", 201, a, json=coupon, headers=key)
    cp = {"coupon_id": made_cp["id"]}
    await call("GET", acc + "/coupons", 200, a)
    await call("GET", "/api/v1/coupons/{coupon_id}", 200, cp, headers=fan)
    claims = "/api/v1/coupons/{coupon_id}/claims"
    await call("POST", claims, 201, cp, headers={**fan, "Idempotency-Key": "claim-1"})
    await call("POST", claims, 200, cp, headers={**fan, "Idempotency-Key": "claim-1"})
    await call("POST", claims, 201, cp, headers=fan)
    await call("POST", claims, 409, cp, headers=fan)
    await call("GET", "/api/v1/me/coupons", 200, headers=fan)
    link = {"app_id": "wx_shop", "page": "pages/goods", "title": "买"}
    sold = await call(
        "POST", acc + "/contents", 201, a, json=article | {"service_links": [link]}, headers=key
    )
    sc = {"content_id": sold["id"]}
    await call("POST", "/api/v1/contents/{content_id}/publish", 200, sc, json={}, headers=key)
    shown = await call("GET", "/api/v1/contents/{content_id}", 200, sc)
    go = shown["service_links"][0]["click_url"]
    assert (await client.get(go)).status_code == 302
    order = {"click_id": go.rsplit("/", 1)[-1], "order_id": "o-1", "amount": 100}
    await call("POST", "/api/v1/conversions", 201, json=order, headers=key)
    await call("POST", "/api/v1/conversions", 200, json=order, headers=key)
    unknown = order | {"click_id": "ck_x", "order_id": "o-2"}
    await call("POST", "/api/v1/conversions", 404, json=unknown, headers=key)
    await call("GET", acc + "/stats", 200, a, headers=key)
    # Live rooms (webapp/api_rooms.py).
    at = rfc3339(utc_now() + timedelta(days=1))
    room = {"title": "新品直播", "scheduled_at": at, "cover": "https://cdn.example/c.jpg"}
    made_r = await call("POST", acc + "/rooms", 201, a, json=room, headers=key)
    rm, r_ = "/api/v1/rooms/{room_id}", {"room_id": made_r["id"]}
    await call("GET", acc + "/rooms", 200, a, params={"state": "scheduled"})
    await call("GET", rm, 200, r_)
    await call("PATCH", rm, 200, r_, json={"title": "新品直播二", "cover": None}, headers=staff_w)
    await call("POST", rm + "/stream-key", 200, r_, headers=key)
    await call("POST", rm + "/start", 200, r_, headers=staff_w)
    await call("POST", rm + "/chat-messages", 201, r_, json={"text": "有货吗"}, headers=fan)
    await call("POST", rm + "/likes", 200, r_, json={"count": 3}, headers=fan)
    # Props (webapp/api_props.py).
    catalog = {"props": [{"name": "小心心", "price": 1}]}
    made_p = await call("PUT", acc + "/props", 200, a, json=catalog, headers=key)
    await call("GET", acc + "/props", 200, a)
    sends = rm + "/props/{prop_id}/sends"
    pp = {**r_, "prop_id": made_p["props"][0]["id"]}
    await call("POST", sends, 200, pp, json={}, headers={**fan, "Idempotency-Key": "p1"})
    await call("GET", rm + "/supporters", 200, r_)
    # Red packets (webapp/api_red_packets.py).
    packet = {"total": 2, "count": 1, "mode": "equal"}
    made_rp = await call("POST", rm + "/red-packets", 201, r_, json=packet, headers=key)
    rp = {"red_packet_id": made_rp["id"]}
    await call("POST", "/api/v1/red-packets/{red_packet_id}/grabs", 200, rp, headers=fan)
    await call("GET", "/api/v1/red-packets/{red_packet_id}", 200, rp)
    # Collectible drops (webapp/api_drops.py).
    cup = {"name": "限定杯", "editions": 5}
    made_d = await call("POST", rm + "/drops", 201, r_, json=cup, headers=key)
    dd = {"drop_id": made_d["id"]}
    await call("POST", "/api/v1/drops/{drop_id}/claims", 200, dd, headers=fan)
    await call("GET", "/api/v1/drops/{drop_id}", 200, dd, headers=fan)
    await call("GET", "/api/v1/me/collectibles", 200, headers=fan)
    await call("GET", "/api/v1/certificates/public-key", 200)
    # Polls (webapp/api_polls.py): one in the room (the channel's vote op), one elsewhere.
    ask = {"question": "下一款上什么？", "options": ["乌龙", "红茶"], "closes_in_s": 600}
    in_room = await call(
        "POST", acc + "/polls", 201, a, json={**ask, "room_id": r_["room_id"]}, headers=key
    )
    alone = await call("POST", acc + "/polls", 201, a, json=ask, headers=key)
    await call("GET", acc + "/polls", 200, a)
    for poll in (in_room, alone):
        pl = {"poll_id": poll["id"]}
        await call(
            "POST", "/api/v1/polls/{poll_id}/votes", 201, pl, json={"option": 1}, headers=fan
        )
        await call(
            "POST", "/api/v1/polls/{poll_id}/votes", 200, pl, json={"option": 1}, headers=fan
        )
        await call(
            "POST", "/api/v1/polls/{poll_id}/votes", 409, pl, json={"option": 0}, headers=fan
        )
        await call("GET", "/api/v1/polls/{poll_id}", 200, pl, headers=fan)
    await call("GET", rm + "/health", 200, r_, headers=key)
    await call("POST", rm + "/moderation", 200, r_, json={"action": "clear"}, headers=key)
    await call("GET", rm + "/moderation", 200, r_, headers=key)
    chat_rules = {"mode": "followers", "min_tier": 0, "slow_mode_s": 10}
    await call("PUT", rm + "/chat", 200, r_, json=chat_rules, headers=key)
    # The channel's HTTP side (webapp/api_channel.py).
    await call("POST", rm + "/channel-tickets", 201, r_, headers=staff_w)
    pin = {"kind": "announcement", "text": "今晚 8 点抽奖"}
    pinned = await call("POST", rm + "/pins", 201, r_, json=pin, headers=key)
    await call("GET", rm + "/pins", 200, r_)
    p_ = {**r_, "pin_id": pinned["id"]}
    await call("POST", rm + "/pins/{pin_id}/clicks", 409, p_)
    service = {"app_id": "wx_shop", "page": "pages/goods", "title": "买茶"}
    card = await call(
        "POST", rm + "/pins", 201, r_, json={"kind": "service", "service": service}, headers=key
    )
    await call("POST", rm + "/pins/{pin_id}/clicks", 201, {**r_, "pin_id": card["id"]})
    await call("DELETE", rm + "/pins/{pin_id}", 204, p_, headers=key)
    await call("DELETE", rm + "/pins/{pin_id}", 404, p_, headers=key)
    await call("PATCH", rm, 409, r_, json={"scheduled_at": at}, headers=key)
    await call("POST", rm + "/end", 200, r_, headers=key)
    await call("POST", rm + "/start", 409, r_, headers=key)
    await call("POST", acc + "/rooms", 422, a, json={"title": ""}, headers=key)
    # The console routes take the owner's session only.
    made = await call("POST", acc + "/api-keys", 201, a, json={"name": "orders"}, headers=staff_w)
    await call("GET", acc + "/api-keys", 200, a, headers=staff)
    await call("GET", acc + "/api-keys", 403, a, headers=key)
    await call(
        "DELETE", acc + "/api-keys/{key_id}", 200, {**a, "key_id": made["id"]}, headers=staff_w
    )
    await call("GET", acc + "/staff", 200, a, headers=staff)
    invite = {"email": "ed@tea.example", "role": "editor"}
    inv = await call("POST", acc + "/invitations", 201, a, json=invite, headers=staff_w)
    await call("POST", acc + "/invitations", 403, a, json=invite, headers=key)
    await call("GET", acc + "/invitations", 200, a, headers=staff)
    await call(
        "POST",
        "/api/v1/invitations/accept",
        201,
        json={"token": inv["token"], "password": password},
    )
    other = await call(
        "POST",
        acc + "/invitations",
        201,
        a,
        json=invite | {"email": "x@tea.example"},
        headers=staff_w,
    )
    await call(
        "DELETE",
        acc + "/invitations/{invitation_id}",
        204,
        {**a, "invitation_id": other["id"]},
        headers=staff_w,
    )
    # Problems are documented answers too.
    await call("GET", acc, 404, {"account_id": "acc_nope"})
    await call("PATCH", acc, 422, a, json={"bio": 5}, headers=key)
    await call(
        "POST", acc + "/fan-tokens", 403, a, json={"external_id": "u", "name": "n"}, headers=fan
    )
    await call("POST", acc + "/budget/credits", 428, a, json={"points": 1}, headers=key)
    await call("POST", acc + "/budget/credits", 415, a, content=b"points=1", headers=idem)
    await call(
        "POST",
        acc + "/budget/credits",
        400,
        a,
        content=b"{",
        headers={**idem, "Content-Type": "application/json"},
    )
    await call("GET", acc + "/followers", 400, a, params={"cursor": "x"}, headers=key)
    await call(
        "PUT", acc + "/tiers", 409, a, json={"tiers": [{"rank": 0, "name": "fan"}]}, headers=key
    )
    await call("POST", acc + "/follow", 413, a, content=b"x" * (2 << 20), headers=fan)
    await call(
        "DELETE", acc + "/fan-tokens/{token_id}", 204, {**a, "token_id": token["id"]}, headers=key
    )
    await call("POST", acc + "/fans/{fan_id}/revoke-tokens", 200, af, headers=key)
    await call("DELETE", "/api/v1/session", 204, headers=staff_w)
    await call("GET", "/api/v1/session", 401, headers=staff)
    await call("GET", "/api/v1/me", 401, headers=fan)
    wrong = {"email": "o@tea.example", "password": "not the password"}
    for _ in range(10):
        await call("POST", "/api/v1/session", 401, json=wrong)
    await call("POST", "/api/v1/session", 429, json=wrong)
    every_success = {
        (method, path)
        for path, method, op in operations(doc)
        if any(s.startswith("2") for s in op["responses"]) and not path.startswith((UPLOADS, *LIVE))
    }
    assert {(m, p) for m, p, s in call.called if s.startswith("2")} == every_success


async def test_a_second_brand_sees_the_same_document(
    client: httpx.AsyncClient, brand: Brand, doc: dict[str, Any]
) -> None:
    """The document is public and the same for every caller."""
    other = await sign_up(client)
    fan = await mint(client, brand)
    for headers in ({}, brand.key_headers, other.key_headers, bearer(fan["token"])):
        assert (await client.get("/api/openapi.json", headers=headers)).json() == doc
