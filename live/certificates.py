"""Certificates of collectible editions (DESIGN §6): a claim signed with the deployment's
Ed25519 key, checked offline by ``lifeaccount verify`` or any Ed25519 library.

A certificate reads ``<payload>.<signature>``, both base64url without padding: the payload is
the claim as compact JSON (keys sorted), the signature Ed25519 over the payload's bytes as
sent. The deployment's key is derived from its secret (so it survives restarts and needs no
file of its own); its public half is served at ``GET /api/v1/certificates/public-key``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PURPOSE = b"lifeaccount drop-signing v1|"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey

    @classmethod
    def from_secret(cls, secret: bytes) -> Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(PURPOSE + secret).digest()))

    def public_key(self) -> str:
        """The public key, raw 32 bytes in base64url (what ``verify`` takes)."""
        return _b64(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, claim: dict[str, Any]) -> str:
        payload = json.dumps(claim, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        raw = payload.encode()
        return f"{_b64(raw)}.{_b64(self.key.sign(raw))}"


class BadCertificate(ValueError):
    pass


def verify(certificate: str, public_key: str) -> dict[str, Any]:
    """The claim a certificate carries, when the key signed it; BadCertificate otherwise."""
    payload, dot, signature = certificate.strip().partition(".")
    if not dot:
        raise BadCertificate("a certificate reads <payload>.<signature>")
    try:
        raw, sig, key = _unb64(payload), _unb64(signature), _unb64(public_key)
        Ed25519PublicKey.from_public_bytes(key).verify(sig, raw)
    except InvalidSignature:
        raise BadCertificate("the signature does not match: not issued by this key") from None
    except ValueError as exc:
        raise BadCertificate(f"not a certificate or key: {exc}") from None
    claim: dict[str, Any] = json.loads(raw)
    return claim
