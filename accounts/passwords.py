"""Password hashing with argon2id (RFC 9106), off the event loop: a hash costs tens of ms."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 256


class Passwords:
    """argon2id with the library's defaults unless a deployment tunes them."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_kib: int = 65536,
        parallelism: int = 4,
        concurrent: int = 2,
    ):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._decoy: str | None = None
        # Each hash takes memory_kib of RAM and a core for tens of ms: a burst of sign-ups or
        # logins queues here instead of exhausting the machine.
        self._slots = asyncio.Semaphore(concurrent)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        async with self._slots:
            return await asyncio.to_thread(check)

    async def decoy(self) -> str:
        """A hash with the same cost to verify against when a login names an unknown email,
        so the answer takes as long as for a known one."""
        if self._decoy is None:
            self._decoy = await self.hash(secrets.token_urlsafe(16))
        return self._decoy
