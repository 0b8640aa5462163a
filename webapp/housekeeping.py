"""Periodic clean-up of records that only matter for a while: expired sessions, fan tokens a
day past expiry, incomplete uploads past their expiry (with their bytes), and idempotency
answers older than a day (a later retry is still safe: the
ledger keeps its own idempotency keys for ever)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from accounts import fans, staff
from store.clock import rfc3339
from webapp import api_uploads
from webapp.context import Services
from webapp.idempotency import RECORDS

log = logging.getLogger("lifeaccount.housekeeping")
IDEMPOTENCY_TTL = timedelta(days=1)


@dataclass(frozen=True)
class Swept:
    sessions: int
    fan_tokens: int
    idempotency_records: int
    uploads: int
    failed_videos: int
    failed_images: int = 0


async def sweep(services: Services) -> Swept:
    now = services.now()
    cutoff = rfc3339(now - IDEMPOTENCY_TTL)
    for throttle in (services.email_throttle, services.address_throttle, services.signup_throttle):
        throttle.prune()
    return Swept(
        sessions=await staff.purge_expired_sessions(services.store, now=now),
        fan_tokens=await fans.purge_expired_tokens(services.store, now=now),
        idempotency_records=await services.store.collection(RECORDS).delete_many(
            {"created_at": {"$lte": cutoff}}
        ),
        uploads=await api_uploads.purge(services),
        failed_videos=await services.pipeline.settle_failed(),
        failed_images=await services.images.settle_failed(),
    )


async def run_forever(services: Services, every_s: float = 3600.0) -> None:
    """The background loop started by the app's lifespan; a failed sweep is logged, retried."""
    while True:
        try:
            swept = await sweep(services)
            log.info("housekeeping: %s", swept)
        except Exception:
            log.exception("housekeeping sweep failed; retrying in %.0f s", every_s)
        await asyncio.sleep(every_s)
