"""Running media jobs: a :class:`Worker` claims jobs from a :class:`~media.jobs.JobQueue` and
runs each with the handler registered for its kind, at most ``concurrency`` at a time.

One worker runs inside ``lifeaccount serve``; more run as ``lifeaccount worker`` processes
sharing the store (DESIGN §3). A handler is cancelled when its job is cancelled or its lease
is lost, and when the worker stops; a stopping worker gives its jobs back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from media.jobs import Job, JobQueue, LeaseLostError

log = logging.getLogger("lifeaccount.media.worker")
MIN_PROGRESS_STEP = 0.01

Progress = Callable[[float], Awaitable[None]]
"""Report a fraction 0..1 of the job done; raises :class:`LeaseLostError` once the job is
no longer this worker's (which also cancels the handler)."""
Handler = Callable[[Job, Progress], Awaitable[dict[str, Any]]]
"""``async def handler(job, progress) -> result``: the result is stored on the done job."""


class HandlerError(Exception):
    """Raised by a handler to fail its job with a stable ``code``; ``retry=False`` for
    failures that another attempt cannot fix (an unreadable upload, say)."""

    def __init__(self, code: str, message: str, *, retry: bool = False) -> None:
        self.code = code
        self.message = message
        self.retry = retry
        super().__init__(message)


@dataclass
class _Running:
    job: Job
    task: asyncio.Task[None] | None = None
    lost: bool = False  # the lease went elsewhere: the handler is cancelled, nothing written


class Worker:
    """Claims and runs jobs of the kinds in ``handlers`` (other kinds are never claimed).

    ``poll_s`` bounds how long a job queued by another process waits for an idle worker;
    jobs queued through the same :class:`JobQueue` start at once. Heartbeats renew each lease
    every ``heartbeat_s`` (default: a third of the lease). On stop, handlers get ``grace_s``
    to end after their cancellation; a job whose handler ends in time is released to the
    queue, any other keeps its lease until it expires and :meth:`JobQueue.recover` re-queues it.
    """

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 1,
        poll_s: float = 1.0,
        heartbeat_s: float | None = None,
        grace_s: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a worker runs at least one job at a time")
        self._queue = queue
        self._handlers = dict(handlers)
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._heartbeat_s = (
            heartbeat_s if heartbeat_s is not None else queue.lease.total_seconds() / 3
        )
        self._grace_s = grace_s
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self.idle = asyncio.Event()
        """Set while the worker has a free slot and found nothing to claim."""
        self._loop_done: asyncio.Event | None = None

    @property
    def running(self) -> list[Job]:
        """The jobs being run right now, as last written."""
        return [state.job for state in self._running.values()]

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Claim and run jobs until ``stop`` is set or :meth:`stop` is called; then cancel
        the running handlers and release their jobs."""
        if self._loop_done is not None:
            raise RuntimeError("this worker is already running")
        self._loop_done = asyncio.Event()
        unsubscribe = self._queue.on_new_work(self._wake.set)
        watcher = asyncio.create_task(self._watch(stop)) if stop is not None else None
        next_recovery = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping and not (stop is not None and stop.is_set()):
                # Cleared before looking, so a nudge that comes while we look is not lost.
                self._wake.clear()
                timeout: float | None = None
                if len(self._running) < self._concurrency:
                    if loop.time() >= next_recovery:
                        next_recovery = loop.time() + self._poll_s
                        await self._recover()
                    job = await self._claim()
                    if job is not None:
                        self._start(job)
                        continue
                    timeout = self._poll_s
                    self.idle.set()
                # Idle, or every slot busy (a finishing job sets _wake): sleep until woken.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self.idle.clear()
        finally:
            unsubscribe()
            if watcher is not None:
                watcher.cancel()
            await self._cancel_running()
            self._loop_done.set()
            self._loop_done = None

    async def stop(self) -> None:
        """Stop claiming, cancel running handlers, release their jobs; returns once
        :meth:`run_forever` has returned. A stopped worker does not start again (a stop that
        comes before :meth:`run_forever` has begun makes it return at once)."""
        done = self._loop_done
        self._stopping = True
        self._wake.set()
        if done is not None:
            await done.wait()

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        self._wake.set()

    async def _recover(self) -> None:
        try:
            for job in await self._queue.recover():
                log.warning("job %s (%s) lost its worker: now %s", job.id, job.kind, job.state)
        except Exception:  # a store hiccup must not end the worker: try at the next poll
            log.exception("recovering expired media jobs failed")

    async def _claim(self) -> Job | None:
        try:
            return await self._queue.claim(self._handlers)
        except Exception:
            log.exception("claiming a media job failed; polling again in %.1f s", self._poll_s)
            return None

    def _start(self, job: Job) -> None:
        state = _Running(job)
        self._running[job.id] = state
        state.task = asyncio.create_task(self._run(state), name=f"media-job-{job.id}")

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            self._wake.set()  # a slot is free

        state.task.add_done_callback(done)

    async def _run(self, state: _Running) -> None:
        job = state.job
        handler = self._handlers[job.kind]
        beats = asyncio.create_task(self._beat(state))

        async def progress(fraction: float) -> None:
            # A restarted job reports from 0 again: values below what is stored are no news.
            # Steps under 1 % are not written either: every write may make another process
            # sharing the SQLite file wait for the lock, and 100 steps draw a smooth bar.
            if fraction >= min(state.job.progress + MIN_PROGRESS_STEP, 1.0):
                state.job = await self._queue.report(state.job, fraction)

        try:
            try:
                result = await handler(job, progress)
            finally:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
        except asyncio.CancelledError:
            if state.lost:
                return  # cancelled by our own heartbeat: the job is not ours to write
            raise  # the worker is stopping: it releases the job
        except LeaseLostError:
            log.info("job %s is no longer ours; its handler stopped", job.id)
            return
        except HandlerError as exc:
            await self._write(
                state, self._queue.fail(state.job, exc.code, exc.message, retry=exc.retry)
            )
            return
        except Exception as exc:
            log.exception("media job %s (%s) failed", job.id, job.kind)
            message = f"the {job.kind} handler raised {type(exc).__name__}: {exc}"
            await self._write(
                state, self._queue.fail(state.job, "handler_error", message, retry=True)
            )
            return
        try:
            json.dumps(result, allow_nan=False)  # checked here: the store would only log it
        except (TypeError, ValueError) as exc:
            message = f"the {job.kind} handler returned a result that is not JSON: {exc}"
            await self._write(
                state, self._queue.fail(state.job, "bad_result", message, retry=False)
            )
            return
        await self._write(state, self._queue.finish(state.job, result))

    async def _write(self, state: _Running, settle: Awaitable[Job]) -> None:
        try:
            state.job = await settle
        except LeaseLostError:
            log.warning(
                "job %s was cancelled or recovered before its outcome was written", state.job.id
            )
        except Exception:
            # The lease runs out and another worker repeats the job: slower, never lost.
            log.exception("writing the outcome of job %s failed", state.job.id)

    async def _beat(self, state: _Running) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                state.job = await self._queue.heartbeat(state.job)
            except LeaseLostError:
                state.lost = True
                if state.task is not None:
                    state.task.cancel()
                return
            except Exception:  # keep beating: the lease may still be saved
                log.exception("renewing the lease of job %s failed", state.job.id)

    async def _cancel_running(self) -> None:
        running = list(self._running.values())
        tasks = [state.task for state in running if state.task is not None]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._grace_s)
        for state in running:
            if state.task in pending:
                log.warning(
                    "job %s did not stop in %.0f s; its lease will expire",
                    state.job.id,
                    self._grace_s,
                )
            elif not state.lost:
                try:
                    await self._queue.release(state.job)
                except LeaseLostError:
                    pass  # it finished (or was cancelled) before the cancellation landed
                except Exception:
                    log.exception("releasing job %s failed; its lease will expire", state.job.id)
