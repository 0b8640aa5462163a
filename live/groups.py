"""Group commit: calls about one thing (a red packet, a room) that arrive together are
handled together, in arrival order, by one task that writes each group in one store
transaction — so a burst costs a few trips to the store rather than several per call, and the
thing has one writer here (another process's writes wait for the transaction's lock).

``Groups(handle).ask(store, key, item)`` queues ``item`` under ``key`` and answers what
``handle(store, key, items)`` answered for it: a result or an exception of its own. If
``handle`` raises, every item of that group hears that error (nothing of it was written).
Not for use inside an open store transaction: the group is written by a task of its own, in a
fresh context, never as part of an asker's transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from store.port import DocumentStore

Item = TypeVar("Item")
Result = TypeVar("Result")


def _copy(exc: Exception) -> Exception:
    """One exception per asker: raised in many tasks, a shared one would gather tracebacks."""
    try:
        twin = copy.copy(exc)
    except Exception:
        return exc
    twin.__traceback__ = None
    return twin


@dataclass
class _Queue(Generic[Item, Result]):
    waiting: list[tuple[Item, asyncio.Future[Result]]] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


class Groups(Generic[Item, Result]):
    def __init__(
        self,
        handle: Callable[[DocumentStore, str, list[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        most: int,
    ) -> None:
        self.handle = handle
        self.most = most  # items in one group at most
        self._queues: weakref.WeakKeyDictionary[DocumentStore, dict[str, _Queue[Item, Result]]] = (
            weakref.WeakKeyDictionary()
        )

    async def ask(self, store: DocumentStore, key: str, item: Item) -> Result:
        queue = self._queues.setdefault(store, {}).setdefault(key, _Queue())
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        queue.waiting.append((item, answer))
        if queue.writer is None:
            queue.writer = asyncio.create_task(
                self._write(store, key, queue), context=contextvars.Context()
            )
        return await answer

    async def _write(self, store: DocumentStore, key: str, queue: _Queue[Item, Result]) -> None:
        try:
            while queue.waiting:
                group, queue.waiting = queue.waiting[: self.most], queue.waiting[self.most :]
                answered = False
                try:
                    try:
                        answers = list(await self.handle(store, key, [i for i, _ in group]))
                        if len(answers) != len(group):
                            raise RuntimeError(f"{len(answers)} answers for {len(group)} asks")
                    except Exception as exc:  # each asker hears what went wrong
                        answers = [_copy(exc) for _ in group]
                    answered = True
                finally:
                    if not answered:  # cancelled mid-group: no asker of it is left waiting
                        for _, answer in group:
                            if not answer.done():
                                answer.cancel()
                for (_, answer), said in zip(group, answers, strict=True):
                    if answer.done():  # the asker went away; what was written stays
                        continue
                    if isinstance(said, Exception):
                        answer.set_exception(said)
                    else:
                        answer.set_result(said)
        finally:
            queue.writer = None
            for _, answer in queue.waiting:  # only when this task itself was cancelled
                if not answer.done():
                    answer.cancel()
            queue.waiting.clear()
            queues = self._queues.get(store, {})
            if queues.get(key) is queue:
                del queues[key]
