"""A child process for the job-queue tests: ``python -m tests.media.jobs_helper MODE DB``.

``claim``: prints ``ready``, waits for a line on stdin (so two children start claiming at the
same moment), claims one ``hold`` job, waits until another process has claimed one too, then
claims until none is left, printing each id, and exits.

``work``: runs a :class:`media.worker.Worker` whose ``hold`` handler reports 0.4, prints
``started <id>`` and then waits for ever: the test kills the process there.

The store is opened with ``synchronous="FULL"`` as ``lifeaccount worker`` opens it.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

from media.jobs import JOBS, Job, JobQueue, default_owner
from media.worker import Progress, Worker
from store.clock import utc_now
from store.sqlite import SQLiteStore


async def claim(path: str) -> None:
    store = SQLiteStore(path, synchronous="FULL")
    queue = JobQueue(store, owner=default_owner(), now=utc_now)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    first = await queue.claim(["hold"])
    assert first is not None
    print(first.id, flush=True)
    # Each child waits for the other's first claim (a bounded poll of the shared file), so
    # both are claiming while the rest is raced for, however the machine schedules them.
    others = {"state": "running", "lease_owner": {"$ne": queue.owner}}
    for _ in range(2000):
        if await store.collection(JOBS).count(others):
            break
        await asyncio.sleep(0.005)
    else:
        sys.exit("the other claimer never claimed")
    while (job := await queue.claim(["hold"])) is not None:
        print(job.id, flush=True)
    await store.close()


async def work(path: str, lease_s: float) -> None:
    store = SQLiteStore(path, synchronous="FULL")
    queue = JobQueue(store, owner=default_owner(), now=utc_now, lease=timedelta(seconds=lease_s))

    async def hold(job: Job, progress: Progress) -> dict[str, Any]:
        await progress(0.4)
        print(f"started {job.id}", flush=True)
        await asyncio.Event().wait()  # until the process is killed
        return {}

    await Worker(queue, {"hold": hold}, poll_s=0.05).run_forever()


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "claim":
        asyncio.run(claim(path))
    else:
        asyncio.run(work(path, float(sys.argv[3])))


if __name__ == "__main__":
    main()
