"""The media worker on a real SQLite file: bounded concurrency, heartbeats, failures, stop and
cancellation, a worker process killed mid-job, and the ``lifeaccount worker`` command."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from media.jobs import FINAL_STATES, INDEXES, JOBS, Job, JobQueue, JobState
from media.worker import HandlerError, Progress, Worker
from store.clock import utc_now
from store.sqlite import SQLiteStore
from tests.media.test_jobs import ROOT, Clock

LIFEACCOUNT = Path(sys.executable).parent / "lifeaccount"
WAIT_S = 10.0  # the most any test waits for something that normally takes milliseconds


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "jobs.db")
    await opened.ensure_indexes(INDEXES)
    yield opened
    await opened.close()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """A bounded poll of real state (the store), for what has no event to wait on."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def settled(queue: JobQueue, job_id: str) -> Job:
    """The job once it is done, failed or cancelled."""
    final: list[Job] = []

    async def check() -> bool:
        job = await queue.get(job_id)
        assert job is not None
        final[:] = [job]
        return job.state in FINAL_STATES

    await until(check)
    return final[0]


class Running:
    """A worker's ``run_forever`` as a task, stopped (and checked) on exit."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.run_forever())
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.wait_for(self.worker.stop(), WAIT_S)
        assert self.task is not None and self.task.done()
        self.task.result()  # run_forever ended without an error


async def test_runs_at_most_concurrency_jobs_at_once(store: SQLiteStore) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)
    jobs = store.collection(JOBS)
    gates = {n: asyncio.Event() for n in range(6)}
    started: asyncio.Queue[int] = asyncio.Queue()
    active = peak = 0

    async def transcode(job: Job, progress: Progress) -> dict[str, Any]:
        nonlocal active, peak
        n = job.payload["n"]
        active += 1
        peak = max(peak, active)
        try:
            await progress(0.5)
            started.put_nowait(n)
            await gates[n].wait()
        finally:
            active -= 1
        return {"n": n}

    ids = [(await queue.enqueue("transcode", {"n": n})).id for n in range(6)]
    async with Running(Worker(queue, {"transcode": transcode}, concurrency=2, poll_s=0.05)):
        running = [await asyncio.wait_for(started.get(), WAIT_S) for _ in range(2)]
        for done in range(4):
            # Two run and the rest wait; freeing one slot lets exactly one more in.
            assert await jobs.count({"state": "running"}) == 2
            assert await jobs.count({"state": "queued"}) == 4 - done
            gates[running.pop(0)].set()
            running.append(await asyncio.wait_for(started.get(), WAIT_S))
        for n in running:
            gates[n].set()
        finals = [await settled(queue, job_id) for job_id in ids]
    assert peak == 2
    assert [(j.state, j.result, j.progress) for j in finals] == [
        (JobState.DONE, {"n": n}, 1.0) for n in range(6)
    ]


async def test_heartbeats_renew_the_lease_while_the_handler_runs(store: SQLiteStore) -> None:
    clock = Clock()
    queue = JobQueue(store, owner="w", now=clock, lease=timedelta(seconds=30))

    async def transcode(job: Job, progress: Progress) -> dict[str, Any]:
        assert job.lease_expires_at == clock.at + timedelta(seconds=30)
        clock.advance(timedelta(seconds=20))  # the claim's lease has 10 s left

        async def renewed() -> bool:
            current = await queue.get(job.id)
            assert current is not None
            return current.lease_expires_at == clock.at + timedelta(seconds=30)

        await until(renewed)
        return {}

    queued = await queue.enqueue("transcode", {})
    async with Running(Worker(queue, {"transcode": transcode}, heartbeat_s=0.01)):
        final = await settled(queue, queued.id)
    assert (final.state, final.attempts) == (JobState.DONE, 1)


async def test_handler_errors_fail_the_job_and_other_kinds_are_left(store: SQLiteStore) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)
    # Queued first, so a worker that claimed kinds it lacks would meet it first.
    foreign = await queue.enqueue("probe", {})
    crash = await queue.enqueue("crash", {}, max_attempts=2)
    refuse = await queue.enqueue("refuse", {}, max_attempts=3)
    calls: list[str] = []

    async def crashing(job: Job, progress: Progress) -> dict[str, Any]:
        calls.append(job.kind)
        raise RuntimeError("disk on fire")

    async def refusing(job: Job, progress: Progress) -> dict[str, Any]:
        calls.append(job.kind)
        raise HandlerError("unreadable", "the upload is not a video")

    async def garbling(job: Job, progress: Progress) -> dict[str, Any]:
        calls.append(job.kind)
        return {"bitrates": {800, 1600}}  # a set: not JSON

    garble = await queue.enqueue("garble", {})
    handlers = {"crash": crashing, "refuse": refusing, "garble": garbling}
    async with Running(Worker(queue, handlers, poll_s=0.05)):
        crashed = await settled(queue, crash.id)
        refused = await settled(queue, refuse.id)
        garbled = await settled(queue, garble.id)
    assert (crashed.state, crashed.attempts) == (JobState.FAILED, 2)  # retried once
    assert crashed.error is not None and crashed.error.code == "handler_error"
    assert crashed.error.message == "the crash handler raised RuntimeError: disk on fire"
    assert (refused.state, refused.attempts) == (JobState.FAILED, 1)  # not worth a retry
    assert refused.error is not None
    assert (refused.error.code, refused.error.message) == (
        "unreadable",
        "the upload is not a video",
    )
    assert (garbled.state, garbled.attempts) == (JobState.FAILED, 1)
    assert garbled.error is not None and garbled.error.code == "bad_result"
    assert sorted(calls) == ["crash", "crash", "garble", "refuse"]
    left = await queue.get(foreign.id)
    assert left is not None and (left.state, left.attempts) == (JobState.QUEUED, 0)


async def test_stop_cancels_handlers_and_gives_their_jobs_back(store: SQLiteStore) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def transcode(job: Job, progress: Progress) -> dict[str, Any]:
        await progress(0.3)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()  # where a real handler kills its ffmpeg
            raise
        return {}

    queued = await queue.enqueue("transcode", {})
    worker = Worker(queue, {"transcode": transcode})
    task = asyncio.create_task(worker.run_forever())
    await asyncio.wait_for(started.wait(), WAIT_S)
    await asyncio.wait_for(worker.stop(), WAIT_S)
    assert task.done() and task.exception() is None
    assert cancelled.is_set()
    back = await queue.get(queued.id)
    assert back is not None
    assert (back.state, back.attempts, back.restarts, back.progress, back.lease_owner) == (
        JobState.QUEUED,
        0,
        1,
        0.3,
        None,
    )


async def test_a_stop_event_ends_run_forever(store: SQLiteStore) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)
    stop = asyncio.Event()
    worker = Worker(queue, {}, poll_s=60)
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.wait_for(worker.idle.wait(), WAIT_S)
    stop.set()
    await asyncio.wait_for(task, WAIT_S)  # well before the 60 s poll


async def test_cancelling_a_job_stops_its_handler(store: SQLiteStore) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def transcode(job: Job, progress: Progress) -> dict[str, Any]:
        if job.payload.get("quick"):
            return {"quick": True}
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    slow = await queue.enqueue("transcode", {})
    worker = Worker(queue, {"transcode": transcode}, heartbeat_s=0.01, poll_s=0.05)
    async with Running(worker):
        await asyncio.wait_for(started.wait(), WAIT_S)
        await queue.cancel(slow.id)
        await asyncio.wait_for(cancelled.wait(), WAIT_S)  # noticed at the next heartbeat
        quick = await queue.enqueue("transcode", {"quick": True})
        assert (await settled(queue, quick.id)).result == {"quick": True}  # still working
    final = await queue.get(slow.id)
    assert final is not None and final.state is JobState.CANCELLED


async def test_a_job_enqueued_in_process_starts_without_waiting_for_the_poll(
    store: SQLiteStore,
) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)

    async def transcode(job: Job, progress: Progress) -> dict[str, Any]:
        return {"ok": True}

    worker = Worker(queue, {"transcode": transcode}, poll_s=60)
    async with Running(worker):
        await asyncio.wait_for(worker.idle.wait(), WAIT_S)  # looked, found nothing
        job = await queue.enqueue("transcode", {})
        # Without the nudge this would wait for the 60 s poll and time out.
        assert (await settled(queue, job.id)).state is JobState.DONE


async def test_a_killed_worker_process_s_job_is_finished_by_another(
    store: SQLiteStore, tmp_path: Path
) -> None:
    skew = [timedelta(0)]
    queue = JobQueue(store, owner="survivor", now=lambda: utc_now() + skew[0])
    queued = await queue.enqueue("hold", {"upload_id": "up_1"})
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.media.jobs_helper", "work", str(tmp_path / "jobs.db"), "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), WAIT_S)
        assert line.split() == ["started", queued.id]
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=WAIT_S)
    assert child.returncode == -signal.SIGKILL
    taken = await queue.get(queued.id)
    assert taken is not None and taken.state is JobState.RUNNING
    assert taken.lease_owner is not None and taken.lease_owner.split(":")[1] == str(child.pid)

    # Rather than wait out the 1 s lease, this side's clock runs ahead of it.
    skew[0] = timedelta(seconds=5)
    seen: list[float] = []

    async def hold(job: Job, progress: Progress) -> dict[str, Any]:
        await progress(0.2)  # the restarted work begins again from 0
        current = await queue.get(job.id)
        assert current is not None
        seen.append(current.progress)
        return {"resumed": True}

    async with Running(Worker(queue, {"hold": hold}, poll_s=0.05)):
        final = await settled(queue, queued.id)
    assert seen == [0.4]  # the persisted progress did not go back
    assert (final.state, final.result, final.attempts, final.restarts) == (
        JobState.DONE,
        {"resumed": True},
        2,
        1,
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LIFEACCOUNT_")}


def test_the_worker_command_runs_until_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    child = subprocess.Popen(
        [str(LIFEACCOUNT), "worker", "--data-dir", str(data), "--concurrency", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    reader = ThreadPoolExecutor(max_workers=1)
    try:
        assert child.stdout is not None
        # Bounded: a worker that never prints fails the test instead of hanging CI (the
        # finally below kills it, which ends the read).
        first = reader.submit(child.stdout.readline).result(timeout=WAIT_S)
        assert "lifeaccount worker" in first and "concurrency 2" in first, first
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        reader.shutdown(wait=True)
    assert child.returncode == 0, err
    assert "lifeaccount worker stopped" in out
    assert (data / "lifeaccount.db").exists()


def test_the_worker_command_refuses_a_zero_concurrency(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(LIFEACCOUNT), "worker", "--data-dir", str(tmp_path), "--concurrency", "0"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=WAIT_S,
    )
    assert done.returncode == 2
    assert "--concurrency" in done.stderr


async def test_progress_is_written_in_steps_of_a_percent(store: SQLiteStore) -> None:
    queue = JobQueue(store, owner="w", now=utc_now)
    stored: list[float] = []

    async def transcode(job: Job, progress: Progress) -> dict[str, Any]:
        for fraction in (0.1, 0.105, 0.5, 0.2, 0.999, 1.0):
            await progress(fraction)
            current = await queue.get(job.id)
            assert current is not None
            stored.append(current.progress)
        return {}

    queued = await queue.enqueue("transcode", {})
    async with Running(Worker(queue, {"transcode": transcode})):
        assert (await settled(queue, queued.id)).state is JobState.DONE
    assert stored == [0.1, 0.1, 0.5, 0.5, 0.999, 1.0]
