"""The persisted media job queue (DESIGN §3 "media work": progress persisted, resumable).

Jobs are documents in ``media_jobs``. A worker *claims* a queued job by a guarded update
(``state == "queued"`` in the filter): the engine runs each update atomically — SQLite in a
``BEGIN IMMEDIATE`` transaction, even across processes sharing the file — so of two workers
racing for one job exactly one update matches. The winner holds a *lease* until
``lease_expires_at`` and renews it with :meth:`JobQueue.heartbeat`; every later write by the
worker is guarded by the claim's ``lease_id``, so a worker whose lease expired (and whose job
was recovered and claimed again, maybe by itself) can no longer touch the job.

A worker that dies stops renewing; :meth:`JobQueue.recover` re-queues its job once the lease
is past. The persisted ``progress`` never goes back (DESIGN §8: "a fraction 0..1 that never goes
back"): a restarted job begins its work again from 0, so lower reports are ignored and
``restarts`` counts how often that happened.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from store.clock import parse_rfc3339, rfc3339
from store.ids import new_id
from store.port import Doc, DocumentStore, Filter, Index

JOBS = "media_jobs"
INDEXES: list[Index] = [
    # claim: the oldest queued job first
    Index(JOBS, ("state", "created_at")),
    # recover: running jobs whose lease is past
    Index(JOBS, ("state", "lease_expires_at")),
]
DEFAULT_LEASE = timedelta(seconds=30)
# A retried attempt waits 5 s, then 10, 20, … at most 5 min: a full disk or a busy machine
# gets time to recover instead of a burst of attempts that all fail the same way.
RETRY_BASE = timedelta(seconds=5)
RETRY_MAX = timedelta(minutes=5)


def retry_delay(attempts: int) -> timedelta:
    """How long a job waits before attempt ``attempts + 1`` after a failed one."""
    delay: timedelta = RETRY_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, RETRY_MAX)


# How many queued jobs one claim looks at before looking again: enough that a worker losing
# the race for the oldest job usually wins the next one without another query.
_CLAIM_BATCH = 8


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True)
class JobError:
    """Why the last attempt failed: a stable ``code`` and a message for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    state: JobState
    attempts: int  # claims so far; a clean release on shutdown gives its attempt back
    max_attempts: int
    progress: float
    restarts: int  # times the job went back to the queue after it had started
    error: JobError | None
    lease_owner: str | None
    lease_id: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    result: dict[str, Any] | None

    @classmethod
    def from_doc(cls, doc: Doc) -> Job:
        error = doc.get("error")
        expires = doc.get("lease_expires_at")
        return cls(
            id=doc["id"],
            kind=doc["kind"],
            payload=doc["payload"],
            state=JobState(doc["state"]),
            attempts=int(doc["attempts"]),
            max_attempts=int(doc["max_attempts"]),
            progress=float(doc["progress"]),
            restarts=int(doc.get("restarts", 0)),
            error=JobError(error["code"], error["message"]) if error else None,
            lease_owner=doc.get("lease_owner"),
            lease_id=doc.get("lease_id"),
            lease_expires_at=parse_rfc3339(expires) if expires else None,
            created_at=parse_rfc3339(doc["created_at"]),
            updated_at=parse_rfc3339(doc["updated_at"]),
            result=doc.get("result"),
        )


class LeaseLostError(Exception):
    """The job is no longer this worker's: cancelled, or recovered after the lease expired."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} is no longer leased to this worker")


def default_owner() -> str:
    """A worker name unique across hosts and restarts, readable in ``lease_owner``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


_NO_LEASE = {"lease_owner": None, "lease_id": None, "lease_expires_at": None}


def _gone_from_here(owner: Any) -> bool:
    """Whether ``owner`` (a :func:`default_owner` name) was a process of this host that has
    exited. Only a certain "no such process" counts: a pid that is alive (or reused, or not
    ours to signal) keeps its lease until it expires, so the worst a mistaken host name can
    cost is a job done twice, whose late writes the lease guard refuses."""
    if not isinstance(owner, str):
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class JobQueue:
    """Enqueue, claim and settle media jobs stored in ``store`` (see the module doc).

    ``owner`` names this worker in the leases it takes; ``now`` is the clock leases are
    measured by (every process sharing a store needs roughly the same wall clock).
    """

    def __init__(
        self,
        store: DocumentStore,
        *,
        owner: str,
        now: Callable[[], datetime],
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("a lease lasts a positive time")
        self._jobs = store.collection(JOBS)
        self.owner = owner
        self.lease = lease
        self._now = now
        self._listeners: list[Callable[[], None]] = []

    # -- waking workers in this process --------------------------------------------------------
    def on_new_work(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever this queue makes a job claimable; returns the undo.

        Jobs queued by other processes are only found by polling; this lets a worker in the
        same process start at once.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _nudge(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- producers -----------------------------------------------------------------------------
    async def enqueue(self, kind: str, payload: dict[str, Any], *, max_attempts: int = 3) -> Job:
        if not isinstance(kind, str) or not kind:
            raise ValueError("a job needs a kind")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError("max_attempts is a whole number of at least 1")
        if not isinstance(payload, dict):
            raise ValueError("a job's payload is a JSON object")
        stamp = rfc3339(self._now())
        doc: Doc = {
            "id": new_id("job"),
            "kind": kind,
            "payload": payload,
            "state": JobState.QUEUED.value,
            "attempts": 0,
            "max_attempts": max_attempts,
            "progress": 0.0,
            "restarts": 0,
            **_NO_LEASE,
            "created_at": stamp,
            "updated_at": stamp,
        }
        await self._jobs.insert(doc)
        self._nudge()
        return Job.from_doc(doc)

    async def get(self, job_id: str) -> Job | None:
        doc = await self._jobs.get(job_id)
        return Job.from_doc(doc) if doc else None

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (its worker notices at its next heartbeat).

        A job already done, failed or cancelled is returned unchanged; ``None`` when there is
        no such job.
        """
        doc = await self._jobs.update_one(
            {"id": job_id, "state": {"$in": [JobState.QUEUED.value, JobState.RUNNING.value]}},
            {"$set": {"state": JobState.CANCELLED.value, **_NO_LEASE, **self._stamp()}},
        )
        if doc is None:
            return await self.get(job_id)
        return Job.from_doc(doc)

    # -- workers -------------------------------------------------------------------------------
    async def claim(self, kinds: Iterable[str]) -> Job | None:
        """Take the oldest queued job of one of ``kinds``, or ``None`` when there is none."""
        wanted = sorted(set(kinds))
        if not wanted:
            return None
        while True:
            ready = rfc3339(self._now())
            candidates = await self._jobs.find(
                {
                    "state": JobState.QUEUED.value,
                    "kind": {"$in": wanted},
                    # A retry waits for its time (retry_delay); a first attempt has none.
                    "$or": [{"not_before": None}, {"not_before": {"$lte": ready}}],
                },
                sort=[("created_at", 1), ("id", 1)],
                limit=_CLAIM_BATCH,
            )
            if not candidates:
                return None
            for candidate in candidates:
                now = self._now()
                doc = await self._jobs.update_one(
                    # The guard: only a job still queued is taken, so one claim wins.
                    {"id": candidate["id"], "state": JobState.QUEUED.value},
                    {
                        "$set": {
                            "state": JobState.RUNNING.value,
                            "lease_owner": self.owner,
                            "lease_id": new_id("lease"),
                            "lease_expires_at": rfc3339(now + self.lease),
                            "updated_at": rfc3339(now),
                        },
                        "$inc": {"attempts": 1},
                    },
                )
                if doc is not None:
                    return Job.from_doc(doc)
            # Every candidate went to another worker (or was cancelled): look again.

    async def heartbeat(self, job: Job) -> Job:
        """Extend the lease; raises :class:`LeaseLostError` when the job is not ours now."""
        now = self._now()
        update = {"lease_expires_at": rfc3339(now + self.lease), "updated_at": rfc3339(now)}
        return await self._settle(job, {"$set": update})

    async def report(self, job: Job, progress: float) -> Job:
        """Persist ``progress`` (0..1) if it is higher than what is stored; lower is ignored."""
        # (a NaN fails the range test too)
        if not isinstance(progress, int | float) or not 0.0 <= progress <= 1.0:
            raise ValueError("progress is a fraction from 0 to 1")
        doc = await self._jobs.update_one(
            {**self._mine(job), "progress": {"$lt": float(progress)}},
            {"$set": {"progress": float(progress), **self._stamp()}},
        )
        if doc is not None:
            return Job.from_doc(doc)
        # Nothing matched: either the stored progress is already higher (a restarted job
        # catching up), which is fine, or the job is no longer ours.
        current = await self._jobs.find_one(self._mine(job))
        if current is None:
            raise LeaseLostError(job.id)
        return Job.from_doc(current)

    async def finish(self, job: Job, result: dict[str, Any]) -> Job:
        return await self._settle(
            job,
            {
                "$set": {
                    "state": JobState.DONE.value,
                    "progress": 1.0,
                    "result": result,
                    **_NO_LEASE,
                    **self._stamp(),
                },
                "$unset": {"error": ""},
            },
        )

    async def fail(self, job: Job, code: str, message: str, *, retry: bool) -> Job:
        """Record a failed attempt: back to the queue while attempts remain and ``retry``
        is true, else ``failed``. The error is kept either way."""
        again = retry and job.attempts < job.max_attempts
        state = JobState.QUEUED if again else JobState.FAILED
        update: dict[str, Any] = {
            "$set": {
                "state": state.value,
                "error": {"code": code, "message": message},
                **_NO_LEASE,
                **self._stamp(),
            }
        }
        if again:
            update["$set"]["not_before"] = rfc3339(self._now() + retry_delay(job.attempts))
        if again:
            update["$inc"] = {"restarts": 1}
        settled = await self._settle(job, update)
        if again:
            self._nudge()
        return settled

    async def release(self, job: Job) -> Job:
        """Give a job back to the queue because this worker is stopping: not the job's fault,
        so the attempt is given back too."""
        settled = await self._settle(
            job,
            {
                "$set": {"state": JobState.QUEUED.value, **_NO_LEASE, **self._stamp()},
                "$inc": {"attempts": -1, "restarts": 1},
            },
        )
        self._nudge()
        return settled

    async def recover(self) -> list[Job]:
        """Re-queue running jobs whose worker died: their lease is past, or their worker was a
        process of this host that no longer exists (a killed `serve` restarted at once need
        not wait out the lease). A job that has used all its attempts this way fails instead
        of killing workers for ever."""
        now = self._now()
        running = await self._jobs.find(
            {"state": JobState.RUNNING.value}, sort=[("lease_expires_at", 1)]
        )
        recovered: list[Job] = []
        for doc in running:
            expires = doc.get("lease_expires_at")
            lapsed = expires is None or expires < rfc3339(now)
            dead = not lapsed and _gone_from_here(doc.get("lease_owner"))
            if not (lapsed or dead):
                continue
            again = doc["attempts"] < doc["max_attempts"]
            error = {
                "code": "worker_lost",
                "message": f"worker {doc['lease_owner']} stopped renewing its lease "
                f"(attempt {doc['attempts']} of {doc['max_attempts']})",
            }
            state = JobState.QUEUED if again else JobState.FAILED
            update: dict[str, Any] = {
                "$set": {"state": state.value, "error": error, **_NO_LEASE, **self._stamp()}
            }
            if again:
                update["$inc"] = {"restarts": 1}
            # Guarded by the lease seen: a heartbeat that came in meanwhile wins (a dead
            # worker sends none, and a new claim has a new lease id).
            guard: dict[str, Any] = {
                "id": doc["id"],
                "state": JobState.RUNNING.value,
                "lease_id": doc["lease_id"],
            }
            if not dead:
                guard["lease_expires_at"] = {"$lt": rfc3339(now)}
            settled = await self._jobs.update_one(guard, update)
            if settled is not None:
                recovered.append(Job.from_doc(settled))
        if any(job.state is JobState.QUEUED for job in recovered):
            self._nudge()
        return recovered

    # -- helpers -------------------------------------------------------------------------------
    def _stamp(self) -> dict[str, str]:
        return {"updated_at": rfc3339(self._now())}

    def _mine(self, job: Job) -> Filter:
        return {"id": job.id, "state": JobState.RUNNING.value, "lease_id": job.lease_id}

    async def _settle(self, job: Job, update: dict[str, Any]) -> Job:
        if job.lease_id is None:
            raise LeaseLostError(job.id)
        doc = await self._jobs.update_one(self._mine(job), update)
        if doc is None:
            raise LeaseLostError(job.id)
        return Job.from_doc(doc)
