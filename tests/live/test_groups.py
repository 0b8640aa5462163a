"""The group writer (live/groups.py): a group's handler answers each item; when it raises,
each asker hears the error (a copy of its own); a wrong count of answers is an error, not a
hang; an asker that went away does not stop the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from live.groups import Groups
from store.sqlite import SQLiteStore


async def test_items_that_arrive_together_are_one_group_in_order(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    seen: list[list[int]] = []

    async def handle(_: object, key: str, items: list[int]) -> list[int | Exception]:
        seen.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    groups: Groups[int, int] = Groups(handle, most=3)
    asked = [groups.ask(store, "k", i) for i in range(5)]
    answers = await asyncio.gather(*asked, return_exceptions=True)
    assert seen == [[0, 1, 2], [3, 4]]  # at most three a group, in arrival order
    assert [a if isinstance(a, int) else str(a) for a in answers] == [0, "odd 1", 20, "odd 3", 40]
    await store.close()


@pytest.mark.parametrize("broken", ["raises", "miscounts"])
async def test_a_broken_group_answers_every_asker_an_error(tmp_path: Path, broken: str) -> None:
    store = SQLiteStore(tmp_path / "g.db")

    async def handle(_: object, key: str, items: list[int]) -> list[int | Exception]:
        if broken == "raises":
            raise LookupError("the store is gone")
        return items[:-1]

    groups: Groups[int, int] = Groups(handle, most=10)
    answers = await asyncio.gather(
        *(groups.ask(store, "k", i) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(a, Exception) for a in answers)
    assert len({id(a) for a in answers}) == 3  # each asker its own exception
    # The next call starts a new writer: nothing was left stuck.
    ok: Groups[int, int] = Groups(lambda _s, _k, items: _echo(items), most=10)
    assert await ok.ask(store, "k", 7) == 7
    await store.close()


async def _echo(items: list[int]) -> list[int | Exception]:
    return list(items)


async def test_an_asker_that_goes_away_leaves_the_others_answered(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    entered, release = asyncio.Event(), asyncio.Event()
    handled: list[list[int]] = []

    async def handle(_: object, key: str, items: list[int]) -> list[int | Exception]:
        handled.append(items)
        entered.set()
        await release.wait()
        return list(items)

    groups: Groups[int, int] = Groups(handle, most=10)
    leaving = asyncio.ensure_future(groups.ask(store, "k", 1))
    staying = asyncio.ensure_future(groups.ask(store, "k", 2))
    await entered.wait()
    assert handled == [[1, 2]]  # one group, being written
    leaving.cancel()
    release.set()
    assert await staying == 2
    assert leaving.cancelled()
    await store.close()
