"""Points on a double-entry ledger: wallets (a fan's points within one account) and the
account's budget (what it can drop as red packets).

Every movement is one entry that debits one book and credits another, with a reason, a
reference and an idempotency key, written in the same store transaction as the two balances it
moves. Books are named within an account: ``issued`` (points the brand created; its balance is
the negative of all points in circulation), ``budget``, and ``wallet:<fan_id>``. Only ``issued``
may go below zero, so the sum of an account's books is always 0 and the entries re-add to
every balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.accounts import get_account
from accounts.errors import Conflict, DomainError, Invalid
from accounts.fans import get_own_fan
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

ENTRIES = "ledger_entries"
BALANCES = "balances"
INDEXES = [
    Index(ENTRIES, ("account_id", "idempotency_key"), unique=True),
    Index(ENTRIES, ("account_id", "at")),
    Index(ENTRIES, ("account_id", "debit", "at")),
    Index(ENTRIES, ("account_id", "credit", "at")),
    Index(BALANCES, ("fan_id",)),
]
ISSUED = "issued"
BUDGET = "budget"
MAX_POINTS = 1_000_000_000  # one movement; keeps every sum far inside 2**53


def wallet(fan_id: str) -> str:
    return f"wallet:{fan_id}"


@dataclass(frozen=True)
class Entry:
    id: str
    account_id: str
    debit: str
    credit: str
    points: int
    reason: str
    reference: str
    idempotency_key: str
    at: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Entry:
        return cls(
            doc["id"],
            doc["account_id"],
            doc["debit"],
            doc["credit"],
            doc["points"],
            doc["reason"],
            doc["reference"],
            doc["idempotency_key"],
            doc["at"],
        )


@dataclass(frozen=True)
class Movement:
    entry: Entry
    balance: int  # the credited book's balance right after this entry
    repeat: bool  # true when the idempotency key had already moved these points


def _balance_id(account_id: str, book: str) -> str:
    return f"{account_id}/{book}"


def check_points(points: int, *, field: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise Invalid("points are a whole number", field=field)
    if points < 1 or points > MAX_POINTS:
        raise Invalid(f"points must be between 1 and {MAX_POINTS}", field=field)
    return points


async def transfer(
    store: DocumentStore,
    *,
    account_id: str,
    debit: str,
    credit: str,
    points: int,
    reason: str,
    reference: str,
    idempotency_key: str,
    now: datetime,
) -> Movement:
    """Move points from ``debit`` to ``credit``, exactly once per idempotency key."""
    check_points(points)
    if debit == credit:
        raise Invalid("a movement needs two different books", field="credit")
    entries = store.collection(ENTRIES)
    balances = store.collection(BALANCES)
    async with store.transaction():
        done = await entries.find_one(
            {"account_id": account_id, "idempotency_key": idempotency_key}
        )
        if done is not None:
            repeat = _repeat(done, debit, credit, points)
            if isinstance(repeat, Invalid):
                raise repeat
            return repeat
        await get_account(store, account_id)
        await _debit(store, account_id, debit, points)
        credited = await balances.update_one(
            {"id": _balance_id(account_id, credit)},
            {"$inc": {"balance": points}, "$setOnInsert": _book_fields(account_id, credit)},
            upsert=True,
        )
        assert credited is not None
        doc = _entry(
            account_id,
            debit,
            credit,
            points,
            reason,
            reference,
            idempotency_key,
            credited["balance"],
            now,
        )
        await entries.insert(doc)
    return Movement(Entry.from_doc(doc), credited["balance"], repeat=False)


def _repeat(done: dict[str, Any], debit: str, credit: str, points: int) -> Movement | Invalid:
    """The movement an idempotency key made before, or the error when it moved other points."""
    if (done["debit"], done["credit"], done["points"]) != (debit, credit, points):
        return Invalid(
            "this idempotency key already moved other points; use a new key",
            code="idempotency_key_reused",
            field="Idempotency-Key",
        )
    return Movement(Entry.from_doc(done), done["credit_balance_after"], repeat=True)


def _short(book: str, points: int) -> Conflict:
    return Conflict(
        f"{book} holds fewer than {points} points", code="insufficient_points", field="points"
    )


async def _debit(store: DocumentStore, account_id: str, book: str, points: int) -> None:
    """Take ``points`` from ``book``: never below zero, but for ``issued``."""
    balances = store.collection(BALANCES)
    if book == ISSUED:
        await balances.update_one(
            {"id": _balance_id(account_id, book)},
            {
                "$inc": {"balance": -points},
                "$setOnInsert": {"account_id": account_id, "book": book},
            },
            upsert=True,
        )
    elif (
        await balances.update_one(
            {"id": _balance_id(account_id, book), "balance": {"$gte": points}},
            {"$inc": {"balance": -points}},
        )
        is None
    ):
        raise _short(book, points)


def _entry(
    account_id: str,
    debit: str,
    credit: str,
    points: int,
    reason: str,
    reference: str,
    idempotency_key: str,
    credit_balance_after: int,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id("led"),
        "account_id": account_id,
        "debit": debit,
        "credit": credit,
        "points": points,
        "reason": reason,
        "reference": reference,
        "idempotency_key": idempotency_key,
        "credit_balance_after": credit_balance_after,
        "at": rfc3339(now),
    }


@dataclass(frozen=True)
class Payment:
    credit: str
    points: int
    idempotency_key: str


async def pay_out(
    store: DocumentStore,
    *,
    account_id: str,
    debit: str,
    payments: Sequence[Payment],
    reason: str,
    reference: str,
    now: datetime,
) -> list[Movement]:
    """``transfer`` for each payment from the one ``debit`` book, in one transaction and a
    few trips to the store rather than several per payment (a red packet's grabs, grouped).
    Each payment is its own entry and keeps its own idempotency key; the movements come back
    in the payments' order. Refused as a whole when ``debit`` cannot pay them all."""
    keys = [p.idempotency_key for p in payments]
    if len(set(keys)) != len(keys):
        raise Invalid("each payment needs its own idempotency key", field="Idempotency-Key")
    for p in payments:
        check_points(p.points)
        if p.credit == debit:
            raise Invalid("a movement needs two different books", field="credit")
    if not payments:
        return []
    entries = store.collection(ENTRIES)
    balances = store.collection(BALANCES)
    async with store.transaction():
        done = {
            d["idempotency_key"]: d
            for d in await entries.find(
                {"account_id": account_id, "idempotency_key": {"$in": keys}}
            )
        }
        repeats: dict[str, Movement] = {}
        for p in payments:
            if p.idempotency_key in done:
                repeat = _repeat(done[p.idempotency_key], debit, p.credit, p.points)
                if isinstance(repeat, Invalid):
                    raise repeat
                repeats[p.idempotency_key] = repeat
        new = [p for p in payments if p.idempotency_key not in done]
        docs: dict[str, dict[str, Any]] = {}
        if new:
            await get_account(store, account_id)
            await _debit(store, account_id, debit, sum(p.points for p in new))
            credited = await balances.update_each(
                [
                    (
                        {"id": _balance_id(account_id, p.credit)},
                        {
                            "$inc": {"balance": p.points},
                            "$setOnInsert": _book_fields(account_id, p.credit),
                        },
                    )
                    for p in new
                ],
                upsert=True,
            )
            for p, after in zip(new, credited, strict=True):
                assert after is not None
                docs[p.idempotency_key] = _entry(
                    account_id,
                    debit,
                    p.credit,
                    p.points,
                    reason,
                    reference,
                    p.idempotency_key,
                    after["balance"],
                    now,
                )
            await entries.insert_many(list(docs.values()))
    return [
        Movement(Entry.from_doc(docs[k]), docs[k]["credit_balance_after"], repeat=False)
        if k in docs
        else repeats[k]
        for k in keys
    ]


@dataclass(frozen=True)
class Charge:
    debit: str
    points: int
    idempotency_key: str
    reason: str
    reference: str


async def collect(
    store: DocumentStore,
    *,
    account_id: str,
    credit: str,
    charges: Sequence[Charge],
    now: datetime,
) -> list[Movement | DomainError]:
    """``transfer`` for each charge from its own book into the one ``credit`` book, in one
    transaction and a few trips to the store (a room's prop sends, grouped). Each charge
    stands alone: one its book cannot pay (in the order given, so two charges of one book
    both count) is answered ``insufficient_points`` and writes nothing, the others go through;
    a key that moved these points before answers that movement (``repeat``); one that moved
    other points is ``idempotency_key_reused``."""
    keys = [c.idempotency_key for c in charges]
    if len(set(keys)) != len(keys):
        raise Invalid("each charge needs its own idempotency key", field="Idempotency-Key")
    for c in charges:
        check_points(c.points)
        if c.debit in (credit, ISSUED):
            raise Invalid("a charge is paid from a book of its own", field="debit")
    if not charges:
        return []
    entries = store.collection(ENTRIES)
    balances = store.collection(BALANCES)
    answers: dict[str, Movement | DomainError] = {}
    async with store.transaction():
        for d in await entries.find({"account_id": account_id, "idempotency_key": {"$in": keys}}):
            c = charges[keys.index(d["idempotency_key"])]
            answers[c.idempotency_key] = _repeat(d, c.debit, credit, c.points)
        new = [c for c in charges if c.idempotency_key not in answers]
        if new:
            await get_account(store, account_id)
            debited = await balances.update_each(
                [
                    (
                        {"id": _balance_id(account_id, c.debit), "balance": {"$gte": c.points}},
                        {"$inc": {"balance": -c.points}},
                    )
                    for c in new
                ]
            )
            paid = [c for c, left in zip(new, debited, strict=True) if left is not None]
            for c, left in zip(new, debited, strict=True):
                if left is None:
                    answers[c.idempotency_key] = _short(c.debit, c.points)
        else:
            paid = []
        if paid:
            total = sum(c.points for c in paid)
            credited = await balances.update_one(
                {"id": _balance_id(account_id, credit)},
                {"$inc": {"balance": total}, "$setOnInsert": _book_fields(account_id, credit)},
                upsert=True,
            )
            assert credited is not None
            after = credited["balance"] - total
            docs = []
            for c in paid:
                after += c.points
                doc = _entry(
                    account_id,
                    c.debit,
                    credit,
                    c.points,
                    c.reason,
                    c.reference,
                    c.idempotency_key,
                    after,
                    now,
                )
                docs.append(doc)
                answers[c.idempotency_key] = Movement(Entry.from_doc(doc), after, repeat=False)
            await entries.insert_many(docs)
    return [answers[k] for k in keys]


def _book_fields(account_id: str, book: str) -> dict[str, str]:
    fields = {"account_id": account_id, "book": book}
    if book.startswith("wallet:"):
        fields["fan_id"] = book.removeprefix("wallet:")
    return fields


async def moved(store: DocumentStore, account_id: str, idempotency_key: str) -> Movement | None:
    """The movement this idempotency key made, if it made one."""
    done = await store.collection(ENTRIES).find_one(
        {"account_id": account_id, "idempotency_key": idempotency_key}
    )
    if done is None:
        return None
    return Movement(Entry.from_doc(done), done["credit_balance_after"], repeat=True)


async def credit_wallet(
    store: DocumentStore,
    *,
    account_id: str,
    fan_id: str,
    points: int,
    reason: str,
    reference: str | None,
    idempotency_key: str,
    now: datetime,
) -> Movement:
    """The brand grants points to one of its own fans (issued → wallet)."""
    await get_own_fan(store, account_id, fan_id)
    return await transfer(
        store,
        account_id=account_id,
        debit=ISSUED,
        credit=wallet(fan_id),
        points=points,
        reason=reason,
        reference=reference or idempotency_key,
        idempotency_key=f"wallet-credit:{fan_id}:{idempotency_key}",
        now=now,
    )


async def credit_budget(
    store: DocumentStore,
    *,
    account_id: str,
    points: int,
    reason: str | None,
    reference: str | None,
    idempotency_key: str,
    now: datetime,
) -> Movement:
    """The brand adds points to its budget for red packets (issued → budget)."""
    return await transfer(
        store,
        account_id=account_id,
        debit=ISSUED,
        credit=BUDGET,
        points=points,
        reason=reason or "budget top-up",
        reference=reference or idempotency_key,
        idempotency_key=f"budget-credit:{idempotency_key}",
        now=now,
    )


async def balance(store: DocumentStore, account_id: str, book: str) -> int:
    doc = await store.collection(BALANCES).get(_balance_id(account_id, book))
    return int(doc["balance"]) if doc else 0


async def balances(store: DocumentStore, account_id: str, books: Sequence[str]) -> dict[str, int]:
    """The balances of several books of the account, in one read (0 for a book never used)."""
    ids = {_balance_id(account_id, b): b for b in books}
    found = await store.collection(BALANCES).find({"id": {"$in": sorted(ids)}})
    held = {ids[d["id"]]: int(d["balance"]) for d in found}
    return {b: held.get(b, 0) for b in books}


async def fan_wallets(store: DocumentStore, fan_id: str) -> list[tuple[str, int]]:
    """Every wallet a fan holds, as ``(account_id, balance)``."""
    docs = await store.collection(BALANCES).find({"fan_id": fan_id}, sort=[("account_id", 1)])
    return [(d["account_id"], int(d["balance"])) for d in docs]


async def entries_page(
    store: DocumentStore, account_id: str, *, book: str | None, limit: int, cursor: str | None
) -> tuple[list[Entry], str | None]:
    filter: dict[str, Any] = {"account_id": account_id}
    if book is not None:
        filter = {"$and": [filter, {"$or": [{"debit": book}, {"credit": book}]}]}
    page = await store.collection(ENTRIES).page(
        filter, sort=[("at", -1)], limit=limit, cursor=cursor
    )
    return [Entry.from_doc(d) for d in page.items], page.next_cursor


async def audit(store: DocumentStore) -> list[str]:
    """Every way the ledger disagrees with itself, for every account: books that do not sum
    to zero, balances the entries do not re-add to, a book other than ``issued`` below zero.
    Empty when the ledger is sound."""
    found: list[str] = []
    accounts = {d["account_id"] for d in await store.collection(BALANCES).find({})}
    for account_id in sorted(accounts):
        sums = await book_sums(store, account_id)
        held = {
            d["book"]: d["balance"]
            for d in await store.collection(BALANCES).find({"account_id": account_id})
        }
        if sum(held.values()) != 0:
            found.append(f"{account_id}: balances sum to {sum(held.values())}, not 0")
        for book in sorted(set(sums) | set(held)):
            if sums.get(book, 0) != held.get(book, 0):
                found.append(
                    f"{account_id}/{book}: entries add to {sums.get(book, 0)}, "
                    f"balance says {held.get(book, 0)}"
                )
            if book != ISSUED and held.get(book, 0) < 0:
                found.append(f"{account_id}/{book}: below zero ({held[book]})")
    return found


async def book_sums(store: DocumentStore, account_id: str) -> dict[str, int]:
    """Re-add every entry of an account into per-book balances (an audit of the ledger)."""
    sums: dict[str, int] = {}
    for doc in await store.collection(ENTRIES).find({"account_id": account_id}):
        sums[doc["debit"]] = sums.get(doc["debit"], 0) - doc["points"]
        sums[doc["credit"]] = sums.get(doc["credit"], 0) + doc["points"]
    return sums
