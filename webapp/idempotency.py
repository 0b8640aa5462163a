"""``Idempotency-Key`` for retried writes (DESIGN §4): the same key, from the same caller on
the same route, returns the first answer and never repeats the effect.

Concurrent retries of one key wait for the first on an in-process lock; across processes the
domain's own idempotency (e.g. the ledger's unique key per movement) keeps the effect single.
Only successful answers are kept: a failed request changed nothing, so a retry may try again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.responses import Response

from store.clock import rfc3339
from store.port import DocumentStore, DuplicateKeyError, Index
from webapp.problems import Problem

RECORDS = "idempotency_records"
INDEXES = [Index(RECORDS, ("created_at",))]
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyKeys:
    def __init__(self, store: DocumentStore, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def run(
        self,
        *,
        scope: str,
        route: str,
        key: str,
        fingerprint: bytes,
        run: Callable[[], Awaitable[Response]],
    ) -> Response:
        record_id = hashlib.sha256(f"{scope}\n{route}\n{key}".encode()).hexdigest()
        digest = hashlib.sha256(fingerprint).hexdigest()
        lock, users = self._locks.get(record_id, (asyncio.Lock(), 0))
        self._locks[record_id] = (lock, users + 1)
        try:
            async with lock:
                return await self._once(record_id, digest, run)
        finally:
            lock, users = self._locks[record_id]
            if users == 1:
                del self._locks[record_id]
            else:
                self._locks[record_id] = (lock, users - 1)

    async def _once(
        self, record_id: str, digest: str, run: Callable[[], Awaitable[Response]]
    ) -> Response:
        records = self._store.collection(RECORDS)
        done = await records.get(record_id)
        if done is not None:
            return self._replay(done, digest)
        response = await run()
        if 200 <= response.status_code < 300:
            headers = {
                k: v for k, v in response.headers.items() if k in ("content-type", "location")
            }
            try:
                await records.insert(
                    {
                        "id": record_id,
                        "fingerprint": digest,
                        "status": response.status_code,
                        "headers": headers,
                        "body": bytes(response.body).decode(),
                        "created_at": rfc3339(self._now()),
                    }
                )
            except DuplicateKeyError:
                # Another process answered this key first; answer as it did.
                other = await records.get(record_id)
                if other is not None:
                    return self._replay(other, digest)
        return response

    @staticmethod
    def _replay(record: dict[str, object], digest: str) -> Response:
        if record["fingerprint"] != digest:
            raise Problem(
                422,
                "idempotency_key_reused",
                "A field is not valid",
                "this Idempotency-Key was used for a different request; use a new key",
                field="Idempotency-Key",
            )
        headers = dict(record["headers"])  # type: ignore[call-overload]
        headers[REPLAYED_HEADER] = "true"
        return Response(
            str(record["body"]).encode(),
            status_code=int(record["status"]),  # type: ignore[call-overload]
            headers=headers,
        )
