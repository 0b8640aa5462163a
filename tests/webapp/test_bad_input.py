"""Bad input on the accounts API (DESIGN §4): every case answers a 4xx problem+json that names
what is wrong, never a 500, and writes nothing — no rows, no idempotency record, no session.

The matrix is a table of requests; each runs against a fresh app whose clock the test owns, and
the SQLite file is dumped before and after the request and compared.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from store.engines import sqlite_path
from tests.conftest import Brand, bearer, mint, sign_up
from webapp.app import create_app
from webapp.settings import Settings

MIB = 1 << 20
PROBLEM = "application/problem+json"


class Clock:
    """The app's ``now``: it moves only when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[Starlette]:
    application = create_app(settings, now=clock)
    async with application.router.lifespan_context(application):
        yield application


Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(db: Path) -> Snapshot:
    """Every row of every table. A table without rows is left out: reading a collection may
    create its empty table, which holds no data."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        tables = {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}
    return {name: rows for name, rows in tables.items() if rows}


def _flip(text: str) -> str:
    """Change one character of a token's signature."""
    payload, _, signature = text.rpartition(".")
    last = "A" if signature[-2] != "A" else "B"
    return f"{payload}.{signature[:-2]}{last}{signature[-1]}"


def _tamper(token: str, **claims: Any) -> str:
    """Rewrite a fan token's payload and keep its (now wrong) signature."""
    body, _, signature = token.removeprefix("laf_").partition(".")
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    decoded.update(claims)
    raw = json.dumps(decoded, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"laf_{forged}.{signature}"


@dataclass
class World:
    """Two brands, fans and credentials in every state a bad request can name."""

    db: Path
    a: Brand
    b: Brand
    fan_id: str
    fan_token: str
    expired_token: str
    revoked_token: str
    revoked_key: str
    ids: dict[str, str]  # what the matrix's paths name: {a}, {b}, {fan}, {fan2}, {b_fan}, …

    def auth(self, kind: str) -> dict[str, str]:
        a = self.a
        staff_cookie = {"Cookie": f"la_session={a.cookies['la_session']}"}
        return {
            "none": {},
            "key": a.key_headers,
            "b_key": self.b.key_headers,
            "fan": bearer(self.fan_token),
            "staff": {**staff_cookie, **a.staff_headers},
            "staff_no_csrf": staff_cookie,
            # Another last character, always: a token that already ended in "x" made this
            # "bad" token the real one once in 64 runs.
            "staff_bad_csrf": {
                **staff_cookie,
                "X-CSRF-Token": a.csrf_token[:-1] + ("y" if a.csrf_token.endswith("x") else "x"),
            },
            "unknown_session": {"Cookie": "la_session=not-a-session"},
            "basic": {"Authorization": "Basic b3duZXI6cGFzc3dvcmQ="},
            "empty_bearer": {"Authorization": "Bearer "},
            "garbage_bearer": {"Authorization": "Bearer hello"},
            "malformed_key": bearer("lak_short"),
            "unknown_key": bearer("lak_" + "0" * 26 + "_" + "x" * 43),
            "revoked_key": bearer(self.revoked_key),
            "forged_token": bearer(_flip(self.fan_token)),
            "tampered_token": bearer(_tamper(self.fan_token, e=4102444800)),
            "tampered_fan": bearer(_tamper(self.fan_token, f="fan_someone_else")),
            "expired_token": bearer(self.expired_token),
            "revoked_token": bearer(self.revoked_token),
        }[kind]


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings, clock: Clock) -> World:
    a = await sign_up(client, "brand-a")
    b = await sign_up(client, "brand-b")
    fan = await mint(client, a, "u1")
    b_fan = await mint(client, b, "u1")
    expiring = await mint(client, a, "u2", ttl_s=60)
    revoked = await mint(client, a, "u3")
    r = await client.delete(
        f"/api/v1/accounts/{a.account_id}/fan-tokens/{revoked['id']}", headers=a.key_headers
    )
    assert r.status_code == 204, r.text
    # Keys are the owner's to manage, from a console session.
    owner = {"Cookie": f"la_session={a.cookies['la_session']}", **a.staff_headers}
    old = await client.post(
        f"/api/v1/accounts/{a.account_id}/api-keys", json={"name": "old"}, headers=owner
    )
    assert old.status_code == 201, old.text
    r = await client.delete(
        f"/api/v1/accounts/{a.account_id}/api-keys/{old.json()['id']}", headers=owner
    )
    assert r.status_code == 200, r.text
    # One credit done under a key, so that key can be reused with another body.
    r = await client.post(
        f"/api/v1/accounts/{a.account_id}/wallets/{fan['fan_id']}/credits",
        json={"points": 5, "reason": "welcome"},
        headers={**a.key_headers, "Idempotency-Key": "used-key"},
    )
    assert r.status_code == 201, r.text
    clock.advance(61)  # the 60-second token is now expired; every other credential is live
    db = sqlite_path(settings.store, settings.data_dir)
    return World(
        db=db,
        a=a,
        b=b,
        fan_id=fan["fan_id"],
        fan_token=fan["token"],
        expired_token=expiring["token"],
        revoked_token=revoked["token"],
        revoked_key=old.json()["key"],
        ids={
            "a": a.account_id,
            "b": b.account_id,
            "fan": fan["fan_id"],
            "fan2": expiring["fan_id"],
            "b_fan": b_fan["fan_id"],
            "b_token": b_fan["id"],
        },
    )


NO_BODY = object()


@dataclass(frozen=True)
class Bad:
    """One bad request and the problem it must answer."""

    name: str
    method: str
    path: str  # formatted with World.ids
    status: int
    code: str
    field: str | None  # the problem's `field`; None: the route has no field to name
    auth: str = "key"
    json: Any = NO_BODY
    content: bytes | Callable[[], AsyncIterator[bytes]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    has: str = ""  # a phrase the detail must contain


A = "/api/v1/accounts/{a}"
WALLET = A + "/wallets/{fan}/credits"
BUDGET = A + "/budget/credits"
MINT = A + "/fan-tokens"
FOLLOW = A + "/follow"
IDEM = {"Idempotency-Key": "k-1"}
JSON = "application/json"
CREDIT = {"points": 1, "reason": "r"}
NEW_FAN = {"external_id": "u9", "name": "n"}
SIGNUP = {
    "email": "new@brand.example",
    "password": "correct horse battery",
    "account": {"name": "New Brand", "handle": "new-brand"},
}


def x(n: int) -> str:
    return "x" * n


def signup(
    name: str,
    field: str | None,
    status: int = 422,
    code: str = "invalid_field",
    *,
    has: str = "",
    **changes: Any,
) -> Bad:
    """A sign-up (anonymous) whose body is SIGNUP with ``changes``; ``account__handle`` is
    the nested field, NO_BODY deletes a field."""
    body = json.loads(json.dumps(SIGNUP))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = body
        for p in parents:
            target = target[p]
        if value is NO_BODY:
            del target[leaf]
        else:
            target[leaf] = value
    return Bad(name, "POST", "/api/v1/signup", status, code, field, "none", body, has=has)


def credit(name: str, field: str, body: Any, path: str = WALLET, **kw: Any) -> Bad:
    """A credit (API key, Idempotency-Key) answering 422 invalid_field on ``field``."""
    return Bad(name, "POST", path, 422, "invalid_field", field, json=body, headers=IDEM, **kw)


def invalid(
    name: str, method: str, path: str, field: str, body: Any = NO_BODY, auth: str = "key"
) -> Bad:
    """A request (by the brand's API key unless ``auth`` says) answering 422 invalid_field
    on ``field``."""
    return Bad(name, method, path, 422, "invalid_field", field, auth, json=body)


def raw(
    name: str,
    status: int,
    code: str,
    field: str,
    content: Any,
    ctype: str | None,
    method: str = "POST",
    path: str = WALLET,
) -> Bad:
    """A raw body under a Content-Type (None: no header) to a route taking JSON."""
    headers = {**IDEM, **({"Content-Type": ctype} if ctype else {})}
    return Bad(name, method, path, status, code, field, content=content, headers=headers)


POINTS = [-5, 0, 1.5, 5.0, "10", True, None, 10**12, 10**30]
RANKS = [-1, 0.5, "0", False, 1001]

CASES: list[Bad] = [
    # -- points and ranks: negative, zero, fractional, strings, booleans, too big -------------
    *[
        credit(f"wallet_points_{v!r}", "points", {"points": v, "reason": "r"}, has="'points'")
        for v in POINTS
    ],
    *[
        credit(f"budget_points_{v!r}", "points", {"points": v}, BUDGET, has="'points'")
        for v in POINTS
    ],
    *[
        invalid(f"member_tier_{v!r}", "PUT", A + "/members/{fan}", "tier", {"tier": v})
        for v in RANKS
    ],
    *[invalid(f"mint_tier_{v!r}", "POST", MINT, "tier", {**NEW_FAN, "tier": v}) for v in RANKS],
    invalid("mint_ttl_too_short", "POST", MINT, "ttl_s", {**NEW_FAN, "ttl_s": 1}),
    Bad(
        "member_tier_not_on_ladder",
        "PUT",
        A + "/members/{fan}",
        422,
        "unknown_tier",
        "tier",
        json={"tier": 7},
    ),
    Bad(
        "mint_tier_not_on_ladder",
        "POST",
        MINT,
        422,
        "unknown_tier",
        "tier",
        json={**NEW_FAN, "tier": 7},
    ),
    # -- strings over their maximum length ---------------------------------------------------
    signup("signup_email_too_long", "email", email=x(250) + "@b.example"),
    signup("signup_password_too_long", "password", password=x(257)),
    signup("signup_handle_too_long", "account.handle", account__handle=x(31)),
    signup("signup_name_too_long", "account.name", account__name=x(61)),
    invalid(
        "mint_external_id_too_long", "POST", MINT, "external_id", {**NEW_FAN, "external_id": x(129)}
    ),
    invalid("mint_name_too_long", "POST", MINT, "name", {**NEW_FAN, "name": x(61)}),
    credit("credit_reason_too_long", "reason", {"points": 1, "reason": x(201)}),
    invalid("patch_bio_too_long", "PATCH", A, "bio", {"bio": x(501)}),
    invalid("patch_keyword_too_long", "PATCH", A, "keywords.1", {"keywords": ["ok", x(21)]}),
    invalid(
        "tier_name_too_long",
        "PUT",
        A + "/tiers",
        "tiers.0.name",
        {"tiers": [{"rank": 0, "name": x(21)}]},
    ),
    invalid("api_key_name_too_long", "POST", A + "/api-keys", "name", {"name": x(61)}, "staff"),
    invalid(
        "invitation_email_too_long",
        "POST",
        A + "/invitations",
        "email",
        {"email": x(250) + "@b.example", "role": "editor"},
        "staff",
    ),
    Bad(
        "idempotency_key_too_long",
        "POST",
        WALLET,
        422,
        "invalid_field",
        "Idempotency-Key",
        json=CREDIT,
        headers={"Idempotency-Key": x(256)},
    ),
    # -- missing, extra and wrong-typed fields, top-level and nested ---------------------------
    signup("signup_missing_email", "email", has="'email' is required", email=NO_BODY),
    signup(
        "signup_missing_handle",
        "account.handle",
        has="'account.handle' is required",
        account__handle=NO_BODY,
    ),
    signup("signup_missing_account", "account", account=NO_BODY),
    signup("signup_extra_field", "role", has="remove it", role="admin"),
    signup("signup_extra_nested_field", "account.verified", account__verified=True),
    signup("signup_account_not_an_object", "account", account="new-brand"),
    signup("signup_handle_wrong_type", "account.handle", account__handle=5),
    signup("signup_handle_null", "account.handle", account__handle=None),
    signup("signup_handle_bad_pattern", "account.handle", account__handle="-bad handle"),
    signup("signup_handle_reserved", "account.handle", account__handle="admin"),
    signup("signup_email_wrong_type", "email", email=["a@b.example"]),
    signup("signup_email_not_an_address", "email", email="not-an-email"),
    signup("signup_handle_taken", "account.handle", 409, "handle_taken", account__handle="brand-a"),
    signup("signup_email_taken", "email", 409, "email_taken", email="owner@brand-a.example"),
    credit("credit_missing_points", "points", {"reason": "r"}),
    credit("credit_missing_reason", "reason", {"points": 1}),
    credit("credit_extra_field", "currency", {**CREDIT, "currency": "CNY"}),
    credit("credit_reason_wrong_type", "reason", {"points": 1, "reason": 5}),
    invalid("mint_missing_external_id", "POST", MINT, "external_id", {"name": "n"}),
    invalid("tiers_not_a_list", "PUT", A + "/tiers", "tiers", {"tiers": {"rank": 0, "name": "a"}}),
    invalid(
        "tiers_without_rank_zero",
        "PUT",
        A + "/tiers",
        "tiers",
        {"tiers": [{"rank": 1, "name": "gold"}]},
    ),
    invalid("tier_missing_name", "PUT", A + "/tiers", "tiers.0.name", {"tiers": [{"rank": 0}]}),
    invalid("keywords_not_a_list", "PATCH", A, "keywords", {"keywords": "tea"}),
    invalid(
        "embed_origin_not_an_origin",
        "PATCH",
        A,
        "embed_origins.0",
        {"embed_origins": ["https://shop.example/path"]},
    ),
    invalid(
        "invitation_unknown_role",
        "POST",
        A + "/invitations",
        "role",
        {"email": "e@brand.example", "role": "admin"},
        "staff",
    ),
    invalid("followers_limit_too_big", "GET", A + "/followers?limit=1000", "limit"),
    invalid("followers_limit_not_a_number", "GET", A + "/followers?limit=ten", "limit"),
    *[
        Bad(
            f"cursor_{label}",
            "GET",
            f"{A}/followers?cursor={cursor}",
            400,
            "invalid_cursor",
            "cursor",
        )
        for label, cursor in (
            ("not_base64_json", "bm90LWEtY3Vyc29y"),
            # Right listing tag, values no store can compare: a number beyond 64 bits, NaN.
            ("huge_number", "WyI3ZmU1OTZmZSIsWzEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAsIngiXV0"),
            ("nan", "WyI3ZmU1OTZmZSIsW05hTiwieCJdXQ"),
        )
    ],
    # -- unknown ids ---------------------------------------------------------------------------
    Bad(
        "unknown_account",
        "GET",
        "/api/v1/accounts/acc_unknown",
        404,
        "account_not_found",
        "account_id",
        "none",
        has="acc_unknown",
    ),
    Bad(
        "unknown_account_for_a_key",
        "POST",
        "/api/v1/accounts/acc_unknown/fan-tokens",
        404,
        "account_not_found",
        "account_id",
        json=NEW_FAN,
    ),
    Bad(
        "unknown_account_for_staff",
        "PATCH",
        "/api/v1/accounts/acc_unknown",
        404,
        "account_not_found",
        "account_id",
        "staff",
        {"bio": "x"},
    ),
    Bad(
        "unknown_account_for_a_fan",
        "POST",
        "/api/v1/accounts/acc_unknown/follow",
        404,
        "account_not_found",
        "account_id",
        "fan",
    ),
    Bad(
        "unknown_fan_credit",
        "POST",
        A + "/wallets/fan_unknown/credits",
        404,
        "fan_not_found",
        "fan_id",
        json=CREDIT,
        headers=IDEM,
        has="fan_unknown",
    ),
    Bad(
        "unknown_fan_member",
        "PUT",
        A + "/members/fan_unknown",
        404,
        "fan_not_found",
        "fan_id",
        json={"tier": 0},
    ),
    Bad(
        "unknown_fan_member_read", "GET", A + "/members/fan_unknown", 404, "fan_not_found", "fan_id"
    ),
    Bad("unknown_fan_wallet", "GET", A + "/wallets/fan_unknown", 404, "fan_not_found", "fan_id"),
    # A fan that brand B minted is not one of brand A's, even to read.
    *[
        Bad(
            f"another_brands_fan_{what}_by_{auth}",
            "GET",
            A + path,
            404,
            "fan_not_found",
            "fan_id",
            auth,
        )
        for what, path in (("wallet", "/wallets/{b_fan}"), ("member", "/members/{b_fan}"))
        for auth in ("key", "staff")
    ],
    Bad(
        "unknown_fan_revoke_tokens",
        "POST",
        A + "/fans/fan_unknown/revoke-tokens",
        404,
        "fan_not_found",
        "fan_id",
    ),
    Bad(
        "unknown_token",
        "DELETE",
        A + "/fan-tokens/ftk_unknown",
        404,
        "fan_token_not_found",
        "token_id",
        has="ftk_unknown",
    ),
    Bad(
        "another_accounts_token",
        "DELETE",
        A + "/fan-tokens/{b_token}",
        404,
        "fan_token_not_found",
        "token_id",
    ),
    Bad(
        "unknown_api_key",
        "DELETE",
        A + "/api-keys/key_unknown",
        404,
        "api_key_not_found",
        "key_id",
        "staff",
        has="key_unknown",
    ),
    Bad(
        "unknown_invitation",
        "DELETE",
        A + "/invitations/inv_unknown",
        404,
        "invitation_not_found",
        "invitation_id",
        "staff",
        has="inv_unknown",
    ),
    Bad(
        "unknown_invitation_token",
        "POST",
        "/api/v1/invitations/accept",
        404,
        "invitation_not_found",
        "token",
        "none",
        {"token": "not-a-token", "password": "correct horse battery"},
    ),
    Bad(
        "unknown_route",
        "GET",
        A + "/nothing-here",
        404,
        "not_found",
        None,
        has="/nothing-here",
    ),
    Bad(
        "wrong_method",
        "PUT",
        A,
        405,
        "method_not_allowed",
        None,
        json={"bio": "x"},
        has="PUT",
    ),
    # -- credentials: missing, malformed, forged, tampered, expired, revoked, misplaced --------
    *[
        Bad(f"{kind}_on_a_key_route", "POST", MINT, 401, code, "Authorization", kind, NEW_FAN)
        for kind, code in (
            ("none", "authentication_required"),
            ("unknown_session", "authentication_required"),
            ("basic", "token_invalid"),
            ("empty_bearer", "token_invalid"),
            ("garbage_bearer", "token_invalid"),
            ("malformed_key", "api_key_invalid"),
            ("unknown_key", "api_key_invalid"),
            ("revoked_key", "api_key_revoked"),
        )
    ],
    *[
        Bad(f"{kind}_on_a_fan_route", "POST", FOLLOW, 401, code, "Authorization", kind)
        for kind, code in (
            ("none", "authentication_required"),
            ("forged_token", "token_invalid"),
            ("tampered_token", "token_invalid"),
            ("tampered_fan", "token_invalid"),
            ("expired_token", "token_expired"),
            ("revoked_token", "token_revoked"),
        )
    ],
    Bad(
        "expired_token_on_a_public_route",
        "GET",
        A,
        401,
        "token_expired",
        "Authorization",
        "expired_token",
    ),
    Bad(
        "anonymous_before_a_bad_body",
        "POST",
        WALLET,
        401,
        "authentication_required",
        "Authorization",
        "none",
        {"points": -5},
    ),
    Bad(
        "missing_idempotency_key",
        "POST",
        WALLET,
        428,
        "idempotency_key_required",
        "Idempotency-Key",
        json=CREDIT,
    ),
    Bad(
        "idempotency_key_reused",
        "POST",
        WALLET,
        422,
        "idempotency_key_reused",
        "Idempotency-Key",
        json={"points": 6, "reason": "welcome"},
        headers={"Idempotency-Key": "used-key"},
    ),
    Bad(
        "idempotency_key_reused_for_another_fan",
        "POST",
        A + "/wallets/{fan2}/credits",
        422,
        "idempotency_key_reused",
        "Idempotency-Key",
        json={"points": 5, "reason": "welcome"},
        headers={"Idempotency-Key": "used-key"},
    ),
    # -- the console's routes (keys, invitations, staff) take the owner's session only ---------
    *[
        Bad(
            f"{auth}_on_console_{label}",
            method,
            A + path,
            403,
            "wrong_credential",
            "Authorization",
            auth,
            body,
        )
        for label, method, path, body in (
            ("create_key", "POST", "/api-keys", {"name": "more"}),
            ("list_keys", "GET", "/api-keys", NO_BODY),
            ("revoke_key", "DELETE", "/api-keys/key_unknown", NO_BODY),
            ("invite", "POST", "/invitations", {"email": "e@x.example", "role": "owner"}),
            ("list_invitations", "GET", "/invitations", NO_BODY),
            ("withdraw_invitation", "DELETE", "/invitations/inv_unknown", NO_BODY),
            ("list_staff", "GET", "/staff", NO_BODY),
        )
        for auth in ("key", "fan")
    ],
    *[
        Bad(
            f"{auth}_on_console_{label}",
            "POST",
            A + path,
            403,
            "csrf_failed",
            "X-CSRF-Token",
            auth,
            body,
        )
        for label, path, body in (
            ("create_key", "/api-keys", {"name": "more"}),
            ("invite", "/invitations", {"email": "e@x.example", "role": "owner"}),
        )
        for auth in ("staff_no_csrf", "staff_bad_csrf")
    ],
    Bad(
        "staff_without_csrf_revokes_a_key",
        "DELETE",
        A + "/api-keys/key_unknown",
        403,
        "csrf_failed",
        "X-CSRF-Token",
        "staff_no_csrf",
    ),
    # -- a session cookie without its CSRF token, where anyone may call: no staff authority,
    # so the request goes on as an anonymous one (no csrf_failed) ---------------------------
    *[
        Bad(
            f"signup_by_{auth}_is_anonymous",
            "POST",
            "/api/v1/signup",
            422,
            "invalid_field",
            "account.handle",
            auth,
            {**SIGNUP, "account": {"name": "n", "handle": "-bad"}},
        )
        for auth in ("staff_no_csrf", "staff_bad_csrf")
    ],
    *[
        Bad(
            f"login_by_{auth}_is_anonymous",
            "POST",
            "/api/v1/session",
            401,
            "invalid_credentials",
            None,
            auth,
            {"email": "owner@brand-a.example", "password": "not the password"},
        )
        for auth in ("staff_no_csrf", "staff_bad_csrf")
    ],
    *[
        Bad(
            f"accept_by_{auth}_is_anonymous",
            "POST",
            "/api/v1/invitations/accept",
            404,
            "invitation_not_found",
            "token",
            auth,
            {"token": "not-a-token", "password": x(10)},
        )
        for auth in ("staff_no_csrf", "staff_bad_csrf")
    ],
    Bad(
        "staff_without_csrf",
        "PATCH",
        A,
        403,
        "csrf_failed",
        "X-CSRF-Token",
        "staff_no_csrf",
        {"bio": "x"},
    ),
    Bad(
        "staff_logout_without_csrf",
        "DELETE",
        "/api/v1/session",
        403,
        "csrf_failed",
        "X-CSRF-Token",
        "staff_no_csrf",
    ),
    Bad(
        "staff_of_a_on_b",
        "PATCH",
        "/api/v1/accounts/{b}",
        403,
        "not_staff",
        "account_id",
        "staff",
        {"bio": "x"},
    ),
    Bad(
        "staff_of_a_reads_b_followers",
        "GET",
        "/api/v1/accounts/{b}/followers",
        403,
        "not_staff",
        "account_id",
        "staff",
    ),
    Bad(
        "key_of_b_on_a",
        "POST",
        WALLET,
        403,
        "wrong_account",
        "Authorization",
        "b_key",
        CREDIT,
        headers=IDEM,
    ),
    Bad(
        "fan_on_a_brand_route",
        "POST",
        MINT,
        403,
        "wrong_credential",
        "Authorization",
        "fan",
        NEW_FAN,
    ),
    Bad(
        "fan_credits_itself",
        "POST",
        WALLET,
        403,
        "wrong_credential",
        "Authorization",
        "fan",
        CREDIT,
        headers=IDEM,
    ),
    Bad("key_on_a_fan_route", "POST", FOLLOW, 403, "wrong_credential", "Authorization"),
    Bad(
        "staff_on_a_key_only_route",
        "POST",
        BUDGET,
        403,
        "wrong_credential",
        "Authorization",
        "staff",
        {"points": 1},
        headers=IDEM,
    ),
    Bad(
        "wrong_password",
        "POST",
        "/api/v1/session",
        401,
        "invalid_credentials",
        None,
        "none",
        {"email": "owner@brand-a.example", "password": "not the password"},
        has="password",
    ),
    # -- bodies: malformed JSON, not an object, wrong content type, too large, unexpected -------
    *[
        raw(f"json_{label}", 400, "malformed_json", "body", content, JSON, method, path)
        for label, content, method, path in (
            ("cut_short", b'{"points": 1, "reason": ', "POST", WALLET),
            ("empty", b"", "POST", WALLET),
            ("trailing_garbage", b'{"bio": "x"} {}', "PATCH", A),
            ("nan", b'{"points": NaN, "reason": "r"}', "POST", WALLET),
            ("lone_surrogate", b'{"bio": "\\ud800"}', "PATCH", A),
            ("not_utf8", '{"bio": "é"}'.encode("latin-1"), "PATCH", A),
        )
    ],
    *[
        raw(f"json_{label}_not_an_object", 422, "invalid_field", "body", content, JSON)
        for label, content in (("array", b"[1, 2]"), ("string", b'"x"'), ("null", b"null"))
    ],
    *[
        raw(f"content_type_{label}", 415, "unsupported_media_type", "Content-Type", body, ctype)
        for label, body, ctype in (
            ("text_plain", b'{"points": 1, "reason": "r"}', "text/plain"),
            ("form", b"points=1&reason=r", "application/x-www-form-urlencoded"),
            ("none", b'{"points": 1, "reason": "r"}', None),
            ("json_lookalike", b'{"points": 1, "reason": "r"}', "application/jsonx"),
        )
    ],
    raw("body_too_large", 413, "body_too_large", "body", b"{" + b" " * MIB + b"}", JSON),
    raw(
        "body_too_large_chunked",
        413,
        "body_too_large",
        "body",
        lambda: _chunks(b" " * (64 * 1024), 17),
        JSON,
        "PATCH",
        A,
    ),
    Bad("body_on_a_route_without_one", "POST", FOLLOW, 422, "unexpected_body", "body", "fan", [1]),
]


async def _chunks(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    yield b'{"bio": "'
    for _ in range(count):
        yield chunk
    yield b'"}'


async def _send(client: httpx.AsyncClient, world: World, bad: Bad) -> httpx.Response:
    client.cookies.clear()
    headers = {**world.auth(bad.auth), **bad.headers}
    url = bad.path.format(**world.ids)
    if bad.json is not NO_BODY:
        return await client.request(bad.method, url, json=bad.json, headers=headers)
    content = bad.content() if callable(bad.content) else bad.content
    return await client.request(bad.method, url, content=content, headers=headers)


def test_the_matrix_names_every_case_once() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
async def test_bad_input_answers_a_named_problem_and_writes_nothing(
    client: httpx.AsyncClient, world: World, bad: Bad
) -> None:
    before = snapshot(world.db)
    r = await _send(client, world, bad)
    assert r.status_code == bad.status, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == bad.status
    assert problem["code"] == bad.code, problem
    assert problem["type"].endswith("/" + bad.code.replace("_", "-"))
    assert problem["title"] and problem["detail"]
    assert problem.get("field") == bad.field, problem
    if bad.field is not None and problem.get("errors"):
        assert problem["errors"][0]["field"] == bad.field
    assert bad.has in problem["detail"]
    assert "set-cookie" not in r.headers
    assert snapshot(world.db) == before


async def test_the_snapshot_sees_a_write(client: httpx.AsyncClient, world: World) -> None:
    """The matrix's "writes nothing" would pass vacuously if the snapshot were blind."""
    before = snapshot(world.db)
    r = await client.patch(
        f"/api/v1/accounts/{world.a.account_id}", json={"bio": "x"}, headers=world.a.key_headers
    )
    assert r.status_code == 200
    assert snapshot(world.db) != before


async def test_every_credential_in_the_world_is_as_named(
    client: httpx.AsyncClient, world: World
) -> None:
    """The good twins of the bad credentials work, so each 401 above is about the one flaw."""
    url = f"/api/v1/accounts/{world.a.account_id}"
    for kind in ("key", "fan", "staff"):
        client.cookies.clear()
        r = await client.get(url, headers=world.auth(kind))
        assert r.status_code == 200, (kind, r.text)
    r = await client.post(
        f"{url}/wallets/{world.fan_id}/credits",
        json={"points": 5, "reason": "welcome"},
        headers={**world.a.key_headers, "Idempotency-Key": "used-key"},
    )
    assert r.status_code == 201 and r.headers["idempotent-replayed"] == "true"


async def test_a_token_expires_on_the_apps_clock(
    client: httpx.AsyncClient, brand: Brand, clock: Clock
) -> None:
    fan = await mint(client, brand, "u1", ttl_s=60)
    follow = f"/api/v1/accounts/{brand.account_id}/follow"
    clock.advance(59)
    assert (await client.post(follow, headers=bearer(fan["token"]))).status_code == 200
    clock.advance(1)
    r = await client.post(follow, headers=bearer(fan["token"]))
    assert r.status_code == 401 and r.json()["code"] == "token_expired"


async def test_a_wrong_method_names_every_method_of_the_path(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    url = f"/api/v1/accounts/{brand.account_id}"
    r = await client.put(url, json={"bio": "x"}, headers=brand.key_headers)
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH"}
    r = await client.request("TRACE", "/api/v1/session")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "DELETE"}


async def test_a_locked_login_says_when_to_retry(client: httpx.AsyncClient, world: World) -> None:
    login = {"email": world.a.email, "password": "not the password"}
    for _ in range(10):
        assert (await client.post("/api/v1/session", json=login)).status_code == 401
    before = snapshot(world.db)
    r = await client.post("/api/v1/session", json={**login, "password": world.a.password})
    assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "too_many_attempts"
    assert 1 <= int(r.headers["retry-after"]) <= 900
    assert snapshot(world.db) == before


@pytest.mark.parametrize(
    ("name", "headers", "status", "code", "field"),
    [
        # Raw UTF-8 in a header (RFC 9110 allows obs-text): the constant-time comparisons
        # must refuse it like any other wrong value, not fail on it.
        (
            "fan_token",
            [(b"authorization", "Bearer laf_a.\u00e9".encode())],
            401,
            "token_invalid",
            "Authorization",
        ),
        (
            "fan_token_payload",
            [(b"authorization", "Bearer laf_\u00e9\u00e9.abc".encode())],
            401,
            "token_invalid",
            "Authorization",
        ),
        (
            "api_key",
            [(b"authorization", ("Bearer lak_" + "0" * 26 + "_\u00e9").encode())],
            401,
            "api_key_invalid",
            "Authorization",
        ),
        ("csrf_header", [(b"x-csrf-token", "\u00e9".encode())], 403, "csrf_failed", "X-CSRF-Token"),
    ],
)
async def test_non_ascii_credentials_are_refused_not_crashed(
    client: httpx.AsyncClient,
    world: World,
    name: str,
    headers: list[tuple[bytes, bytes]],
    status: int,
    code: str,
    field: str,
) -> None:
    before = snapshot(world.db)
    client.cookies.clear()
    if name == "csrf_header":
        headers = [(b"cookie", f"la_session={world.a.cookies['la_session']}".encode()), *headers]
    r = await client.patch(
        f"/api/v1/accounts/{world.a.account_id}",
        content=b'{"bio": "x"}',
        headers=[(b"content-type", b"application/json"), *headers],
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert (r.json()["code"], r.json()["field"]) == (code, field)
    assert snapshot(world.db) == before
