"""Small helpers for secrets the platform hands out: how they are stored and compared."""

from __future__ import annotations

import hashlib
import hmac


def digest(secret: str) -> str:
    """What is stored for a high-entropy secret (session, API key, invitation): its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time equality for any text a client sends. ``hmac.compare_digest`` refuses
    non-ASCII ``str``, so both sides are compared as UTF-8 bytes (surrogates escaped)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )
