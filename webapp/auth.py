"""Who is calling: staff by session cookie, a brand backend by API key, a fan by fan token.

The server decides every caller's identity and role from credentials it issued; nothing the
client says about itself is trusted. Role rules per route live with the route table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.requests import Request

from accounts import apikeys, fans, staff
from accounts.errors import DomainError, Unauthorized
from accounts.staff import Staff
from webapp.context import Services
from webapp.throttle import FailureThrottle

SESSION_COOKIE = "la_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Kind(StrEnum):
    ANONYMOUS = "anonymous"
    STAFF = "staff"
    API_KEY = "api_key"
    FAN = "fan"


@dataclass(frozen=True)
class Caller:
    kind: Kind
    id: str = ""  # staff id, api key id or fan id
    account_id: str | None = None  # the account an API key belongs to / a fan token's issuer
    token_id: str | None = None  # session digest source or fan token id
    csrf_token: str | None = None

    @property
    def scope(self) -> str:
        """Idempotency keys are scoped to this (DESIGN §8: caller and route). Every API key of
        one account speaks for the same brand backend, so they share one scope, as the
        ledger's own keys do."""
        if self.kind is Kind.API_KEY:
            return f"api_key:{self.account_id}"
        return f"{self.kind.value}:{self.id}"


ANONYMOUS = Caller(Kind.ANONYMOUS)


def session_cookie_options(secure: bool) -> dict[str, Any]:
    """How the staff session cookie is set, by the API and by the pages alike."""
    return {
        "httponly": True,
        "samesite": "lax",
        "path": "/",
        "secure": secure,
        "max_age": int(staff.SESSION_TTL.total_seconds()),
    }


async def log_in(services: Services, *, email: str, password: str, address: str) -> Staff:
    """Check a staff login, refusing with 429 while this email or address is throttled."""
    email_key, address_key = email.strip().lower(), address
    wait = max(
        services.email_throttle.retry_after(email_key),
        services.address_throttle.retry_after(address_key),
    )
    if wait:
        raise TooManyAttempts(wait)
    # Count the attempt before the slow check, so that guesses sent side by side cannot all
    # pass the throttle while the first ones are still being verified.
    services.email_throttle.fail(email_key)
    services.address_throttle.fail(address_key)
    who = await staff.authenticate(
        services.store, services.passwords, email=email, password=password
    )
    services.email_throttle.clear(email_key)
    services.address_throttle.forgive(address_key)
    return who


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def count_attempt(throttle: FailureThrottle, key: str) -> None:
    """Count one attempt against ``key``, refusing with 429 when the allowance is used up."""
    wait = throttle.retry_after(key)
    if wait:
        raise TooManyAttempts(wait)
    throttle.fail(key)


class TooManyAttempts(DomainError):
    status = 429
    code = "too_many_attempts"
    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts from here; try again in {retry_after} s")
        self.retry_after = retry_after


async def identify(request: Request, services: Services) -> Caller:
    """Resolve the caller from the request, or raise ``Unauthorized`` for a bad credential."""
    header = request.headers.get("authorization")
    now = services.now()
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "use 'Authorization: Bearer <api key or fan token>'",
                code="token_invalid",
                field="Authorization",
            )
        if apikeys.looks_like_key(token):
            key = await apikeys.authenticate_key(services.store, token)
            return Caller(Kind.API_KEY, id=key.id, account_id=key.account_id)
        if fans.looks_like_fan_token(token):
            ident = await fans.verify_token(services.store, services.secret, token, now=now)
            return Caller(
                Kind.FAN, id=ident.fan_id, account_id=ident.issuer_id, token_id=ident.token_id
            )
        raise Unauthorized(
            "the bearer token is neither an API key nor a fan token",
            code="token_invalid",
            field="Authorization",
        )
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = await staff.session_for(services.store, cookie, now=now)
        if session is not None:
            return Caller(
                Kind.STAFF, id=session.staff.id, token_id=cookie, csrf_token=session.csrf_token
            )
    return ANONYMOUS
