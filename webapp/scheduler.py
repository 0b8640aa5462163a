"""Scheduled publishing: a loop that publishes the contents whose ``publish_at`` has come, and
in `serve` also ends the live rooms whose publisher has been gone longer than the grace period.

`serve` runs one in its lifespan and every `lifeaccount worker` runs one too, so a deployment
whose web process is down or busy still publishes on time. Runners need no coordination:
``content.publishing.due_scheduled`` moves each content by a guarded update from
``scheduled``, and ``live.rooms.end_abandoned`` each room from ``live``, which only one
runner wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from content.contents import Content
from content.publishing import due_scheduled
from live.rooms import end_abandoned
from store.port import DocumentStore

log = logging.getLogger("lifeaccount.scheduler")
BATCH = 100


async def publish_due(store: DocumentStore, *, now: datetime) -> list[Content]:
    """One pass: publish every content due at ``now``; returns those this runner moved."""
    moved: list[Content] = []
    while True:
        # Until a pass finds nothing left to move: a backlog after downtime goes out at once,
        # and a batch cut short by another runner's wins does not end the pass early.
        batch = await due_scheduled(store, now=now, limit=BATCH)
        if not batch:
            return moved
        moved += batch


async def run_forever(
    store: DocumentStore,
    now: Callable[[], datetime],
    *,
    every_s: float,
    stop: asyncio.Event,
    live_grace_s: float | None = None,
    after_tick: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Publish what is due, then again every ``every_s`` seconds, until ``stop`` is set; a
    failed pass is logged and tried again at the next tick. The first pass runs at once, so
    contents that fell due while nothing ran go out on start. With ``live_grace_s``, each
    tick also ends the live rooms whose publisher left longer ago than that."""
    if every_s <= 0:
        raise ValueError("the schedule interval is a positive number of seconds")
    if live_grace_s is not None and live_grace_s < 0:
        raise ValueError("the live grace period is zero or more seconds")
    while not stop.is_set():
        try:
            moved = await publish_due(store, now=now())
            if moved:
                log.info("published %d scheduled contents", len(moved))
        except Exception:
            log.exception("scheduled publishing failed; retrying in %s s", every_s)
        if live_grace_s is not None:
            try:
                grace = timedelta(seconds=live_grace_s)
                ended = await end_abandoned(store, now=now(), grace=grace)
                if ended:
                    log.info("ended %d live rooms their publisher left", len(ended))
            except Exception:
                log.exception("ending abandoned rooms failed; retrying in %s s", every_s)
        if after_tick is not None:
            try:
                await after_tick()
            except Exception:
                log.exception("the scheduler's after-tick work failed; retrying in %s s", every_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
