from __future__ import annotations

import asyncio

import pytest

from accounts import ledger
from accounts.accounts import Account
from accounts.errors import Conflict, Invalid, NotFound
from accounts.fans import Fan
from store.sqlite import SQLiteStore
from tests.accounts.conftest import NOW


async def grant(
    store: SQLiteStore,
    account: Account,
    book: str,
    points: int,
    key: str,
    debit: str = ledger.ISSUED,
) -> ledger.Movement:
    return await ledger.transfer(
        store,
        account_id=account.id,
        debit=debit,
        credit=book,
        points=points,
        reason="test",
        reference=key,
        idempotency_key=key,
        now=NOW,
    )


async def test_credit_moves_points_and_writes_one_balanced_entry(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    move = await grant(store, account, ledger.wallet(fan.id), 120, "k1")
    assert move.balance == 120 and not move.repeat
    assert await ledger.balance(store, account.id, ledger.wallet(fan.id)) == 120
    assert await ledger.balance(store, account.id, ledger.ISSUED) == -120
    entries, _ = await ledger.entries_page(store, account.id, book=None, limit=10, cursor=None)
    assert [(e.debit, e.credit, e.points) for e in entries] == [
        (ledger.ISSUED, ledger.wallet(fan.id), 120)
    ]


async def test_the_same_key_moves_points_once(store: SQLiteStore, account: Account) -> None:
    first = await grant(store, account, ledger.BUDGET, 50, "same")
    again = await grant(store, account, ledger.BUDGET, 50, "same")
    assert again.repeat and again.entry.id == first.entry.id and again.balance == 50
    assert await ledger.balance(store, account.id, ledger.BUDGET) == 50


async def test_a_key_reused_for_other_points_is_refused(
    store: SQLiteStore, account: Account
) -> None:
    await grant(store, account, ledger.BUDGET, 50, "k")
    with pytest.raises(Invalid) as err:
        await grant(store, account, ledger.BUDGET, 60, "k")
    assert err.value.code == "idempotency_key_reused"


async def test_a_balance_never_goes_negative(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    await grant(store, account, ledger.BUDGET, 10, "top-up")
    with pytest.raises(Conflict) as err:
        await grant(store, account, ledger.wallet(fan.id), 11, "spend", debit=ledger.BUDGET)
    assert err.value.code == "insufficient_points"
    assert await ledger.balance(store, account.id, ledger.BUDGET) == 10
    assert await ledger.balance(store, account.id, ledger.wallet(fan.id)) == 0
    entries, _ = await ledger.entries_page(store, account.id, book=None, limit=10, cursor=None)
    assert len(entries) == 1  # the refused movement left nothing behind


@pytest.mark.parametrize("points", [0, -1, 1_000_000_001, True])
async def test_points_are_whole_and_bounded(
    store: SQLiteStore, account: Account, points: int
) -> None:
    with pytest.raises(Invalid) as err:
        await grant(store, account, ledger.BUDGET, points, "bad")
    assert err.value.field == "points"


async def test_unknown_account_writes_nothing(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        await ledger.transfer(
            store,
            account_id="acc_missing",
            debit=ledger.ISSUED,
            credit=ledger.BUDGET,
            points=5,
            reason="r",
            reference="r",
            idempotency_key="k",
            now=NOW,
        )
    assert await store.collection(ledger.BALANCES).count({}) == 0
    assert await store.collection(ledger.ENTRIES).count({}) == 0


async def test_concurrent_spends_never_overdraw(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    await grant(store, account, ledger.BUDGET, 100, "top-up")

    async def spend(i: int) -> bool:
        try:
            await grant(store, account, ledger.wallet(fan.id), 7, f"s{i}", debit=ledger.BUDGET)
        except Conflict:
            return False
        return True

    results = await asyncio.gather(*(spend(i) for i in range(40)))
    assert sum(results) == 100 // 7
    assert await ledger.balance(store, account.id, ledger.BUDGET) == 100 % 7
    assert await ledger.balance(store, account.id, ledger.wallet(fan.id)) == 7 * (100 // 7)


async def test_entries_re_add_to_every_balance_and_books_sum_to_zero(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    await grant(store, account, ledger.BUDGET, 300, "a")
    await grant(store, account, ledger.wallet(fan.id), 40, "b")
    await grant(store, account, ledger.wallet(fan.id), 25, "c", debit=ledger.BUDGET)
    sums = await ledger.book_sums(store, account.id)
    for book, total in sums.items():
        assert await ledger.balance(store, account.id, book) == total
    assert sum(sums.values()) == 0
    assert sums[ledger.BUDGET] == 275 and sums[ledger.wallet(fan.id)] == 65


async def test_fan_wallets_lists_each_account(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    await grant(store, account, ledger.wallet(fan.id), 9, "w")
    assert await ledger.fan_wallets(store, fan.id) == [(account.id, 9)]


async def test_entries_page_filters_by_book_newest_first(
    store: SQLiteStore, account: Account, fan: Fan
) -> None:
    for i in range(5):
        await grant(store, account, ledger.wallet(fan.id), i + 1, f"w{i}")
    await grant(store, account, ledger.BUDGET, 99, "budget")
    seen: list[int] = []
    cursor = None
    while True:
        items, cursor = await ledger.entries_page(
            store, account.id, book=ledger.wallet(fan.id), limit=2, cursor=cursor
        )
        seen += [e.points for e in items]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]


def pay(book: str, points: int, key: str) -> ledger.Payment:
    return ledger.Payment(book, points, key)


async def test_a_payout_is_one_entry_per_payment_in_one_go(
    store: SQLiteStore, account: Account
) -> None:
    await grant(store, account, ledger.BUDGET, 100, "top-up")
    moves = await ledger.pay_out(
        store,
        account_id=account.id,
        debit=ledger.BUDGET,
        payments=[pay("wallet:a", 10, "p1"), pay("wallet:b", 5, "p2"), pay("wallet:a", 7, "p3")],
        reason="test",
        reference="r",
        now=NOW,
    )
    # The same wallet twice: each entry carries the balance right after it.
    assert [(m.entry.credit, m.entry.points, m.balance, m.repeat) for m in moves] == [
        ("wallet:a", 10, 10, False),
        ("wallet:b", 5, 5, False),
        ("wallet:a", 7, 17, False),
    ]
    assert await ledger.balance(store, account.id, ledger.BUDGET) == 78
    # Paid again with one new payment: the old ones are repeats, only the new one moves.
    again = await ledger.pay_out(
        store,
        account_id=account.id,
        debit=ledger.BUDGET,
        payments=[pay("wallet:b", 5, "p2"), pay("wallet:c", 3, "p4")],
        reason="test",
        reference="r",
        now=NOW,
    )
    assert [(m.entry.id == moves[1].entry.id, m.repeat) for m in again[:1]] == [(True, True)]
    assert (again[1].entry.credit, again[1].balance, again[1].repeat) == ("wallet:c", 3, False)
    assert await ledger.balance(store, account.id, ledger.BUDGET) == 75
    assert await ledger.audit(store) == []


@pytest.mark.parametrize(
    ("payments", "code"),
    [
        ([pay("wallet:a", 60, "q1"), pay("wallet:b", 50, "q2")], "insufficient_points"),
        ([pay("wallet:a", 1, "q1"), pay("wallet:b", 1, "q1")], "invalid_field"),
        ([pay("wallet:a", 1, "q1"), pay("wallet:b", 0, "q2")], "invalid_field"),
        ([pay("wallet:a", 1, "q1"), pay(ledger.BUDGET, 1, "q2")], "invalid_field"),
        ([pay("wallet:a", 1, "q1"), pay("wallet:b", 2, "top-up")], "idempotency_key_reused"),
    ],
)
async def test_a_payout_that_cannot_be_paid_whole_moves_nothing(
    store: SQLiteStore, account: Account, payments: list[ledger.Payment], code: str
) -> None:
    await grant(store, account, ledger.BUDGET, 100, "top-up")
    with pytest.raises((Conflict, Invalid)) as err:
        await ledger.pay_out(
            store,
            account_id=account.id,
            debit=ledger.BUDGET,
            payments=payments,
            reason="test",
            reference="r",
            now=NOW,
        )
    assert err.value.code == code
    assert await ledger.balance(store, account.id, ledger.BUDGET) == 100
    assert await ledger.balance(store, account.id, "wallet:a") == 0
    entries, _ = await ledger.entries_page(store, account.id, book=None, limit=10, cursor=None)
    assert len(entries) == 1


def charge(book: str, points: int, key: str) -> ledger.Charge:
    return ledger.Charge(book, points, key, reason="test", reference="r")


async def test_a_collection_refuses_each_charge_its_book_cannot_pay_alone(
    store: SQLiteStore, account: Account
) -> None:
    await grant(store, account, "wallet:a", 10, "fund-a")
    await grant(store, account, "wallet:b", 5, "fund-b")
    await ledger.collect(
        store,
        account_id=account.id,
        credit="takings",
        charges=[charge("wallet:a", 1, "c0")],
        now=NOW,
    )
    moved = await ledger.collect(
        store,
        account_id=account.id,
        credit="takings",
        charges=[
            charge("wallet:a", 6, "c1"),
            charge("wallet:a", 6, "c2"),  # a holds 3 by now: refused alone
            charge("wallet:b", 5, "c3"),
            charge("wallet:a", 1, "c0"),  # moved before: the same movement
            charge("wallet:b", 2, "fund-b"),  # this key moved other points
        ],
        now=NOW,
    )
    told = [
        (m.entry.points, m.balance, m.repeat) if isinstance(m, ledger.Movement) else m.code
        for m in moved
    ]
    assert told == [
        (6, 7, False),  # takings after each entry: 1, then +6
        "insufficient_points",
        (5, 12, False),
        (1, 1, True),
        "idempotency_key_reused",
    ]
    assert await ledger.balance(store, account.id, "wallet:a") == 3
    assert await ledger.balance(store, account.id, "wallet:b") == 0
    assert await ledger.balance(store, account.id, "takings") == 12
    assert await ledger.balances(store, account.id, ["wallet:a", "wallet:b", "wallet:z"]) == {
        "wallet:a": 3,
        "wallet:b": 0,
        "wallet:z": 0,
    }
    with pytest.raises(Invalid):
        await ledger.collect(
            store,
            account_id=account.id,
            credit="takings",
            charges=[charge(ledger.ISSUED, 1, "c9")],
            now=NOW,
        )
    assert await ledger.audit(store) == []
