"""The persisted media job queue on a real SQLite file: claiming exactly once (tasks and two
processes), leases and recovery, monotonic progress, retries, cancellation."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media.jobs import (
    INDEXES,
    JOBS,
    Job,
    JobError,
    JobQueue,
    JobState,
    LeaseLostError,
    retry_delay,
)
from store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
LEASE = timedelta(seconds=30)


class Clock:
    """The time every queue in a test reads; tests move it instead of waiting."""

    def __init__(self) -> None:
        self.at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db)
    await opened.ensure_indexes(INDEXES)
    yield opened
    await opened.close()


def make_queue(store: SQLiteStore, clock: Clock, owner: str = "w1") -> JobQueue:
    return JobQueue(store, owner=owner, now=clock, lease=LEASE)


async def claimed(queue: JobQueue, kind: str = "transcode") -> Job:
    job = await queue.claim([kind])
    assert job is not None
    return job


async def test_enqueue_claim_finish(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    queued = await queue.enqueue("transcode", {"upload_id": "up_1"})
    assert (queued.state, queued.attempts, queued.progress, queued.restarts) == (
        JobState.QUEUED,
        0,
        0.0,
        0,
    )
    assert queued.lease_owner is None and queued.result is None

    job = await claimed(queue)
    assert job.id == queued.id and job.payload == {"upload_id": "up_1"}
    assert (job.state, job.attempts, job.lease_owner) == (JobState.RUNNING, 1, "w1")
    assert job.lease_expires_at == clock.at + LEASE
    assert await queue.claim(["transcode"]) is None  # the only job is taken

    done = await queue.finish(job, {"hls": "v/index.m3u8"})
    assert (done.state, done.progress, done.result) == (JobState.DONE, 1.0, {"hls": "v/index.m3u8"})
    assert done.lease_owner is None and done.lease_expires_at is None
    assert await queue.get(job.id) == done
    assert await queue.get("job_missing") is None
    with pytest.raises(LeaseLostError):
        await queue.finish(job, {})  # settled once, never twice


async def test_oldest_first_and_only_the_kinds_asked_for(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    first = await queue.enqueue("transcode", {"n": 1})
    clock.advance(timedelta(seconds=1))
    poster = await queue.enqueue("poster", {"n": 2})
    clock.advance(timedelta(seconds=1))
    third = await queue.enqueue("transcode", {"n": 3})

    assert await queue.claim([]) is None
    assert await queue.claim(["probe"]) is None  # nobody handles probe jobs here
    assert [(await claimed(queue)).id, (await claimed(queue)).id] == [first.id, third.id]
    assert await queue.claim(["transcode"]) is None
    untouched = await queue.get(poster.id)
    assert untouched is not None
    assert (untouched.state, untouched.attempts) == (JobState.QUEUED, 0)
    assert (await claimed(queue, "poster")).id == poster.id


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_racing_queues_claim_each_job_exactly_once(
    db: Path, clock: Clock, synchronous: str
) -> None:
    # Two stores on the same file: their own connections, so the sides also meet in SQLite's
    # file locks, not only in one store's writer lock. With FULL every statement runs on a
    # thread, so one claim's find and update interleave with the others'.
    stores = [SQLiteStore(db, synchronous=synchronous) for _ in range(2)]
    try:
        queues = [
            make_queue(stores[0], clock, "a"),
            make_queue(stores[0], clock, "b"),
            make_queue(stores[1], clock, "c"),
            make_queue(stores[1], clock, "d"),
        ]
        ids = {(await queues[0].enqueue("transcode", {"n": n})).id for n in range(50)}

        async def drain(queue: JobQueue) -> list[Job]:
            jobs = []
            while (job := await queue.claim(["transcode"])) is not None:
                jobs.append(job)
                await asyncio.sleep(0)  # let the others in between claims
            return jobs

        results = await asyncio.gather(*(drain(q) for q in queues))
    finally:
        for opened in stores:
            await opened.close()
    taken = [job.id for jobs in results for job in jobs]
    assert sorted(taken) == sorted(ids)  # every job, none twice
    for queue, jobs in zip(queues, results, strict=True):
        assert all(job.lease_owner == queue.owner and job.attempts == 1 for job in jobs)
    assert sum(1 for jobs in results if jobs) > 1  # they did race


async def test_two_processes_claim_disjoint_sets(
    store: SQLiteStore, db: Path, clock: Clock
) -> None:
    queue = make_queue(store, clock)
    ids = {(await queue.enqueue("hold", {"n": n})).id for n in range(200)}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.media.jobs_helper", "claim", str(db)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # both start claiming at once
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=20)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0, 0]
    first, second = (set(out.split()) for out in outputs)
    assert first | second == ids
    assert not first & second
    assert first and second  # both took part (the helper waits for that)
    assert await store.collection(JOBS).count({"state": "running"}) == 200


async def test_progress_never_goes_back(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    await queue.enqueue("transcode", {})
    job = await claimed(queue)
    assert (await queue.report(job, 0.5)).progress == 0.5
    assert (await queue.report(job, 0.25)).progress == 0.5  # lower: ignored
    assert (await queue.report(job, 0.5)).progress == 0.5
    assert (await queue.report(job, 0.75)).progress == 0.75
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            await queue.report(job, bad)
    stored = await queue.get(job.id)
    assert stored is not None and stored.progress == 0.75


async def test_expired_lease_is_recovered_and_reclaimed(store: SQLiteStore, clock: Clock) -> None:
    dead, alive = make_queue(store, clock, "dead"), make_queue(store, clock, "alive")
    queued = await dead.enqueue("transcode", {})
    job = await claimed(dead)
    await dead.report(job, 0.6)

    clock.advance(LEASE)  # exactly at expiry the lease still holds
    assert await alive.recover() == []
    clock.advance(timedelta(milliseconds=1))
    [recovered] = await alive.recover()
    assert recovered.id == queued.id
    assert (recovered.state, recovered.restarts, recovered.progress) == (JobState.QUEUED, 1, 0.6)
    assert recovered.error is not None and recovered.error.code == "worker_lost"
    assert "dead" in recovered.error.message
    assert await alive.recover() == []

    again = await claimed(alive)
    assert (again.lease_owner, again.attempts, again.progress) == ("alive", 2, 0.6)
    # The restarted work reports from 0 again; the stored progress holds until it catches up.
    assert (await alive.report(again, 0.1)).progress == 0.6
    assert (await alive.report(again, 0.7)).progress == 0.7
    for late in (dead.heartbeat(job), dead.report(job, 0.9), dead.finish(job, {})):
        with pytest.raises(LeaseLostError):
            await late
    done = await alive.finish(again, {"ok": True})
    assert (done.state, done.error, done.restarts) == (JobState.DONE, None, 1)


async def test_a_job_of_a_process_gone_from_this_host_is_recovered_at_once(
    store: SQLiteStore, clock: Clock
) -> None:
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    gone_pid = int(exited.stdout)  # a process of this host that has exited
    host = socket.gethostname()
    owners = {
        "gone": f"{host}:{gone_pid}:abc123",
        "alive": f"{host}:{os.getppid()}:abc123",  # still running (pytest's parent)
        "elsewhere": f"another-host:{gone_pid}:abc123",  # cannot be checked from here
        "unnamed": "w9",
    }
    jobs = {}
    for name, owner in owners.items():
        await make_queue(store, clock, owner).enqueue("transcode", {"for": name})
        jobs[name] = await claimed(make_queue(store, clock, owner))
    survivor = make_queue(store, clock, "survivor")
    # The leases have all of LEASE left, yet the gone process's job comes back now.
    [recovered] = await survivor.recover()
    assert recovered.id == jobs["gone"].id and recovered.state is JobState.QUEUED
    assert recovered.error is not None and owners["gone"] in recovered.error.message
    assert await survivor.recover() == []
    clock.advance(LEASE + timedelta(milliseconds=1))  # the others only once their lease lapses
    assert {j.id for j in await survivor.recover()} == {
        jobs[n].id for n in ("alive", "elsewhere", "unnamed")
    }


async def test_heartbeat_keeps_the_lease(store: SQLiteStore, clock: Clock) -> None:
    queue, other = make_queue(store, clock), make_queue(store, clock, "other")
    await queue.enqueue("transcode", {})
    job = await claimed(queue)
    clock.advance(LEASE - timedelta(seconds=1))
    beaten = await queue.heartbeat(job)
    assert beaten.lease_expires_at == clock.at + LEASE
    clock.advance(timedelta(seconds=2))  # past the first lease, inside the renewed one
    assert await other.recover() == []
    assert await other.claim(["transcode"]) is None


async def test_a_job_that_keeps_losing_its_worker_fails(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    await queue.enqueue("transcode", {}, max_attempts=2)
    for attempt in (1, 2):
        job = await claimed(queue)
        assert job.attempts == attempt
        clock.advance(LEASE * 2)
        [recovered] = await queue.recover()
    assert recovered.state is JobState.FAILED
    assert recovered.error is not None and recovered.error.code == "worker_lost"
    assert await queue.claim(["transcode"]) is None


async def test_retries_until_max_attempts_then_failed(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    queued = await queue.enqueue("transcode", {}, max_attempts=3)
    for attempt in (1, 2, 3):
        job = await claimed(queue)
        assert job.attempts == attempt
        after = await queue.fail(job, "ffmpeg_exit", f"exit 1 on try {attempt}", retry=True)
        assert after.error == JobError("ffmpeg_exit", f"exit 1 on try {attempt}")
        assert after.state is (JobState.QUEUED if attempt < 3 else JobState.FAILED)
        if attempt < 3:
            # The retry waits its turn: 5 s after the first failure, 10 s after the second.
            wait = retry_delay(attempt)
            assert wait == timedelta(seconds=5 * 2 ** (attempt - 1))
            clock.advance(wait - timedelta(milliseconds=1))
            assert await queue.claim(["transcode"]) is None
            clock.advance(timedelta(milliseconds=1))
    assert await queue.claim(["transcode"]) is None
    final = await queue.get(queued.id)
    assert final is not None
    assert (final.state, final.attempts, final.restarts) == (JobState.FAILED, 3, 2)
    assert final.error == JobError("ffmpeg_exit", "exit 1 on try 3")


async def test_a_failure_without_retry_is_final(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    await queue.enqueue("transcode", {}, max_attempts=5)
    job = await claimed(queue)
    failed = await queue.fail(job, "unreadable", "not a video", retry=False)
    assert (failed.state, failed.attempts) == (JobState.FAILED, 1)
    assert await queue.claim(["transcode"]) is None


async def test_cancel(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    waiting = await queue.enqueue("transcode", {"n": 1})
    running_id = (await queue.enqueue("transcode", {"n": 2})).id

    cancelled = await queue.cancel(waiting.id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    running = await claimed(queue)
    assert running.id == running_id  # the cancelled one is never claimed
    stopped = await queue.cancel(running.id)
    assert stopped is not None
    assert (stopped.state, stopped.lease_owner) == (JobState.CANCELLED, None)
    with pytest.raises(LeaseLostError):
        await queue.heartbeat(running)
    with pytest.raises(LeaseLostError):
        await queue.report(running, 0.5)
    assert await queue.cancel(running.id) == stopped  # unchanged
    assert await queue.cancel("job_missing") is None


async def test_release_gives_the_attempt_back(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    await queue.enqueue("transcode", {}, max_attempts=1)
    job = await claimed(queue)
    await queue.report(job, 0.3)
    released = await queue.release(job)
    assert (released.state, released.attempts, released.restarts, released.progress) == (
        JobState.QUEUED,
        0,
        1,
        0.3,
    )
    assert (await claimed(queue)).attempts == 1  # its one attempt is still there


async def test_enqueue_refuses_bad_input(store: SQLiteStore, clock: Clock) -> None:
    queue = make_queue(store, clock)
    with pytest.raises(ValueError):
        await queue.enqueue("", {})
    with pytest.raises(ValueError):
        await queue.enqueue("transcode", {}, max_attempts=0)
    with pytest.raises(ValueError):
        await queue.enqueue("transcode", [])  # type: ignore[arg-type]
    assert await store.collection(JOBS).count({}) == 0
