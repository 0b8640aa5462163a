"""Channel tickets: how staff speak on a room's channel as staff (DESIGN §5 hello).

The console's session cookie is not sent across to the channel's listener (another port, or a
proxy's host), and a cookie would let any page that opens a websocket speak for the staff
member. Instead the host page asks the HTTP API — with its session and CSRF token, or an API
key — for a ticket: a signed, room-bound claim that lives a minute, sent as the hello's token.
The hello checks it again against the store (the role still held, the key not revoked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.errors import Forbidden, Unauthorized
from accounts.tokens import same
from store.clock import rfc3339

PREFIX = "lac_"
TTL_S = 60
BRAND = "brand"  # the role shown for an API key (the brand's backend speaking)


@dataclass(frozen=True)
class Ticket:
    """Who the ticket lets speak: a staff id (or ``key:<id>``), as which role, in which room."""

    speaker: str
    role: str
    room_id: str


def looks_like_ticket(token: str) -> bool:
    return token.startswith(PREFIX)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _sign(secret: bytes, payload: str) -> str:
    message = b"lifeaccount channel-ticket v1|" + payload.encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


def mint(secret: bytes, ticket: Ticket, *, now: datetime, ttl_s: int = TTL_S) -> tuple[str, str]:
    """The signed ticket and when it expires."""
    expires = now + timedelta(seconds=ttl_s)
    claims: dict[str, str | int] = {
        "s": ticket.speaker,
        "r": ticket.role,
        "m": ticket.room_id,
        "e": int(expires.timestamp()),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{PREFIX}{payload}.{_sign(secret, payload)}", rfc3339(expires)


def read(secret: bytes, token: str, *, room_id: str, now: datetime) -> Ticket:
    """The ticket ``token`` carries, for ``room_id``. Unauthorized ``ticket_invalid`` /
    ``ticket_expired``; Forbidden ``wrong_room`` for another room's ticket."""
    payload, dot, signature = token.removeprefix(PREFIX).partition(".")
    if not dot or not same(signature, _sign(secret, payload)):
        raise Unauthorized("the channel ticket is not valid", code="ticket_invalid")
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        ticket = Ticket(speaker=claims["s"], role=claims["r"], room_id=claims["m"])
        expires = datetime.fromtimestamp(claims["e"], UTC)
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("the channel ticket is not valid", code="ticket_invalid") from exc
    if expires <= now:
        raise Unauthorized(
            "the channel ticket has expired; ask for a new one just before connecting",
            code="ticket_expired",
        )
    if ticket.room_id != room_id:
        raise Forbidden("the channel ticket is for another room", code="wrong_room")
    return ticket
